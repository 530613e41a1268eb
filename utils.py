"""Helpers for the Session 6 notebook and train.py, in the order the notebook uses them.

Data tensors and augmentation, the recipe and its optimizer, train / evaluate / fit, then tables
and plots. The data live as tensors on the training device and are augmented a whole batch at a
time there (airbench style), instead of a per-image PIL ``DataLoader``: on two CPU cores that
halves the epoch. Obtaining MNIST itself (online or offline, verified) is `mnist_data.py`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mnist_data import prepare_mnist

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
TARGET = 99.4  # the assignment's test accuracy, in %


def get_mnist(root: str | Path = "data", download: bool = True):
    """Return torchvision's MNIST (train, test) datasets, fetching them online or offline (mnist_data.py)."""
    from torchvision.datasets import MNIST

    prepare_mnist(root, download)
    return MNIST(str(root), train=True), MNIST(str(root), train=False)


# ----------------------------------------------------------------------------------------------
# Fast data path: tensors on the device, whole-batch augmentation.


def dataset_tensors(dataset, device: torch.device | str = "cpu", limit: int | None = None):
    """A torchvision MNIST dataset as (uint8 images (N, 1, 28, 28), int64 labels) on `device`."""
    images, labels = dataset.data[:limit], dataset.targets[:limit]
    return images.unsqueeze(1).to(device), labels.to(device)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] images to the normalised float input the models expect."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255)
    return images.sub(MNIST_MEAN).div_(MNIST_STD)


