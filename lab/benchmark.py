"""The speedrun: the task statement's recipe until it first reaches 99.4% (for each of its seeds), then a
speed-first network with its recipe in toolbox.RECIPES over ten seeds, in one process on the same machine and data.

    python -m lab.benchmark --speedrun [--model framed|speedrun] [--seeds 1-10] [--baseline-seeds 1] [--device cuda]
    python -m lab.benchmark --profile STEPS

An output file that exists is refused unless --force, and one that could not be written is refused
before the run: no benchmark overwrites a committed result or loses a finished one.

The task statement's recipe: `BaselineNet`, a per-image PIL `DataLoader` with `RandomRotation(10)`,
SGD lr 0.01 momentum 0.9, batch 128, no schedule, the test set through a `DataLoader` of 1000.
"""

from __future__ import annotations

import sys

if not __package__:  # `python lab/benchmark.py` cannot import the project's modules
    sys.exit("run it from the repository root as: python -m lab.benchmark --speedrun [...]")

import argparse
import json
import os
import shlex
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

import utils
from lab import runlog, toolbox
from lab.networks import MODELS, BaselineNet
from lab.runlog import parse_seeds, positive_int

HERE = Path(__file__).resolve().parent
TARGET = utils.TARGET


def baseline_loaders(data_dir: str) -> tuple[DataLoader, DataLoader]:
    """The task statement's data pipeline: per-image PIL transforms in a DataLoader."""
    from torchvision.datasets import MNIST

    utils.get_mnist(data_dir)
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
            loss = F.nll_loss(model(x), y)  # the course's loss, on the network's log-probabilities
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
        print(
            f"baseline epoch {epoch:2d} | test {acc:6.2f}% | {train_seconds:5.1f} s | elapsed {elapsed:6.1f} s",
            flush=True,
        )
        if acc >= TARGET:
            break
    return epochs


# ----------------------------------------------------------------------------------------------
# Speedrun: a speed-first network (--model) with its recipe in toolbox.RECIPES, timed over seeds.


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


def speedrun_once(model_name: str, train: tuple, test: tuple, recipe: toolbox.ToolRecipe, seed: int) -> dict:
    """One speedrun: `utils.fit`'s training, then one test at the end, wall-clock timed (the device synchronised)."""
    device = train[1].device
    utils.seed_everything(seed)
    model = MODELS[model_name]().to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    utils.fit(model, train, None, recipe, seed, progress=False)  # trains only: the test comes once, below
    with recipe.autocast(device):
        _, correct = utils.test(model, *test)  # ends in .item(): the device is done
    seconds = time.perf_counter() - start
    return {"seed": seed, "test_acc": round(100 * correct / len(test[1]), 3), "seconds": round(seconds, 3)}


