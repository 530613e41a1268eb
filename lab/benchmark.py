"""Time the task statement's recipe and ours side by side, on the same machine, data and run.

    python -m lab.benchmark            # both recipes to 99.4%: results/speed.json + images/accuracy_vs_time.png
    python -m lab.benchmark --speedrun [--seeds 1-10] [--device cuda]   # the speedrun recipe, timed

An output file that exists is refused unless --force, and one that could not be written is refused
before the run: no benchmark overwrites a committed result or loses a finished one. The lever table
and profiles in results/ were made by modes that have since left this file (docs/speed.md says which).

The task statement's recipe: `BaselineNet`, a per-image PIL `DataLoader` with `RandomRotation(10)`,
SGD lr 0.01 momentum 0.9, batch 128, no schedule, the test set through a `DataLoader` of 1000.
Ours: `Net` with `utils.Recipe` on device-resident tensors (what `train.py` runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from statistics import mean

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

import runlog
import utils
from mnist_data import MNISTDataError, prepare_mnist
from model import MODELS, BaselineNet, Net
from runlog import parse_seeds, positive_int

ROOT = Path(__file__).resolve().parents[1]
TARGET = utils.TARGET


def baseline_loaders(data_dir: str) -> tuple[DataLoader, DataLoader]:
    """The task statement's data pipeline: per-image PIL transforms in a DataLoader."""
    from torchvision.datasets import MNIST

    prepare_mnist(data_dir)
    normalize = transforms.Normalize((utils.MNIST_MEAN,), (utils.MNIST_STD,))
    train_tf = transforms.Compose([transforms.RandomRotation(10), transforms.ToTensor(), normalize])
    test_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train = MNIST(data_dir, train=True, transform=train_tf)
    test = MNIST(data_dir, train=False, transform=test_tf)
    return DataLoader(train, batch_size=128, shuffle=True), DataLoader(test, batch_size=1000)


def run_baseline(data_dir: str, max_epochs: int, seed: int) -> list[dict]:
    """The task statement's recipe until it first reaches the target (or max_epochs)."""
    torch.manual_seed(seed)
    train_loader, test_loader = baseline_loaders(data_dir)
    model = BaselineNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    epochs, elapsed = [], 0.0
    for epoch in range(1, max_epochs + 1):
        start = time.perf_counter()
        model.train()
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        train_seconds = time.perf_counter() - start
        with torch.inference_mode():
            model.eval()
            acc = 100 * sum((model(x).argmax(1) == y).sum().item() for x, y in test_loader) / len(test_loader.dataset)
        elapsed += time.perf_counter() - start
        epochs.append(
            {"epoch": epoch, "test_acc": acc, "train_seconds": round(train_seconds, 2), "elapsed": round(elapsed, 2)}
        )
        print(f"baseline epoch {epoch:2d} | test {acc:6.2f}% | {train_seconds:5.1f} s | elapsed {elapsed:6.1f} s")
        if acc >= TARGET:
            break
    return epochs


def our_tensors(data_dir: str, limit: int | None = None, device: torch.device | str = "cpu") -> tuple[tuple, tuple]:
    """MNIST train (first `limit` images) and test sets as tensors, as train.py holds them."""
    train_set, test_set = utils.get_mnist(data_dir)
    return utils.dataset_tensors(train_set, device, limit=limit), utils.dataset_tensors(test_set, device)


def run_ours(train: tuple, test: tuple, recipe: utils.Recipe, seed: int, label: str = "ours") -> list[dict]:
    """Our recipe for Net, exactly as train.py runs it, timed the same way as the baseline."""
    utils.seed_everything(seed)
    model = Net()
    out = []
    start = time.perf_counter()

    def on_epoch(r: dict, _scored: nn.Module) -> None:
        elapsed = time.perf_counter() - start  # training and evaluation so far
        out.append({"epoch": r["epoch"], "test_acc": r["test_acc"], "train_seconds": r["seconds"],
                    "elapsed": round(elapsed, 2)})  # fmt: skip
        print(f"{label} {utils.format_epoch(r)} | elapsed {elapsed:6.1f} s", flush=True)

    utils.fit(model, train, test, recipe, seed=seed, progress=False, on_epoch=on_epoch)
    return out


# ----------------------------------------------------------------------------------------------
# Speedrun: a speed-first network (--model) with its recipe in utils.RECIPES, timed over seeds.


def forward_macs(model: nn.Module) -> int:
    """Multiply-adds of one forward pass of one 28x28 image (convolutions and linear layers)."""
    macs = 0

    def count(module: nn.Module, inputs, output) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs += output.numel() * k * module.in_channels // module.groups
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    return macs