def augment(images: torch.Tensor, recipe: Recipe, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random rotation, zoom and shift of a float [0, 1] batch, one affine warp on the device."""
    n, device = images.shape[0], images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, device=device, generator=generator) * (high - low) + low

    angle = uniform(-recipe.rotate, recipe.rotate) * (math.pi / 180)
    zoom = uniform(1 - recipe.scale, 1 + recipe.scale)
    shift = recipe.shift * 2 / images.shape[-1]  # pixels to affine_grid's [-1, 1] units
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, uniform(-shift, shift)], 1), torch.stack([sin, cos, uniform(-shift, shift)], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def train_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled (uint8 images, labels) batches sliced from device tensors; the last one may be short."""
    order = torch.randperm(len(labels), device=labels.device, generator=generator)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield images[idx], labels[idx]


# ----------------------------------------------------------------------------------------------
# Recipe: every training hyperparameter in one visible place.


@dataclass
class Recipe:
    """Hyperparameters of one training run (the defaults are the project's recipe)."""

    epochs: int = 19
    batch_size: int = 64
    lr: float = 0.05  # peak LR of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup: float = 0.2  # fraction of the steps spent ramping the LR up
    label_smoothing: float = 0.0
    rotate: float = 8.0  # max rotation in degrees
    shift: float = 2.0  # max shift in pixels
    scale: float = 0.1  # max relative zoom in or out
    # "bf16": bfloat16 autocast, opt-in. Its speed here is in results/speed_levers.json, its
    # validation run in results/tuning/; CPUs without native bf16 (AVX-512 BF16, AMX) emulate it.
    precision: str = "fp32"
    # Memory layout of activations. It pays for the wide BaselineNet; for the narrow GapNets the
    # lever table (results/speed_levers.json) measured 1.06x, within that table's noise.
    channels_last: bool = False


# Each model's recipe (train.py's defaults): the same but for the epoch budgets. Every choice was
# made on the validation split (results/README.md); batch 64 beat 128 there by ~0.1%.
RECIPES = {
    "net": Recipe(),
    "lite": Recipe(epochs=15),
    "micro": Recipe(epochs=15),
    # A separable net this small learned best with a higher LR and lighter augmentation (validation).
    "nano": Recipe(epochs=20, lr=0.1, rotate=5.0, shift=1.0, scale=0.05),
    "gapnet": Recipe(epochs=15),
    "stagenet": Recipe(epochs=15),
    "sepnet": Recipe(epochs=15),
    # Speed first (benchmark.py --speedrun): bf16 and a large batch, the lever that paid on CPUs.
    "speedrun": Recipe(epochs=8, batch_size=256, lr=0.1, precision="bf16"),
    "poolfirst": Recipe(epochs=3, batch_size=512, lr=0.2, precision="bf16"),
    "baseline": Recipe(channels_last=True),
}


# ----------------------------------------------------------------------------------------------
# Training and evaluation.

PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str = "fp32"):
    """bfloat16 autocast on `device` for precision 'bf16'; a no-op context for 'fp32'."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(model: nn.Module, recipe: Recipe, steps: int):
    """SGD with Nesterov momentum and a per-step LR: linear up to the peak, then linear to ~0.

    The values of torch's OneCycleLR (linear, from peak/10 up to the peak at `warmup` of the steps,
    down to peak/1000 at the last step; a test compares them) without its momentum cycling. It is
    written out because OneCycleLR breaks on runs of a handful of steps (smoke runs, --limit-train).
    """
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=True, weight_decay=recipe.weight_decay
    )
    end = max(1, steps - 1)
    peak = min(max(1.0, recipe.warmup * steps - 1), end - 1)

    def factor(step: int) -> float:
        if step <= peak:
            return 0.1 + 0.9 * step / peak if peak > 0 else 1.0
        return 1 - (1 - 1e-3) * min(1.0, (step - peak) / (end - peak))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class NonFiniteLossError(ArithmeticError):
    """The training loss became NaN or infinite (learning rate too high, or bad input)."""


def train_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler,
    recipe: Recipe,
    generator: torch.Generator,
    progress: bool = True,
    epoch: int = 1,
) -> tuple[float, float]:
    """One pass over the training tensors; returns (mean loss, accuracy in %) on augmented batches.

    Raises NonFiniteLossError, naming the epoch and step, once the loss stops being finite.
    """
    model.train()
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), device=labels.device, dtype=torch.long)
    steps = math.ceil(len(labels) / recipe.batch_size)
    window: list[torch.Tensor] = []  # the losses since the last check, only read to name a bad step
    bar = tqdm(total=steps, disable=not progress, leave=False, unit="step", mininterval=0.5)
    seen = 0
    amp = autocast(labels.device, recipe.precision)  # built (and checked) once, entered every step
    for step, (x, y) in enumerate(train_batches(images, labels, recipe.batch_size, generator), 1):
        x = normalize(augment(x.float().div_(255), recipe, generator))
        with amp:
            logits = model(x).float()
        loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        # Accumulate on the device: an .item() per step would force a sync every step.
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        window.append(loss.detach())  # a reference, not a device op
        seen += len(y)
        if step % 50 == 0 or step == steps:  # a sync every 50 steps: cheap, and a NaN run stops early
            if not math.isfinite(loss_sum.item()):  # the sum was finite at the last check: the culprit is here
                losses = torch.stack(window)
                bad = int((~torch.isfinite(losses)).nonzero()[0])
                bar.close()
                raise NonFiniteLossError(
                    f"the training loss became {losses[bad].item()} at epoch {epoch}, "
                    f"step {step - len(window) + 1 + bad} of {steps}: lower the learning rate (peak {recipe.lr:g})"
                )
            window.clear()
            if progress:
                bar.set_postfix(loss=f"{loss.item():.4f}", acc=f"{100 * correct.item() / seen:.2f}%")
        bar.update()
    bar.close()
    return loss_sum.item() / len(labels), 100 * correct.item() / len(labels)


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 2000, precision: str = "fp32") -> torch.Tensor:
    """Logits (fp32) for uint8 images, in large batches (pass the recipe's precision to match training)."""
    model.eval()
    with autocast(images.device, precision):
        batches = [model(normalize(images[i : i + batch_size])).float() for i in range(0, len(images), batch_size)]
    return torch.cat(batches)


def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str = "fp32"
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy in %) on uint8 images."""
    logits = predict(model, images, precision=precision)
    loss = F.cross_entropy(logits, labels).item()
    return loss, 100 * (logits.argmax(1) == labels).float().mean().item()


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an unavailable explicit choice raises ValueError."""
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }
    if name == "auto":
        name = next(n for n in ("cuda", "mps", "cpu") if available[n])
    if not available[name]:
        raise ValueError(f"--device {name} was asked for, but this torch build/machine has no {name.upper()}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and all GPUs)."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(
    model: nn.Module,
    train_data: tuple[torch.Tensor, torch.Tensor],
    eval_data: tuple[torch.Tensor, torch.Tensor],
    recipe: Recipe,
    seed: int = 1,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    final_eval_only: bool = False,
) -> list[dict]:
    """Train `model` with `recipe`, evaluating after every epoch; returns the per-epoch history.

    `on_epoch` gets each epoch's record as soon as it exists (to print, save, checkpoint). Seeding
    happens here, so code run before `fit` (summaries, sample plots) cannot change the result.
    `final_eval_only` evaluates after the last epoch only (speed runs): the other records then
    have no test fields.
    """
    seed_everything(seed)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    images, labels = train_data
    generator = torch.Generator(device=labels.device).manual_seed(seed)
    steps_per_epoch = math.ceil(len(labels) / recipe.batch_size)
    # +1: the LR reaches its minimum exactly as the last batch finishes.
    optimizer, scheduler = make_optimizer(model, recipe, recipe.epochs * steps_per_epoch + 1)
    history = []
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(
            model, images, labels, optimizer, scheduler, recipe, generator, progress, epoch
        )
        seconds = time.perf_counter() - start  # training only (train_epoch's .item() waits for the GPU)
        record = {"epoch": epoch, "train_loss": round(train_loss, 5), "train_acc": round(train_acc, 3)}
        if epoch == recipe.epochs or not final_eval_only:
            test_loss, test_acc = evaluate(model, *eval_data, precision=recipe.precision)
            record |= {"test_loss": round(test_loss, 5), "test_acc": round(test_acc, 3)}
        record |= {"lr": round(optimizer.param_groups[0]["lr"], 6), "seconds": round(seconds, 2)}
        history.append(record)
        if on_epoch:
            on_epoch(record)
    return history


def format_epoch(record: dict, eval_name: str = "test", label: str = "") -> str:
    """One readable line for an epoch record (the fields it has: train, eval, lr, seconds, elapsed)."""
    parts = [f"{label}epoch {record['epoch']:2d}"]
    if "train_loss" in record:
        parts.append(f"train loss {record['train_loss']:.4f} acc {record['train_acc']:6.2f}%")
    if "test_acc" in record:
        loss = f"loss {record['test_loss']:.4f} " if "test_loss" in record else ""
        parts.append(f"{eval_name} {loss}acc {record['test_acc']:6.2f}%")
    if "lr" in record:
        parts.append(f"lr {record['lr']:.5f}")
    parts.append(f"{record['seconds']:5.1f} s")
    if "elapsed" in record:
        parts.append(f"elapsed {record['elapsed']:6.1f} s")
    return " | ".join(parts)


def model_summary(model: nn.Module) -> None:
    """Print torchsummary's table, run on a CPU copy in eval mode so the model's BN statistics
    and the random stream (dropout) are exactly as they were: training results stay the same."""
    import copy

    from torchsummary import summary

    with torch.random.fork_rng(devices=[]):
        summary(copy.deepcopy(model).cpu().eval(), (1, 28, 28), device="cpu")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def first_epoch_at(epochs: list[dict], target: float = TARGET) -> int | None:
    """The first epoch whose test accuracy is at or above `target` (None if none is)."""
    return next((e["epoch"] for e in epochs if e["test_acc"] >= target), None)


def assignment_checklist(model: nn.Module, history: list[dict]) -> list[dict]:
    """Each requirement of the assignment beside the value measured on `model` and its `history`."""

    def count(*kinds: type) -> int:
        return sum(isinstance(m, kinds) for m in model.modules())

    params = count_parameters(model)
    head = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][-1]
    head_name = f"{head.kernel_size[0]}x{head.kernel_size[1]} conv" if isinstance(head, nn.Conv2d) else "linear layer"
    fc = isinstance(head, nn.Linear) or head.kernel_size == (1, 1)
    final, best = history[-1]["test_acc"], max(r["test_acc"] for r in history)
    first = first_epoch_at(history)
    rows = [
        ("parameters < 20,000", f"{params:,}", params < 20_000),
        ("Batch Normalization", f"{count(nn.BatchNorm2d)} BatchNorm2d layers", count(nn.BatchNorm2d) > 0),
        ("Dropout", f"{count(nn.Dropout, nn.Dropout2d)} Dropout layers", count(nn.Dropout, nn.Dropout2d) > 0),
        (
            "Global Average Pooling",
            f"{count(nn.AdaptiveAvgPool2d, nn.AvgPool2d)} GAP layer",
            count(nn.AdaptiveAvgPool2d, nn.AvgPool2d) > 0,
        ),
        (
            "FC layer (optional)",
            f"the {head_name} on the pooled channels ({count_parameters(head):,} parameters)" if fc else "none",
            True,
        ),
        ("epochs < 20", str(len(history)), len(history) < 20),
        (
            f"test accuracy >= {TARGET}%",
            f"final {final:.2f}% (best {best:.2f}%, first >= {TARGET} at epoch {first or 'none'})",
            final >= TARGET,
        ),
    ]
    return [{"requirement": r, "measured": m, "met": "yes" if ok else "NO"} for r, m, ok in rows]