def speedrun(args, device: torch.device) -> dict:
    """The task statement's recipe until 99.4%, then the speedrun for every seed; writes the JSON."""
    seeds = [] if args.skip_baseline else args.baseline_seeds
    baseline = [{"seed": s, "epochs": run_baseline(args.data_dir, args.max_baseline_epochs, s)} for s in seeds]
    recipe = toolbox.resolve(toolbox.RECIPES[args.model], device)
    train, test = utils.load_mnist(device, args.data_dir)
    # Warm-up (excluded, reported): first calls allocate memory and pick kernels for every shape the runs meet
    # (its last batch is as short as the training set's).
    n = min(4096 + len(train[1]) % recipe.batch_size, len(train[1]))
    warm = speedrun_once(args.model, (train[0][:n], train[1][:n]), test, replace(recipe, epochs=1), 0)
    print(f"warm-up (1 epoch on {n:,} images, excluded): {warm['seconds']:.2f} s", flush=True)
    runs = []
    for seed in args.seeds:
        runs.append(speedrun_once(args.model, train, test, recipe, seed))
        print(
            f"speedrun seed {seed:2d} | test acc {runs[-1]['test_acc']:6.2f}% | {runs[-1]['seconds']:6.2f} s",
            flush=True,
        )
    accs, secs = [r["test_acc"] for r in runs], [r["seconds"] for r in runs]
    model = MODELS[args.model]()
    mean_seconds = sum(secs) / len(secs)
    summary = {
        "final_mean": round(sum(accs) / len(accs), 3),
        "final_std": round(float(torch.tensor(accs).std()), 3) if len(accs) > 1 else 0.0,
        "final_min": min(accs),
        "every_seed_at_least_99_4": min(accs) >= TARGET,
        "seeds_at_least_99_4": sum(a >= TARGET for a in accs),
        "seconds_mean": round(mean_seconds, 3),
        "seconds_max": max(secs),
        "warmup_seconds": warm["seconds"],
        "params": utils.count_parameters(model),
        "forward_macs_per_image": forward_macs(model),
        "training_images_per_second": round(recipe.epochs * len(train[1]) / mean_seconds),  # test time counted in
    }
    hits = [first_reaching(b["epochs"]) for b in baseline]
    if hits and all(hits):  # the ratio's denominator over the baseline's seeds, and its range
        times = [hit["elapsed"] for hit in hits]
        summary["baseline_times_to_99_4"] = times
        summary["baseline_time_to_99_4"] = round(sum(times) / len(times), 2)
        summary["ratio"] = round(summary["baseline_time_to_99_4"] / mean_seconds, 2)
        summary["ratio_min"], summary["ratio_max"] = (
            round(min(times) / mean_seconds, 2),
            round(max(times) / mean_seconds, 2),
        )
    elif hits:
        summary["baseline_time_to_99_4"] = summary["ratio"] = None  # a seed never reached the target
    result = {
        "command": shlex.join(["python", "-m", "lab.benchmark", *sys.argv[1:]]),
        "machine": machine(device),
        "recipe": {"model": args.model, **asdict(recipe)},
        "baseline": baseline,
        "runs": runs,
        "summary": summary,
    }
    save(args.out, result, args.force)
    print(
        f"speedrun: mean {summary['final_mean']:.2f}% (min {summary['final_min']:.2f}%) in {mean_seconds:.2f} s "
        f"over {len(runs)} seeds -> {args.out}"
    )
    if summary.get("ratio"):
        print(
            f"task statement's recipe to 99.4% (mean of {len(baseline)}): {summary['baseline_time_to_99_4']} s | "
            f"ratio {summary['ratio']}x"
        )
    elif baseline:
        print(f"no ratio: the task statement's recipe missed 99.4% in {args.max_baseline_epochs} epochs on a seed")
    return result


def profile(args, device: torch.device) -> dict:
    """Where the speedrun's time goes: torch.profiler over `utils.train`, the timed code itself, on --profile steps
    of its recipe (after as many unprofiled), then one test of the 10k test set; the parts are the profiler's own
    labels (autograd's backward nodes, the optimizers' steps, the augmentation's two operations). And this
    machine's peak, as a matmul in the recipe's precision reaches it."""
    from torch.profiler import ProfilerActivity, record_function

    recipe = toolbox.resolve(toolbox.RECIPES[args.model], device)
    (images, labels), test = utils.load_mnist(device, args.data_dir)
    n = min(args.profile * recipe.batch_size, len(labels))
    utils.seed_everything(1)
    model = MODELS[args.model]().to(device)
    optimizer, scheduler = recipe.optimizer(model, 2 * args.profile + 1)
    generator = torch.Generator(device=device).manual_seed(1)
    epoch = (model, images[:n], labels[:n], optimizer, scheduler, recipe, generator)
    utils.train(*epoch, progress=False)  # warm-up: allocations, kernel choice
    with torch.profiler.profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("training"):
            utils.train(*epoch, progress=False)
        with record_function("evaluation"), recipe.autocast(device):
            utils.test(model, *test)
    averages = prof.key_averages()
    total = {e.key: e.cpu_time_total / 1e6 for e in averages}

    def among(*prefixes: str) -> float:
        return sum(seconds for key, seconds in total.items() if key.startswith(prefixes))

    parts = {
        "augment": among("aten::affine_grid_generator", "aten::grid_sampler_2d"),
        "backward": among("autograd::engine::evaluate_function"),
        "optimizer": among("Optimizer.step#SGD.step"),
    }
    parts = {"forward and the rest": total["training"] - sum(parts.values()), **parts}
    parts |= {"evaluation": total["evaluation"], "of which Muon": among("Optimizer.step#Muon.step")}
    ops = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)[:12]
    size = 512  # the peak: a bf16 (or fp32) matmul of n x n matrices, as the recipe's precision would run it
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16 if recipe.precision == "bf16" else torch.float32)
    start = time.perf_counter()
    for _ in range(200):
        a @ a
    peak = 200 * size**3 / (time.perf_counter() - start)
    train_seconds = total["training"] - parts["augment"] - parts["optimizer"]
    result = {
        "command": shlex.join(["python", "-m", "lab.benchmark", *sys.argv[1:]]),
        "machine": machine(device),
        "recipe": {"model": args.model, **asdict(recipe)},
        "steps": args.profile,
        "parts_seconds": {k: round(v, 3) for k, v in parts.items()},
        "top_ops": [
            {"op": e.key, "shapes": str(e.input_shapes)[:120], "self_s": round(e.self_cpu_time_total / 1e6, 3)}
            for e in ops
        ],
        # a training step: the forward pass's multiply-adds, and about twice as many in the backward pass
        "training_macs_per_second": round(3 * forward_macs(model.cpu()) * n / train_seconds),
        "peak_macs_per_second": round(peak),
    }
    save(args.out, result, args.force)
    print(json.dumps(result["parts_seconds"]), f"-> {args.out}")
    return result


