"""The bench's networks beside `Net` (model.py): the ladder of smaller rungs, the speedrun's two, and the task
statement's `BaselineNet`. Each returns log-probabilities, as `Net` does.

`NetLite` and `NetMicro` are `Net`'s shape in smaller widths.

`NetNano` (under 2,000 parameters) is a separable `StageNet`: padded stages at 28x28, 14x14 and 7x7, and every 3x3
conv after the first depthwise-separable (a 3x3 filter per channel, then a 1x1 conv that mixes them),
which buys about twice the channels of a plain conv for the same weights. On validation it beat the
`GapNet` shape at this size by 0.3% (docs/tuning.md):

    layer                        out      RF   jump   why
    conv1 3x3          1 -> 6    28x28     3    1     padded: no border lost at full resolution
    sep 3x3            6 -> 10   28x28     5    1     depthwise 3x3 (54 weights) + 1x1 (60)
    maxpool 2                    14x14     6    2
    sep 3x3           10 -> 12   14x14    10    2
    sep 3x3           12 -> 16   14x14    14    2
    maxpool 2                     7x7     16    4
    sep 3x3           16 -> 16    7x7     24    4
    sep 3x3           16 -> 20    7x7     32    4     RF 32 covers the whole image
    global avg pool               1x1           4
    conv 1x1          20 -> 10    1x1                 the classifier
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from model import Net, conv_block


class NetLite(Net):
    """Under 8,000 parameters."""

    default_widths = (8, 12, 12, 14, 14)


class NetMicro(Net):
    """Under 4,000 parameters."""

    default_widths = (4, 8, 8, 10, 10)


class SpeedNet(Net):
    """The speedrun's network: `Net`'s widths (its own copy: a change of `Net` leaves the speedruns alone) with
    one Dropout, on the pooled features. Drawing `Net`'s per-pixel dropout masks took a sixth of a training step
    under the speedrun's recipe on two CPU cores; one mask per image after the GAP costs nothing and kept
    `Net`'s validation accuracy (docs/tuning.md)."""

    default_widths = (8, 16, 20, 24, 24)
    head_dropout = True


class FramedSpeedNet(SpeedNet):
    """`SpeedNet` on the central 24x24 of each image, where MNIST's 20x20 digit box sits: every feature map
    shrinks (conv6 and the GAP work on 4x4), so a forward pass costs 1.0 M multiply-adds instead of 1.65 M,
    with the same parameters. The CPU speedrun's network (docs/speed.md)."""

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities (N, 10) for normalised images (N, 1, 28, 28), of which the 2-pixel border is dropped."""
        return super().forward(x[..., 2:-2, 2:-2])


class StageNet(nn.Module):
    """Stages of padded 3x3 conv blocks at 28x28, 14x14 and 7x7, a max-pool between stages, then GAP.

    `stages` holds each stage's conv widths, e.g. ((4, 4, 4), (8, 8, 8), (8, 8, 8)), the shape of a
    public 3,762-parameter net. Padding keeps the first stage at full resolution, at more compute
    per parameter than `Net`. `dropout` follows every block after the first stage. `separable`
    makes every conv but the first depthwise-separable (`conv_block`): `NetNano`'s shape.
    Tried for the two small rungs (docs/tuning.md).
    """

    def __init__(
        self,
        stages: tuple[tuple[int, ...], ...] = ((4, 4, 4), (8, 8, 8), (8, 8, 8)),
        dropout: float = 0.05,
        separable: bool = False,
    ) -> None:
        super().__init__()
        if not stages or any(not s or min(s) < 1 for s in stages):
            raise ValueError(f"stages must be non-empty groups of positive widths, got {stages}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.stages, self.dropout = tuple(tuple(s) for s in stages), dropout
        layers, c_in = [], 1
        for i, stage in enumerate(self.stages):
            if i:
                layers.append(nn.MaxPool2d(2))
            for c_out in stage:
                layers.append(
                    conv_block(c_in, c_out, dropout if i else 0.0, padding=1, separable=separable and c_in > 1)
                )
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Conv2d(c_in, 10, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities (N, 10)."""
        return F.log_softmax(self.classifier(self.gap(self.features(x))).flatten(1), dim=1)


class NetNano(StageNet):
    """Under 2,000 parameters: a separable `StageNet`."""

    def __init__(self, stages: tuple[tuple[int, ...], ...] = ((6, 10), (12, 16), (16, 20)), dropout: float = 0.01):
        super().__init__(stages, dropout, separable=True)


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
        """Log-probabilities (N, 10), as the task statement's network returns them."""
        return F.log_softmax(self.net(x).flatten(1), dim=1)


MODELS: dict[str, type[nn.Module]] = {
    "net": Net,
    "lite": NetLite,
    "micro": NetMicro,
    "nano": NetNano,
    "speedrun": SpeedNet,
    "framed": FramedSpeedNet,
    "baseline": BaselineNet,
}
