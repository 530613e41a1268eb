"""The speed toolbox: what train.py's extra flags and the speedrun (`lab/benchmark.py`) add to `utils.py`.

Muon for the 3x3 filters and bf16 autocast (always, or where the device runs it natively), each off by
default and added to `utils.fit`'s one loop through the recipe's two methods (`optimizer`, `autocast`);
test-time shifts; and the speedrun's recipes. These are the levers that paid on the validation split
(docs/speed.md, which also lists the ones that did not). The notebook uses none of this.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

import utils
from utils import knob


@dataclass(frozen=True)
class ToolRecipe(utils.Recipe):
    """`utils.Recipe` plus Muon and the precision, each off by default."""

    muon_lr: float = knob(0.0, "peak learning rate of Muon for the 3x3 conv filters, SGD for the rest (0: off)")
    precision: str = knob(
        "fp32", "fp32, bf16 autocast, or auto: bf16 where the device runs it natively", choices=("fp32", "bf16", "auto")
    )

    def optimizer(self, model: nn.Module, steps: int):
        """`utils.make_optimizer`; with `muon_lr`, Muon steps the 3x3 filters and SGD the rest."""
        filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
        filters = filters if self.muon_lr else []
        rest = [p for p in model.parameters() if all(p is not f for f in filters)]
        optimizer, scheduler = utils.make_optimizer(rest, self, steps)
        if filters:
            add_muon(optimizer, filters, self)
        return optimizer, scheduler

    def autocast(self, device: torch.device):
        """bf16 autocast under `precision="bf16"` (or "auto" where native), else a no-op."""
        bf16 = self.precision == "bf16" or (self.precision == "auto" and native_bf16(device))
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


# Speed first (python -m lab.benchmark --speedrun): a large batch, and bf16 where the device runs it natively
# (emulated, it is slower than fp32). The CPU speedrun: the framed network with Muon for its filters, at the fewest
# epochs that docs/speed.md's rule keeps (ten validation seeds, mean - 3 x std >= 99.40%): 8 (4 epochs made the 99.4%
# mean, but not with that margin), in fp32: bf16 at 8 epochs had the same mean and a wider spread, and is out
# (framed_ep8_bf16_s10, on a CPU with native bf16).
SPEEDRUN = ToolRecipe(epochs=8, batch_size=256, lr=0.1, precision="auto")
RECIPES = {
    "net": ToolRecipe(),  # utils.Recipe's defaults: the notebook's recipe
    "lite": ToolRecipe(epochs=15),
    "micro": ToolRecipe(epochs=15),
    # A separable net this small learned best with a higher LR and lighter augmentation (validation).
    "nano": ToolRecipe(epochs=20, lr=0.1, rotate=5.0, shift=1.0, scale=0.05),
    "baseline": ToolRecipe(),  # the task statement's network under Net's recipe
    "speedrun": SPEEDRUN,
    "framed": replace(SPEEDRUN, muon_lr=0.02, precision="fp32"),
}


def add_muon(optimizer: torch.optim.Optimizer, filters: list[torch.Tensor], recipe: ToolRecipe) -> None:
    """Step the 3x3 conv filters with Muon right after each step of `optimizer`, at its scheduled LR.

    torch's Muon takes 2-D matrices only, so it gets each conv's filters as an [out, in*3*3] view that
    shares their storage: its in-place update is the filters' update.
    """
    matrices = [nn.Parameter(w.data.view(len(w), -1)) for w in filters]
    muon = torch.optim.Muon(matrices, lr=recipe.muon_lr, weight_decay=recipe.weight_decay)  # decay set on purpose

    def step(sgd: torch.optim.Optimizer, *_) -> None:
        for matrix, w in zip(matrices, filters):
            matrix.grad, w.grad = w.grad.view_as(matrix), None
        muon.param_groups[0]["lr"] = recipe.muon_lr * sgd.param_groups[0]["lr"] / recipe.lr  # the same schedule
        muon.step()

    optimizer.register_step_post_hook(step)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bf16 natively: a GPU that supports it, or a CPU with AVX-512 BF16 or AMX.
    Elsewhere bf16 is emulated and slower than fp32 (docs/speed.md: 6x an epoch on an AVX2 AMD EPYC)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve(recipe: ToolRecipe, device: torch.device) -> ToolRecipe:
    """The recipe with `precision="auto"` made bf16 or fp32 for `device`: what runs is what is recorded."""
    if recipe.precision != "auto":
        return recipe
    return replace(recipe, precision="bf16" if native_bf16(device) else "fp32")


def predict_shifted(model: nn.Module, images: torch.Tensor, recipe: ToolRecipe) -> torch.Tensor:
    """Test-time augmentation: logits averaged over the image and its four 1-pixel shifts (never the headline)."""
    padded = F.pad(images, (1, 1, 1, 1))
    views = [padded[..., 1 + dy : 29 + dy, 1 + dx : 29 + dx] for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    with recipe.autocast(images.device):
        return sum(utils.predict(model, view.contiguous()) for view in views) / len(views)
