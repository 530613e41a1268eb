"""The speed toolbox: what `train.py`'s extra flags and the speedrun (`lab/benchmark.py`) add to `utils.py`.

Muon for the 3x3 filters (and its Newton-Schulz steps), a moving average of the weights, bf16 autocast (always,
or where native), the channels-last layout, a fixed whitening first layer, a random crop, label smoothing,
distillation from a teacher, BatchNorm momentum and test-time shifts, each off by default; and the speedrun's
two recipes. Which of them paid, and by how much, is in docs/speed.md. The notebook uses none of this.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import utils
from utils import knob


@dataclass(frozen=True)
class ToolRecipe(utils.Recipe):
    """`utils.Recipe` plus the toolbox's switches, each off by default."""

    label_smoothing: float = knob(0.0, "label smoothing of the cross-entropy", high=1)
    crop: int = knob(0, "random translation by up to this many pixels, a crop of the padded image", high=14)
    ema: float = knob(0.0, "decay of a moving average of the weights, tested instead of them (0: off)", high=1)
    bn_momentum: float = knob(0.1, "BatchNorm's momentum for its running statistics", low_open=True, high=1)
    muon_lr: float = knob(0.0, "peak learning rate of Muon for the 3x3 conv filters, SGD for the rest (0: off)")
    ns_steps: int = knob(5, "Newton-Schulz steps of Muon's orthogonalisation", low=1, high=20)
    distill: float = knob(0.0, "weight of a teacher's softened outputs in the loss (0: off; needs --teacher)", high=1)
    temperature: float = knob(4.0, "temperature of the teacher's and the student's softmax", low_open=True, high=100)
    memory_format: str = knob("contiguous", "the model's and its input's layout in memory",
                              choices=("contiguous", "channels_last"))
    whiten: int = knob(0, "1: conv1's filters fixed to +/- the training patches' principal components", high=2)
    precision: str = knob("fp32", "fp32, bf16 autocast, or auto: bf16 where the device runs it natively",
                          choices=("fp32", "bf16", "auto"))  # fmt: skip

    def __post_init__(self) -> None:
        """Every field, utils.Recipe's too, within the range its knob declares (train.py's flags come here)."""
        for f in fields(self):
            value, m = getattr(self, f.name), f.metadata
            if m["choices"]:
                if value not in m["choices"]:
                    raise ValueError(f"{f.name} must be one of {', '.join(m['choices'])}, not {value!r}")
                continue
            above = value > m["low"] if m["low_open"] else value >= m["low"]
            whole = isinstance(value, int) or f.type != "int"
            if not (whole and math.isfinite(value) and above and value < m["high"]):
                bounds = f"{'(' if m['low_open'] else '['}{m['low']:g}, {m['high']:g})"
                raise ValueError(f"{f.name} must be {'an integer' if f.type == 'int' else 'a number'} in {bounds}, "
                                 f"not {value!r}")  # fmt: skip
        if self.muon_lr and self.memory_format == "channels_last":  # Muon steps views of contiguous filters
            raise ValueError("memory_format channels_last does not go with muon_lr: choose one")


LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
# Speed first (python -m lab.benchmark --speedrun): bf16 where the device runs it natively (emulated, it is slower
# than fp32) and a large batch, the lever that paid on CPUs. The CPU speedrun: the framed network with Muon for its
# filters reached the 8-epoch validation accuracy in 4 epochs (docs/speed.md's toolbox table: the fewest epochs
# with a mean >= 99.44% and every seed >= 99.40%).
SPEEDRUN = ToolRecipe(epochs=8, batch_size=256, lr=0.1, precision="auto")
RECIPES = {
    **{name: ToolRecipe(**asdict(r)) for name, r in utils.RECIPES.items()},
    "baseline": ToolRecipe(),  # the task statement's network under Net's recipe
    "speedrun": SPEEDRUN,
    "framed": replace(SPEEDRUN, epochs=4, muon_lr=0.02),
}


