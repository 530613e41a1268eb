"""The networks: `Net` (the default), the smaller `NetLite` and `NetMicro`, and `BaselineNet`.

`Net`, `NetLite` and `NetMicro` share one shape and differ only in width. Shapes and receptive
fields (RF) of that shape, for a 28x28 input (`utils.receptive_field_table` computes them):

    layer                       out      RF   jump   why
    conv1 3x3         1 -> c1   26x26     3    1     edges; few channels where pixels are many
    conv2 3x3        c1 -> c2   24x24     5    1     strokes
    maxpool 2                   12x12     6    2     halve early: 4x less work for every layer after
    conv3 3x3        c2 -> c3   10x10    10    2     parts of digits
    conv4 3x3        c3 -> c4    8x8     14    2     the parameters sit at low resolution,
    conv5 3x3        c4 -> c5    6x6     18    2     where they cost little time
    conv6 3x3 pad 1  c5 -> c5    6x6     22    2     RF 22 covers a whole (20x20-boxed) digit
    global avg pool              1x1     32    2     GAP instead of a big FC layer
    conv 1x1         c5 -> 10    1x1                the classifier (a 1x1 conv = an FC layer)

Every 3x3 conv is conv -> BatchNorm -> ReLU (-> Dropout after the pool): `conv_block`, written once.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv_block(c_in: int, c_out: int, dropout: float, padding: int = 0) -> nn.Sequential:
    """3x3 conv (no bias: BN has one) -> BatchNorm -> ReLU -> Dropout (if dropout > 0)."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))


class GapNet(nn.Module):
    """Six 3x3 conv blocks with one max-pool, then global average pooling and a 1x1 classifier."""

    widths: tuple[int, int, int, int, int] = (8, 16, 16, 16, 16)
    dropout: float = 0.05

    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = self.widths
        p = self.dropout
        self.features = nn.Sequential(
            # No dropout at 26x26 and 24x24: a mask per pixel is slow to draw on a CPU (even the
            # low-resolution ones take ~11% of a step), and augmentation already perturbs edges.
            conv_block(1, c1, 0.0),
            conv_block(c1, c2, 0.0),
            nn.MaxPool2d(2),
            conv_block(c2, c3, p),
            conv_block(c3, c4, p),
            conv_block(c4, c5, p),
            conv_block(c5, c5, p, padding=1),
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Conv2d(c5, 10, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, 10) for normalised images (N, 1, 28, 28)."""
        return self.classifier(self.gap(self.features(x))).flatten(1)


class Net(GapNet):
    """The default model: widths 8, 16, 20, 24, 24, 19,274 parameters."""

    widths = (8, 16, 20, 24, 24)


class NetLite(GapNet):
    """Under 8k parameters: widths 8, 12, 12, 14, 14, 7,570 parameters."""

    widths = (8, 12, 12, 14, 14)


class NetMicro(GapNet):
    """Under 4k parameters: widths 4, 8, 8, 10, 10, 3,630 parameters."""

    widths = (4, 8, 8, 10, 10)


class BaselineNet(nn.Module):
    """The task statement's reference network (19,712 parameters), kept to benchmark against.

    Its order is conv -> ReLU -> BN -> Dropout2d, as published; it has no padding except conv7.

        layer                     out     RF
        conv 3x3   1 -> 16        26x26    3
        conv 3x3  16 -> 16        24x24    5
        conv 3x3  16 -> 32        22x22    7
        conv 1x1  32 -> 16        22x22    7
        maxpool 2                 11x11    8
        conv 3x3  16 -> 16         9x9    12
        conv 3x3  16 -> 16 pad 1   9x9    16
        conv 3x3  16 -> 16         7x7    20
        conv 3x3  16 -> 32         5x5    24
        conv 1x1  32 -> 10         5x5    24
        avg pool 5                 1x1    32
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, padding: int = 0, bn: bool = True, drop: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False), nn.ReLU()]
            return layers + ([nn.BatchNorm2d(c_out)] if bn else []) + ([nn.Dropout2d(dropout)] if drop else [])

        self.net = nn.Sequential(
            *block(1, 16),
            *block(16, 16, drop=False),
            *block(16, 32),
            nn.Conv2d(32, 16, 1),  # 1x1 transition: 528 params with its bias
            nn.ReLU(),
            nn.MaxPool2d(2),
            *block(16, 16),
            *block(16, 16, padding=1),
            *block(16, 16),
            *block(16, 32),
            nn.Conv2d(32, 10, 1, bias=False),
            nn.AvgPool2d(5),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, 10)."""
        return self.net(x).flatten(1)


MODELS: dict[str, type[nn.Module]] = {"net": Net, "lite": NetLite, "micro": NetMicro, "baseline": BaselineNet}
