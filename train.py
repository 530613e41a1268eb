"""Train a Session 6 model on MNIST headless: one line per epoch, history/model/curves saved.

python train.py                              # Net, 19 epochs, seed 1 -> runs/net_seed1/
python train.py --model lite --seeds 1-5     # a seed sweep -> runs/lite_seed{1..5}/, runs/lite_seeds.json
python train.py --val-split 10000            # tune on the last 10k training images, not test
python train.py --model micro --widths 4,8,8,12,12 --dropout 0.02   # a variant, no code edits

A run never overwrites an earlier one: an existing, non-empty run folder is refused unless --force.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: curves.png only
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import runlog  # noqa: E402
import utils  # noqa: E402
from mnist_data import MNISTDataError  # noqa: E402
from model import MODELS, BaselineNet, GapNet, StageNet  # noqa: E402

ROOT = Path(__file__).resolve().parent


def parse_seeds(text: str) -> list[int]:
    """'1-5' or '1,3,7' or '2' -> list of ints."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like 1-5 or 1,2,3, not {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    for seed in seeds:
        check_seed(seed)
    return seeds


def check_seed(seed: int | str) -> int:
    """argparse type: a seed NumPy accepts too (0 to 2**32 - 1)."""
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and {2**32 - 1}, got {seed}")
    return seed


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def finite_float(low: float, high: float = math.inf, low_inclusive: bool = False):
    """argparse type: a finite float in (low, high), or [low, high) with low_inclusive."""

    def parse(text: str) -> float:
        value = float(text)
        above = value >= low if low_inclusive else value > low
        if not (math.isfinite(value) and above and value < high):
            bound = f"{'[' if low_inclusive else '('}{low:g}, {high:g})"
            raise argparse.ArgumentTypeError(f"must be a finite number in {bound}, got {text}")
        return value

    return parse


def widths(text: str) -> tuple[int, ...]:
    """argparse type: '4,8,8,10,10' -> the channel counts of a GapNet."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must look like 8,16,20,24,24, not {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive channel counts, got {text!r}")
    return values


def stages(text: str) -> tuple[tuple[int, ...], ...]:
    """argparse type: '4,4,4/8,8,8/8,8,8' -> the conv widths of each stage of a StageNet."""
    try:
        groups = tuple(tuple(int(v) for v in group.split(",")) for group in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"stages must look like 4,4,4/8,8,8/8,8,8, not {text!r}") from None
    if min(min(g) for g in groups) < 1:
        raise argparse.ArgumentTypeError(f"stages must be positive channel counts, got {text!r}")
    return groups


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; recipe flags default to the model's recipe in utils.RECIPES."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="net", help="network from model.py (default: net)")
    p.add_argument("--widths", type=widths, help="GapNet channels of conv1-conv5, e.g. 4,8,8,10,10 (default: model's)")
    p.add_argument("--stages", type=stages, help="--model stagenet/sepnet: widths per stage, e.g. 4,4,4/8,8,8/8,8,8")
    p.add_argument("--dropout", type=finite_float(0, 1, low_inclusive=True), help="dropout p (default: 0.05)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default: the model's recipe in utils.RECIPES)")
    p.add_argument("--seed", type=check_seed, default=1, help="random seed (default: 1)")
    p.add_argument("--seeds", type=parse_seeds, help="several seeds, e.g. 1-5: also writes a summary JSON")
    p.add_argument("--batch-size", type=positive_int, help="default: the model's recipe")
    p.add_argument("--lr", type=finite_float(0), help="peak learning rate (default: the model's recipe)")
    p.add_argument("--weight-decay", type=finite_float(0, low_inclusive=True), help="default: the model's recipe")
    p.add_argument(
        "--warmup", type=finite_float(0, 1), help="fraction of the steps spent raising the LR (default: 0.2)"
    )
    p.add_argument("--label-smoothing", type=finite_float(0, 1, low_inclusive=True), help="default: 0")
    p.add_argument("--rotate", type=finite_float(0, 180, low_inclusive=True), help="max rotation, degrees (default: 8)")
    p.add_argument("--shift", type=finite_float(0, 14, low_inclusive=True), help="max shift, pixels (default: 2)")
    p.add_argument("--scale", type=finite_float(0, 1, low_inclusive=True), help="max zoom in or out (default: 0.1)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="default: auto")
    p.add_argument(
        "--precision",
        choices=utils.PRECISIONS,
        help="fp32 (default) or bf16 autocast (a CPU needs native bf16, AVX-512 BF16 or AMX, or it emulates it)",
    )
    p.add_argument("--data-dir", default="data", help="where MNIST/raw lives or is put (default: data)")
    p.add_argument(
        "--out",
        default="runs/{model}_seed{seed}",
        help="run folder; {model} and {seed} are filled in (default: %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="write into run folders that already hold files")
    p.add_argument("--limit-train", type=positive_int, help="train on the first N training images only (smoke tests)")
    p.add_argument(
        "--val-split",
        type=positive_int,
        metavar="N",
        help="hold out the last N training images and evaluate on them instead of the test set (for tuning)",
    )
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic CUDA kernels: a seed then repeats a GPU run exactly (CPU runs always repeat)",
    )
    p.add_argument("--no-progress", action="store_true", help="no per-step progress bar")
    return p


def run_folder(args, seed: int) -> Path:
    """Where one seed's files go."""
    return Path(args.out.format(model=args.model, seed=seed))