def speedrun_once(model_name: str, train: tuple, test: tuple, recipe: utils.Recipe, seed: int, compile_: bool) -> dict:
    """One speedrun: training, then one test at the end, wall-clock timed (the device synchronised)."""
    device = train[1].device
    utils.seed_everything(seed)
    model = MODELS[model_name]().to(device)
    if compile_:  # the compiled code is cached by the network's class: only the warm-up compiles
        model = torch.compile(model)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    generator = torch.Generator(device=device).manual_seed(seed)
    steps = recipe.epochs * math.ceil(len(train[1]) / recipe.batch_size) + 1
    optimizer, scheduler = utils.make_optimizer(model, recipe, steps)
    for epoch in range(1, recipe.epochs + 1):
        utils.train(model, *train, optimizer, scheduler, recipe, generator, epoch, progress=False)
    _, correct = utils.test(model, *test, recipe.precision)  # ends in .item(): the device is done
    seconds = time.perf_counter() - start
    return {"seed": seed, "test_acc": round(100 * correct / len(test[1]), 3), "seconds": round(seconds, 3)}


def speedrun(args, device: torch.device) -> dict:
    """The task statement's recipe until 99.4%, then the speedrun for every seed; writes the JSON."""
    baseline = None if args.skip_baseline else run_baseline(args.data_dir, args.max_baseline_epochs, args.seed)
    recipe = utils.RECIPES[args.model]
    train, test = our_tensors(args.data_dir, limit=args.limit_train, device=device)
    # Warm-up (excluded, reported): first calls allocate memory, pick kernels and, with --compile,
    # compile every shape the runs meet (its last batch is as short as the training set's).
    n = min(4096 + len(train[1]) % recipe.batch_size, len(train[1]))
    warm = speedrun_once(args.model, (train[0][:n], train[1][:n]), test, replace(recipe, epochs=1), 0, args.compile)
    print(f"warm-up (1 epoch on {n:,} images, excluded): {warm['seconds']:.2f} s", flush=True)
    runs = []
    for seed in args.seeds:
        runs.append(speedrun_once(args.model, train, test, recipe, seed, args.compile))
        print(f"speedrun seed {seed:2d} | test acc {runs[-1]['test_acc']:6.2f}% | {runs[-1]['seconds']:6.2f} s")
    accs, secs = [r["test_acc"] for r in runs], [r["seconds"] for r in runs]
    model = MODELS[args.model]()
    mean_seconds = sum(secs) / len(secs)
    summary = {
        "final_mean": round(sum(accs) / len(accs), 3),
        "final_std": round(float(torch.tensor(accs).std()), 3) if len(accs) > 1 else 0.0,
        "final_min": min(accs),
        "every_seed_at_least_99_4": min(accs) >= TARGET,
        "seconds_mean": round(mean_seconds, 3),
        "seconds_max": max(secs),
        "warmup_seconds": warm["seconds"],
        "params": utils.count_parameters(model),
        "forward_macs_per_image": forward_macs(model),
        "training_images_per_second": round(recipe.epochs * len(train[1]) / mean_seconds),  # test time counted in
    }
    if baseline:
        hit = first_reaching(baseline)
        summary["baseline_time_to_99_4"] = hit and hit["elapsed"]
        summary["ratio"] = hit and round(hit["elapsed"] / mean_seconds, 2)
    result = {
        "command": shlex.join(["python", "-m", "lab.benchmark", *sys.argv[1:]]),
        "machine": machine(device),
        "recipe": {"model": args.model, **asdict(recipe), "compile": args.compile},
        "baseline": baseline,
        "runs": runs,
        "summary": summary,
    }
    save(args.out, result)
    print(f"speedrun: mean {summary['final_mean']:.2f}% (min {summary['final_min']:.2f}%) in {mean_seconds:.2f} s "
          f"over {len(runs)} seeds -> {args.out}")  # fmt: skip
    if baseline:
        print(f"task statement's recipe to 99.4%: {summary['baseline_time_to_99_4']} s | ratio {summary['ratio']}x")
    return result