def machine(device: torch.device | None = None) -> dict:
    """What ran the benchmark: utils.environment plus the core count."""
    return {**utils.environment(device or torch.device("cpu")), "cores": os.cpu_count()}


def first_reaching(runs: list[dict]) -> dict | None:
    """The first epoch record at or above the target."""
    epoch = utils.first_epoch_at(runs)
    return runs[epoch - 1] if epoch else None


def save(path: Path, result: dict, force: bool) -> None:
    """Write the result, never over a file another run wrote meanwhile (unless `force`); if it cannot be written
    now, print it whole instead, so a finished run is never lost."""
    try:
        runlog.save_json(path, result, exclusive=not force)
    except OSError as err:
        print(json.dumps(result, indent=1))
        why = "another run wrote it meanwhile" if isinstance(err, FileExistsError) else str(err)
        sys.exit(f"error: could not write {path} ({why}); the result is printed above")


def output_problem(path: Path, force: bool) -> str | None:
    """Why the benchmark may not write `path` (None if it may): checked before the run, not after."""
    if not str(path).strip() or path.is_dir():
        return f"--out {str(path)!r} is {'a folder' if str(path).strip() else 'empty'}: name the JSON file to write"
    if path.exists() and not force:
        return f"{path} exists; pass --force to overwrite it, or --out another file"
    return runlog.check_writable(path.parent)


def main() -> None:
    """Parse flags and run the speedrun or the profile."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--speedrun", action="store_true", help="the speedrun -> --out")
    mode.add_argument("--profile", type=positive_int, metavar="STEPS", help="profile STEPS training steps -> --out")
    p.add_argument("--model", choices=["framed", "speedrun"], default="framed", help="the speedrun's network")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1-10"), help="speedrun seeds (default: 1-10)")
    p.add_argument("--skip-baseline", action="store_true", help="speedrun without the task statement's recipe")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="speedrun device (default: cpu)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--baseline-seeds", type=parse_seeds, help="seeds of the task statement's recipe (default: 1)")
    p.add_argument("--max-baseline-epochs", type=positive_int, default=19)
    p.add_argument("--out", help="output JSON (default: lab/results/speedrun.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = p.parse_args()
    default = HERE / "results" / ("profile.json" if args.profile else "speedrun.json")
    args.out = default if args.out is None else Path(args.out) if args.out.strip() else args.out
    problem = output_problem(args.out, args.force)
    if args.skip_baseline and args.baseline_seeds:
        problem = problem or "--baseline-seeds and --skip-baseline: give one of them"
    args.baseline_seeds = args.baseline_seeds or [1]
    try:
        device = utils.pick_device(args.device)
    except ValueError as err:
        problem = problem or str(err)
    if problem:
        p.error(problem)
    runlog.stop_once(SystemExit("stopped by Ctrl-C or SIGTERM; nothing written"))
    try:
        utils.get_mnist(args.data_dir)
    except utils.MNISTDataError as err:
        p.exit(2, f"error: {err}\n")
    profile(args, device) if args.profile else speedrun(args, device)


if __name__ == "__main__":
    main()