def format_table(rows: list[dict]) -> str:
    """A list of same-keyed dicts as an aligned plain-text table."""
    keys = list(rows[0])
    widths = [max(len(str(k)), *(len(str(r[k])) for r in rows)) for k in keys]
    line = "  ".join(str(k).ljust(w) for k, w in zip(keys, widths)).rstrip()
    body = ["  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths)).rstrip() for r in rows]
    return "\n".join([line, "-" * len(line), *body])


# ----------------------------------------------------------------------------------------------
# Plots.


def plot_digits(images: torch.Tensor, titles: list[str], cols: int = 12, title: str = ""):
    """A grid of digit images with a caption each; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, caption in zip(axes.flat, images, titles):
        ax.imshow(img.squeeze().float().cpu(), cmap="gray_r")
        ax.set_title(caption, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: list[dict], title: str = ""):
    """Loss and accuracy curves, train and test, per epoch; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for split in ("train", "test"):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], marker="o", ms=3, label=split)
        ax_acc.plot(epochs, [r[f"{split}_acc"] for r in history], marker="o", ms=3, label=split)
    ax_acc.axhline(99.4, color="gray", ls="--", lw=1, label="99.4% target")
    ax_acc.set_ylim(max(95.0, min(r["train_acc"] for r in history) - 0.5), 100)
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Counts[true, predicted]."""
    return torch.bincount(labels.cpu() * classes + predictions.cpu(), minlength=classes**2).reshape(classes, classes)


def plot_confusion_matrix(matrix: torch.Tensor):
    """Confusion matrix with counts written in the off-diagonal cells; returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.5))
    off_diagonal = matrix.clone().fill_diagonal_(0)
    ax.imshow(off_diagonal, cmap="Reds")
    for t in range(matrix.shape[0]):
        for p in range(matrix.shape[1]):
            if matrix[t, p]:
                color = "gray" if t == p else "black"
                ax.text(p, t, int(matrix[t, p]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix: {int(off_diagonal.sum())} errors (colour: errors only)")
    fig.tight_layout()
    return fig