def machine(device: torch.device | None = None) -> dict:
    """What ran the benchmark: utils.environment plus the core count."""
    return {**utils.environment(device or torch.device("cpu")), "cores": os.cpu_count()}


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    """Test accuracy against wall time for each recipe."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, runs in curves.items():
        ax.plot([0] + [r["elapsed"] / 60 for r in runs], [None] + [r["test_acc"] for r in runs], "o-", ms=3, label=name)
    ax.axhline(TARGET, color="gray", ls="--", lw=1, label="99.4%")
    ax.set_ylim(98, 99.8)
    ax.set_xlabel("wall time on this machine (minutes, evaluation included)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{utils.cpu_name()}, {os.cpu_count()} cores, CPU")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def first_reaching(runs: list[dict]) -> dict | None:
    """The first epoch record at or above the target."""
    epoch = utils.first_epoch_at(runs)
    return runs[epoch - 1] if epoch else None


def save(path: Path, result: dict) -> None:
    """Write the result; if the disk refuses it now, print it whole instead, so a finished run is never lost."""
    try:
        runlog.save_json(path, result)
    except OSError as err:
        print(json.dumps(result, indent=1))
        sys.exit(f"error: could not write {path} ({err}); the result is printed above")


def output_problem(path: Path, force: bool) -> str | None:
    """Why the benchmark may not write `path` (None if it may): checked before the run, not after."""
    if path.is_dir() or (path.exists() and not force):
        return f"{path} exists; pass --force to overwrite it, or --out another file"
    return runlog.check_writable(path.parent)


def main() -> None:
    """Parse flags and run the side-by-side comparison or the speedrun."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speedrun", action="store_true", help="the speedrun over --seeds -> results/speedrun.json")
    p.add_argument("--model", choices=["framed", "speedrun"], default="framed", help="the speedrun's network")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1-10"), help="speedrun seeds (default: 1-10)")
    p.add_argument("--compile", action="store_true", help="speedrun with torch.compile (compiled in the warm-up)")
    p.add_argument("--skip-baseline", action="store_true", help="speedrun without the task statement's recipe")
    p.add_argument("--limit-train", type=positive_int, help="speedrun on the first N training images (a smoke run)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="speedrun device (default: cpu)")
    p.add_argument("--data-dir", default=str(ROOT / "data"))
    p.add_argument("--seed", type=parse_seeds, default=[1], help="seed of the single runs (default: 1)")
    p.add_argument("--max-baseline-epochs", type=positive_int, default=19)
    p.add_argument("--epochs", type=positive_int, default=utils.RECIPES["net"].epochs, help="our full schedule")
    p.add_argument("--short-epochs", type=positive_int, default=6, help="epochs of our short schedule (default: 6)")
    p.add_argument("--out", type=Path, help="output JSON (default: results/speed.json or results/speedrun.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = p.parse_args()
    args.seed = args.seed[0]
    args.out = args.out or ROOT / "results" / ("speedrun.json" if args.speedrun else "speed.json")
    problem = output_problem(args.out, args.force)
    try:
        device = utils.pick_device(args.device)
    except ValueError as err:
        problem = problem or str(err)
    if problem:
        p.error(problem)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM; nothing written"))
    try:
        prepare_mnist(args.data_dir)
    except MNISTDataError as err:
        p.exit(2, f"error: {err}\n")
    if args.speedrun:
        speedrun(args, device)
        return
    baseline = run_baseline(args.data_dir, args.max_baseline_epochs, args.seed)
    recipe = replace(utils.RECIPES["net"], epochs=args.epochs)
    train, test = our_tensors(args.data_dir)
    ours = run_ours(train, test, recipe, args.seed)
    short = run_ours(train, test, replace(recipe, epochs=args.short_epochs), args.seed, label="short")
    base_hit = first_reaching(baseline)
    # The short schedule counts only if its final (annealed) epoch holds the target.
    candidates = [first_reaching(ours)] + ([first_reaching(short)] if short[-1]["test_acc"] >= TARGET else [])
    ours_hit = min((c for c in candidates if c), key=lambda c: c["elapsed"], default=None)

    def summary(runs: list[dict]) -> dict:
        hit = first_reaching(runs)
        return {
            "seconds_per_epoch": round(mean(r["train_seconds"] for r in runs), 2),
            "epochs": runs,
            "time_to_99_4": hit and hit["elapsed"],
            "epoch_to_99_4": hit and hit["epoch"],
            "full_run_seconds": runs[-1]["elapsed"],
        }

    base_summary, ours_summary = summary(baseline), summary(ours)
    result = {
        "command": shlex.join(["python", "-m", "lab.benchmark", *sys.argv[1:]]),
        "machine": machine(),
        "compile": {"used": False, "seconds": None, "note": "torch.compile is not part of the default recipe"},
        "baseline": {
            "recipe": "task statement: BaselineNet, DataLoader + RandomRotation(10), SGD 0.01 m0.9, bs 128",
            **base_summary,
        },
        "ours": {"recipe": "Net + utils.RECIPES['net'] on device tensors (python train.py)", **ours_summary},
        "ours_short": {"recipe": f"the same with --epochs {args.short_epochs}", **summary(short)},
        "ours_time_to_99_4": ours_hit and ours_hit["elapsed"],
        "ours_time_to_99_4_from": "ours_short" if ours_hit and ours_hit in short else "ours",
        "epoch_ratio": round(base_summary["seconds_per_epoch"] / ours_summary["seconds_per_epoch"], 2),
        "time_to_99_4_ratio": round(base_hit["elapsed"] / ours_hit["elapsed"], 2) if base_hit and ours_hit else None,
    }
    save(args.out, result)
    plot(
        {
            "task statement's recipe (BaselineNet)": baseline,
            "ours (Net, 19 epochs)": ours,
            f"ours, {args.short_epochs}-epoch schedule": short,
        },
        ROOT / "images" / "accuracy_vs_time.png",
    )
    print(f"epoch ratio {result['epoch_ratio']}x, time-to-99.4% ratio {result['time_to_99_4_ratio']}x -> {args.out}")


if __name__ == "__main__":
    main()