def sweep_path(args, seeds: list[int]) -> Path:
    """The summary JSON of a seed sweep, beside the seeds' folders."""
    name = f"{args.model}_val_seeds.json" if args.val_split else f"{args.model}_seeds.json"
    return run_folder(args, seeds[0]).parent / name


def check_outputs(args, seeds: list[int]) -> str | None:
    """Why the run may not write where it would (None if it may): before any data is loaded."""
    if len(seeds) > 1 and "{seed}" not in args.out:
        return f"--out {args.out!r} has no {{seed}}: every seed would write into the same folder"
    targets = [run_folder(args, s) for s in seeds]
    for folder in targets:
        for parent in [folder, *folder.parents]:
            if parent.exists():
                if not parent.is_dir():
                    return f"--out: {parent} is a file, not a folder"
                if not os.access(parent, os.W_OK | os.X_OK):
                    return f"--out: {parent} is not writable"
                break
        if not args.force and folder.is_dir() and any(folder.iterdir()):
            return f"{folder}/ already holds a run; pass --force to overwrite it, or choose another --out"
    if args.seeds and not args.force and sweep_path(args, seeds).exists():
        return f"{sweep_path(args, seeds)} already exists; pass --force to overwrite it, or choose another --out"
    return None


def load_data(args, device: torch.device) -> tuple[tuple, tuple, str]:
    """(train tensors, evaluation tensors, name of the evaluation set) as the flags ask."""
    train_set, test_set = utils.get_mnist(args.data_dir)
    train_x, train_y = utils.dataset_tensors(train_set, device)
    if args.val_split:
        if args.val_split >= len(train_y):
            raise ValueError(f"--val-split {args.val_split} leaves no training images")
        cut = len(train_y) - args.val_split
        eval_data, eval_set = (train_x[cut:], train_y[cut:]), f"val (last {args.val_split} training images)"
        train_x, train_y = train_x[:cut], train_y[:cut]
    else:
        eval_data, eval_set = utils.dataset_tensors(test_set, device), "test (MNIST 10k)"
    if args.limit_train:
        train_x, train_y = train_x[: args.limit_train], train_y[: args.limit_train]
    return (train_x, train_y), eval_data, eval_set


def build_model(args) -> torch.nn.Module:
    """The network the flags name, with --widths / --dropout applied to a GapNet."""
    options = {"widths": args.widths, "stages": args.stages, "dropout": args.dropout}
    return MODELS[args.model](**{k: v for k, v in options.items() if v is not None})