def translate(images: torch.Tensor, pixels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to `pixels` in x and y, filling with zeros: a random crop of a padded image."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pixels, pixels, pixels, pixels))
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n, 1), device=images.device, generator=generator)
    rows = (dy + torch.arange(h, device=images.device)).unsqueeze(2)  # (n, h, 1)
    cols = (dx + torch.arange(w, device=images.device)).unsqueeze(1)  # (n, 1, w)
    return padded[torch.arange(n, device=images.device).view(n, 1, 1), 0, rows, cols].unsqueeze(1)


def add_muon(optimizer: torch.optim.Optimizer, filters: list[torch.Tensor], recipe: ToolRecipe) -> None:
    """Step the 3x3 conv filters with Muon right after each step of `optimizer`, at its scheduled LR.

    torch's Muon takes 2-D matrices only, so it gets each conv's filters as an [out, in*3*3] view that
    shares their storage: its in-place update is the filters' update.
    """
    matrices = [nn.Parameter(w.data.view(len(w), -1)) for w in filters]
    muon = torch.optim.Muon(matrices, lr=recipe.muon_lr, weight_decay=recipe.weight_decay,  # decay set on purpose
                            ns_steps=recipe.ns_steps)  # fmt: skip

    def step(sgd: torch.optim.Optimizer, *_) -> None:
        for matrix, w in zip(matrices, filters):
            matrix.grad, w.grad = w.grad.view_as(matrix), None
        muon.param_groups[0]["lr"] = recipe.muon_lr * sgd.param_groups[0]["lr"] / recipe.lr  # the same schedule
        muon.step()

    optimizer.register_step_post_hook(step)


def whitening_conv(model: nn.Module) -> nn.Conv2d:
    """The model's first conv, if `whiten` can fix it: its filters pair up +/- over the patches' components."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    c_out, c_in, k, _ = conv.weight.shape
    if c_out % 2 or c_out > 2 * c_in * k * k:
        raise ValueError(f"whiten needs an even first conv of at most {2 * c_in * k * k} channels, not {c_out}")
    return conv


def whiten_first_conv(model: nn.Module, images: torch.Tensor) -> None:
    """Fix the first conv's filters to +/- the leading eigenvectors of the images' patch covariance, each scaled
    to unit variance, and freeze them (airbench's whitening layer): training starts from decorrelated features,
    and the layer needs no weight gradient."""
    conv = whitening_conv(model)
    c_out, c_in, k, _ = conv.weight.shape
    x = utils.normalize(images[:10_000])  # as batch_loss sees them, before augmentation
    patches = F.unfold(x, k).transpose(1, 2).reshape(-1, c_in * k * k)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T.cov())  # ascending
    top = eigenvectors.T.flip(0)[: c_out // 2] / (eigenvalues.flip(0)[: c_out // 2, None] + 5e-4).sqrt()
    conv.weight.data.copy_(torch.cat([top, -top]).view_as(conv.weight))
    conv.weight.requires_grad_(False)


def make_optimizer(model: nn.Module, recipe: ToolRecipe, steps: int):
    """`utils.make_optimizer` for the model; with `muon_lr`, Muon steps the 3x3 filters and SGD the rest."""
    filters = [m.weight for m in model.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) and m.weight.requires_grad]  # fmt: skip
    filters = filters if recipe.muon_lr else []
    trained = [p for p in model.parameters() if p.requires_grad and all(p is not f for f in filters)]
    optimizer, scheduler = utils.make_optimizer(trained, recipe, steps)
    if filters:
        add_muon(optimizer, filters, recipe)
    return optimizer, scheduler


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


def autocast(device: torch.device, recipe: ToolRecipe):
    """bf16 autocast under `precision="bf16"`, else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.precision == "bf16")


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: ToolRecipe, generator, teacher=None):
    """`utils.batch_loss` with the toolbox's crop (before the affine warp), layout, bf16, label smoothing and
    distillation: the loss mixes the labels' with the KL divergence to a teacher's softened outputs (Hinton et
    al. 2015; scaled by the temperature squared, so that its gradients keep their size)."""
    x = x.float().div_(255)
    x = utils.normalize(utils.augment(translate(x, recipe.crop, generator) if recipe.crop else x, recipe, generator))
    x = x.contiguous(memory_format=LAYOUTS[recipe.memory_format])
    with autocast(y.device, recipe):
        logits = model(x).float()
    loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
    if recipe.distill:
        with torch.no_grad(), autocast(y.device, recipe):
            soft = teacher(x).float()
        t = recipe.temperature
        kd = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(soft / t, 1), log_target=True, reduction="batchmean")
        loss = (1 - recipe.distill) * loss + recipe.distill * t * t * kd
    return loss, logits


