"""`Net`: the Session 6 network, under 20,000 parameters, with BatchNorm, Dropout and Global Average Pooling.

Shapes and receptive fields (RF) for a 28x28 input (`receptive_field_table` below computes them):

    layer                        out      RF   jump   why
    conv1 3x3          1 -> 8    26x26     3    1     edges; few channels where pixels are many
    conv2 3x3          8 -> 16   24x24     5    1     strokes
    maxpool 2                    12x12     6    2     halve early: 4x less work for every layer after
    conv3 3x3         16 -> 20   10x10    10    2     parts of digits
    conv4 3x3         20 -> 24    8x8     14    2     the parameters sit at low resolution,
    conv5 3x3         24 -> 24    6x6     18    2     where they cost little time
    conv6 3x3 pad 1   24 -> 24    6x6     22    2     RF 22 covers a whole (20x20-boxed) digit
    global avg pool               1x1     32    2     GAP instead of a big FC layer
    conv 1x1          24 -> 10    1x1                 the classifier (a 1x1 conv = an FC layer)
    log_softmax                                       log-probabilities, as the course's F.nll_loss expects

Every 3x3 conv is conv -> BatchNorm -> ReLU (-> Dropout after the pool): `conv_block`, written once.
"""

from __future__ import annotations

import torch.nn.functional as F
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


class Net(nn.Module):
    """Six 3x3 conv blocks with one max-pool, then global average pooling and a 1x1 classifier.

    `widths` are the channels of conv1 to conv5 (conv6 keeps conv5's); the max-pool follows conv
    `pool_after`; `dropout` is the p of the Dropout after every block past the pool, or, with
    `head_dropout` (a subclass's switch), of one Dropout on the pooled features instead.
    """

    n_widths = 5
    default_widths: tuple[int, ...] = (8, 16, 20, 24, 24)
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
        # No dropout before the pool (26x26 and 24x24): augmentation already perturbs the pixels there.
        # conv6 is padded: its map stays as large as conv5's, for the GAP to average.
        blocks = [
            conv_block(c_in, c_out, dropout if i >= self.pool_after else 0.0, padding=int(i == self.n_widths))
            for i, (c_in, c_out) in enumerate(zip((1, *widths), (*widths, widths[-1])))
        ]
        blocks.insert(self.pool_after, nn.MaxPool2d(2))
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities (N, 10) for normalised images (N, 1, 28, 28).

        Log-probabilities, as the task statement's network returns them: the course's `F.nll_loss` trains on them,
        and so does `F.cross_entropy` (the log_softmax of log-probabilities is themselves). Raw logits would
        train to nonsense under `F.nll_loss`, with no error."""
        return F.log_softmax(self.classifier(self.gap(self.features(x))).flatten(1), dim=1)


def receptive_field_table(model: nn.Module, input_size: int = 28) -> list[dict]:
    """Output size, receptive field and jump after every conv / pooling layer, in module order."""
    size, rf, jump = input_size, 1, 1
    rows = [{"layer": "input", "out": f"{size}x{size}", "rf": rf, "jump": jump}]
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            k, s, p, d = module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]
            label = f"conv{k}x{k} {module.in_channels}->{module.out_channels}"
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p, d = (v[0] if isinstance(v, tuple) else v for v in (module.kernel_size, module.stride,
                                                                         module.padding, 1))  # fmt: skip
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