def git_commit() -> str | None:
    """The checkout's commit (with -dirty if it has uncommitted changes), or None outside git."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def run_one(args, seed: int, recipe: utils.Recipe, data, device: torch.device, command: str) -> dict:
    """Train one seed, writing train.log, model.pt and history.json every epoch, curves.png at the end."""
    out = run_folder(args, seed)  # main() made it, before loading data
    train_data, eval_data, eval_set = data
    utils.seed_everything(seed)
    model = build_model(args).to(device)
    result = {
        "command": command,
        "git_commit": git_commit(),
        "model": args.model,
        "widths": list(getattr(model, "widths", [])) or None,
        "stages": getattr(model, "stages", None),
        "dropout": getattr(model, "dropout", None),
        "params": utils.count_parameters(model),
        "seed": seed,
        **runlog.environment(device),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "train_images": len(train_data[1]),
        "eval_set": eval_set,
        "recipe": asdict(recipe),
        "epochs": [],
    }
    with (out / "train.log").open("w") as log_file:

        def log(line: str) -> None:
            print(line, flush=True)
            log_file.write(line + "\n")
            log_file.flush()

        def on_epoch(record: dict) -> None:
            # Weights first, history last: the history never names an epoch whose weights are not on disk.
            runlog.save_model(out / "model.pt", model)
            result["epochs"].append(record)
            runlog.save_json(out / "history.json", result)
            log(utils.format_epoch(record, eval_set.split()[0]))

        log(f"$ {command}")
        log(
            f"{args.model}: {result['params']:,} parameters | seed {seed} | {device} ({result['device_name']}) "
            f"{recipe.precision} | {result['threads']} threads | torch {result['torch']} | "
            f"{result['train_images']:,} training images | evaluating on {eval_set}"
        )
        try:
            utils.fit(model, train_data, eval_data, recipe, seed=seed, progress=not args.no_progress, on_epoch=on_epoch)
        except KeyboardInterrupt:
            log(f"interrupted after {len(result['epochs'])} epochs; kept what was written in {out}/")
            raise
        except utils.NonFiniteLossError as err:
            log(f"stopped: {err}; {out}/ keeps the last finite epoch ({len(result['epochs'])})")
            raise
        finally:
            if result["epochs"]:
                fig = utils.plot_history(result["epochs"], f"{args.model}, seed {seed}: {eval_set}")
                fig.savefig(out / "curves.png", dpi=100)
                plt.close(fig)
        accuracies = [e["test_acc"] for e in result["epochs"]]
        log(
            f"final {accuracies[-1]:.2f}% | best {max(accuracies):.2f}% | "
            f"{sum(e['seconds'] for e in result['epochs']):.0f} s in all -> {out}/"
        )
    return result


def _terminate(signum: int, frame) -> None:
    """SIGTERM: stop as Ctrl-C does, keeping what was written."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse flags, check them, load MNIST once, train every requested seed."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = shlex.join(["python", "train.py", *argv])
    try:
        device = utils.pick_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    cls = MODELS[args.model]
    if cls is BaselineNet and (args.widths or args.stages or args.dropout is not None):
        parser.error("--widths, --stages and --dropout do not apply to --model baseline (the published network)")
    if args.widths and not (issubclass(cls, GapNet) and len(args.widths) == cls.n_widths):
        parser.error(f"--widths: --model {args.model} takes {getattr(cls, 'n_widths', 'no')} widths")
    if args.stages and not issubclass(cls, StageNet):
        parser.error(f"--stages applies to --model stagenet or sepnet, not --model {args.model}")
    seeds = args.seeds or [args.seed]
    problem = check_outputs(args, seeds)
    if problem:
        parser.error(problem)
    for seed in seeds:  # made now, so an unusable --out is one line before anything is loaded
        try:
            run_folder(args, seed).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            parser.error(f"--out: cannot create {run_folder(args, seed)} ({err.strerror})")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.deterministic:  # cuDNN's default conv backward adds in a varying order on GPUs
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs this to repeat
        torch.use_deterministic_algorithms(True)
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "warmup": args.warmup,
        "label_smoothing": args.label_smoothing,
        "rotate": args.rotate,
        "shift": args.shift,
        "scale": args.scale,
        "precision": args.precision,
    }
    recipe = replace(utils.RECIPES[args.model], **{k: v for k, v in overrides.items() if v is not None})
    try:
        data = load_data(args, device)
    except (MNISTDataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    runs = []
    start = time.perf_counter()
    try:
        for seed in seeds:
            runs.append(run_one(args, seed, recipe, data, device, command))
    except KeyboardInterrupt:
        print("stopped by Ctrl-C or SIGTERM; every finished epoch is on disk", file=sys.stderr)
        return 130
    except utils.NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except OSError as err:  # disk full, folder removed mid-run: every finished epoch is still on disk
        print(f"error: could not write the run's files: {err}", file=sys.stderr)
        return 1
    if args.seeds:
        path, sweep = sweep_path(args, seeds), runlog.sweep_summary(runs, command)
        runlog.save_json(path, sweep)
        print(json.dumps(sweep["summary"]))
        print(f"{len(runs)} seeds in {time.perf_counter() - start:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