def train(model, images, labels, optimizer, scheduler, recipe: ToolRecipe, generator, epoch=1, progress=True,
          teacher=None):  # fmt: skip
    """`utils.train` with the toolbox's `batch_loss` (and its teacher, in eval mode, under `distill`)."""
    loss_fn = functools.partial(batch_loss, teacher=teacher.eval() if teacher is not None else None)
    return utils.train(model, images, labels, optimizer, scheduler, recipe, generator, epoch, progress, loss_fn)


def predict(model: nn.Module, images: torch.Tensor, recipe: ToolRecipe) -> torch.Tensor:
    """`utils.predict` under the recipe's precision."""
    with autocast(images.device, recipe):
        return utils.predict(model, images)


def test(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, recipe: ToolRecipe) -> tuple[float, int]:
    """`utils.test` under the recipe's precision."""
    with autocast(images.device, recipe):
        return utils.test(model, images, labels)


def predict_shifted(model: nn.Module, images: torch.Tensor, recipe: ToolRecipe) -> torch.Tensor:
    """Test-time augmentation: logits averaged over the image and its four 1-pixel shifts (never the headline)."""
    padded = F.pad(images, (1, 1, 1, 1))
    views = [padded[..., 1 + dy : 29 + dy, 1 + dx : 29 + dx] for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    return sum(predict(model, view.contiguous(), recipe) for view in views) / len(views)


def fit(model, train_data, test_data, recipe: ToolRecipe, seed: int = 1, progress: bool = True, on_epoch=None,
        teacher: nn.Module | None = None):  # fmt: skip
    """`utils.fit` with the toolbox; `on_epoch(record, scored)` gets the module the record's test scored (the
    weight average under `ema`, else the model), which is also the model that leaves fit."""
    if bool(recipe.distill) != (teacher is not None):
        raise ValueError("distill needs a teacher, and a teacher needs distill > 0")
    utils.seed_everything(seed)
    (images, labels), (test_images, test_labels) = train_data, test_data
    recipe = resolve(recipe, labels.device)
    generator = torch.Generator(device=labels.device).manual_seed(seed)
    steps = recipe.epochs * math.ceil(len(labels) / recipe.batch_size) + 1  # as utils.fit
    model.to(memory_format=LAYOUTS[recipe.memory_format])
    if recipe.whiten:
        whiten_first_conv(model, images)
    optimizer, scheduler = make_optimizer(model, recipe, steps)
    for bn in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        bn.momentum = recipe.bn_momentum
    tested = model
    if recipe.ema:  # the average is updated after every optimizer step and tested instead of the model
        tested = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema), use_buffers=True)
        optimizer.register_step_post_hook(lambda *_: tested.update_parameters(model))
    history = []
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train(model, images, labels, optimizer, scheduler, recipe, generator, epoch, progress,
                                      teacher)  # fmt: skip
        seconds = time.perf_counter() - start
        tested_loss, correct = test(tested, test_images, test_labels, recipe)
        record = utils.epoch_record(epoch, train_loss, train_acc, tested_loss, correct, test_labels, optimizer, seconds)
        if tested is not model and epoch == recipe.epochs:
            model.load_state_dict(tested.module.state_dict())  # the model leaves fit as it was tested
        history.append(record)
        scored = model if tested is model else tested.module
        (on_epoch or (lambda r, _: print(utils.format_epoch(r), flush=True)))(record, scored)
    return history
