"""The networks: `Net` (the default), the ladder below it, the speedrun's two, and `BaselineNet`.

`Net`, `NetLite` and `NetMicro` are one shape, `GapNet`, in three widths. Shapes and receptive
fields (RF) of that shape, for a 28x28 input (`receptive_field_table` below computes them):

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

from torch import Tensor, nn


def conv_block(c_in: int, c_out: int, dropout: float, padding: int = 0, separable: bool = False) -> nn.Sequential:
    """3x3 conv (no bias: BN has one) -> BatchNorm -> ReLU -> Dropout (if dropout > 0).

    `separable`: the 3x3 conv is depthwise (one 3x3 filter per input channel) followed by a 1x1 conv,
    9*c_in + c_in*c_out weights instead of 9*c_in*c_out, so a tiny budget buys wider layers.
    """
    if separable:
        convs = [
            nn.Conv2d(c_in, c_in, 3, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        ]
    else:
        convs = [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False)]
    layers = [*convs, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))


class GapNet(nn.Module):
    """Six 3x3 conv blocks with one max-pool, then global average pooling and a 1x1 classifier.

    `widths` are the channels of conv1 to conv5 (conv6 keeps conv5's); the max-pool follows conv
    `pool_after`; `dropout` is the p of the Dropout after every block past the pool, or, with
    `head_dropout`, of one Dropout on the pooled features instead. Subclasses set the defaults.
    """

    n_widths = 5
    default_widths: tuple[int, ...] = (8, 16, 16, 16, 16)
    head_dropout = False

    def __init__(self, widths: tuple[int, ...] | None = None, dropout: float = 0.05, pool_after: int = 2) -> None:
        super().__init__()
        widths = tuple(widths or self.default_widths)
        if len(widths) != self.n_widths or min(widths) < 1:
            raise ValueError(f"widths must be {self.n_widths} positive channel counts, got {widths}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 1 <= pool_after <= self.n_widths:
            raise ValueError(f"pool_after must be a conv from 1 to {self.n_widths}, got {pool_after}")
        self.widths, self.dropout, self.pool_after = widths, dropout, pool_after
        self.features = self.make_features(widths, 0.0 if self.head_dropout else dropout)
        pool = nn.AdaptiveAvgPool2d(1)
        self.gap = nn.Sequential(pool, nn.Dropout(dropout)) if self.head_dropout else pool
        self.classifier = nn.Conv2d(widths[-1], 10, 1)

    def make_features(self, widths: tuple[int, ...], dropout: float) -> nn.Sequential:
        """The convolutional layers up to the global average pooling."""
        # No dropout before the pool (26x26 and 24x24 in Net): augmentation already perturbs the pixels there.
        # conv6 is padded: its map stays as large as conv5's, for the GAP to average.
        blocks = [
            conv_block(c_in, c_out, dropout if i >= self.pool_after else 0.0, padding=int(i == self.n_widths))
            for i, (c_in, c_out) in enumerate(zip((1, *widths), (*widths, widths[-1])))
        ]
        blocks.insert(self.pool_after, nn.MaxPool2d(2))
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, 10) for normalised images (N, 1, 28, 28)."""
        return self.classifier(self.gap(self.features(x))).flatten(1)


class Net(GapNet):
    """The default model, under 20,000 parameters: few channels at full resolution, more after the pool."""

    default_widths = (8, 16, 20, 24, 24)


class NetLite(GapNet):
    """Under 8,000 parameters."""

    default_widths = (8, 12, 12, 14, 14)


class NetMicro(GapNet):
    """Under 4,000 parameters."""

    default_widths = (4, 8, 8, 10, 10)


class SpeedNet(GapNet):
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
        """Logits (N, 10) for normalised images (N, 1, 28, 28), of which the 2-pixel border is dropped."""
        return super().forward(x[..., 2:-2, 2:-2])


class StageNet(nn.Module):
    """Stages of padded 3x3 conv blocks at 28x28, 14x14 and 7x7, a max-pool between stages, then GAP.

    `stages` holds each stage's conv widths, e.g. ((4, 4, 4), (8, 8, 8), (8, 8, 8)), the shape of a
    public 3,762-parameter net. Padding keeps the first stage at full resolution, at more compute
    per parameter than `GapNet`. `dropout` follows every block after the first stage. `separable`
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
        """Logits (N, 10)."""
        return self.classifier(self.gap(self.features(x))).flatten(1)


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
        """Logits (N, 10)."""
        return self.net(x).flatten(1)


def receptive_field_table(model: nn.Module, input_size: int = 28) -> list[dict]:
    """Output size, receptive field and jump after every conv / pooling layer, in module order."""
    size, rf, jump = input_size, 1, 1
    rows = [{"layer": "input", "out": f"{size}x{size}", "rf": rf, "jump": jump}]
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            k, s, p, d = module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]
            label = f"conv{k}x{k} {module.in_channels}->{module.out_channels}"
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p, d = _pair0(module.kernel_size), _pair0(module.stride), _pair0(module.padding), 1
            label = f"{type(module).__name__} {k}"
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            k, s, p, d = size, 1, 0, 1
            label = "global avg pool"
        else:
            continue
        k_eff = d * (k - 1) + 1
        size = (size + 2 * p - k_eff) // s + 1
        rf, jump = rf + (k_eff - 1) * jump, jump * s
        rows.append({"layer": f"{name}: {label}", "out": f"{size}x{size}", "rf": rf, "jump": jump})
    return rows


def _pair0(value) -> int:
    """First element of an int-or-tuple layer argument."""
    return value[0] if isinstance(value, tuple) else value


MODELS: dict[str, type[nn.Module]] = {
    "net": Net,
    "lite": NetLite,
    "micro": NetMicro,
    "nano": NetNano,
    "speedrun": SpeedNet,
    "framed": FramedSpeedNet,
    "baseline": BaselineNet,
}
