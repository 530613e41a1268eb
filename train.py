"""Train a Session 6 model on MNIST headless: one line per epoch, history/model/curves saved.

python train.py                              # Net, 19 epochs, seed 1 -> results/net_seed1/
python train.py --model lite --seeds 1-5     # a seed sweep -> results/lite_seeds.json
python train.py --val-split 10000            # tune on the last 10k training images, not test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import utils
from model import MODELS


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
    return seeds


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; recipe flags default to the model's recipe in utils.RECIPES."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="net", help="network from model.py (default: net)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default: the model's recipe in utils.RECIPES)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--seeds", type=parse_seeds, help="several seeds, e.g. 1-5: also writes a summary JSON")
    p.add_argument("--batch-size", type=positive_int, help="default: the model's recipe")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the model's recipe)")
    p.add_argument("--weight-decay", type=float, help="default: the model's recipe")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="default: auto")
    p.add_argument(
        "--precision",
        choices=utils.PRECISIONS,
        help="fp32 (default) or bf16 autocast (a CPU needs native bf16, AVX-512 BF16 or AMX, or it emulates it)",
    )
    p.add_argument("--data-dir", default="data", help="where MNIST/raw lives or is put (default: data)")
    p.add_argument("--out", help="run folder (default: results/<model>_seed<seed>); {seed} is filled in")
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


def run_folder(args, seed: int) -> Path:
    """Where one seed's files go."""
    return Path((args.out or "results/{model}_seed{seed}").format(model=args.model, seed=seed))


def run_one(args, seed: int, recipe: utils.Recipe, data, device: torch.device) -> dict:
    """Train one seed, writing train.log, history.json and model.pt every epoch, curves.png at the end."""
    out = run_folder(args, seed)
    out.mkdir(parents=True, exist_ok=True)
    train_data, eval_data, eval_set = data
    utils.seed_everything(seed)
    model = MODELS[args.model]().to(device)
    result = {
        "model": args.model,
        "params": utils.count_parameters(model),
        "seed": seed,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
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
            result["epochs"].append(record)
            log(utils.format_epoch(record, eval_set.split()[0]))
            utils.save_json(out / "history.json", result)  # every epoch, so Ctrl-C loses nothing
            torch.save(model.state_dict(), out / "model.pt")

        log(
            f"{args.model}: {result['params']:,} parameters | seed {seed} | {device} {recipe.precision} | "
            f"{result['train_images']:,} training images | evaluating on {eval_set}"
        )
        try:
            utils.fit(
                model,
                train_data,
                eval_data,
                recipe,
                seed=seed,
                progress=not args.no_progress,
                on_epoch=on_epoch,
                channels_last=args.model == "baseline",
            )
        except KeyboardInterrupt:
            log(f"interrupted after {len(result['epochs'])} epochs; kept what was written in {out}/")
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


def main(argv: list[str] | None = None) -> int:
    """Parse flags, load MNIST once, train every requested seed."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = utils.pick_device(args.device)
    except ValueError as err:
        parser.error(str(err))
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
        "precision": args.precision,
    }
    recipe = replace(utils.RECIPES[args.model], **{k: v for k, v in overrides.items() if v is not None})
    try:
        data = load_data(args, device)
    except (utils.MNISTUnavailableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seeds = args.seeds or [args.seed]
    runs = []
    start = time.perf_counter()
    try:
        for seed in seeds:
            runs.append(run_one(args, seed, recipe, data, device))
    except KeyboardInterrupt:
        print("stopped by Ctrl-C", file=sys.stderr)
        return 130
    if args.seeds:
        summary = utils.summarize_runs(runs)
        name = f"{args.model}_val_seeds.json" if args.val_split else f"{args.model}_seeds.json"
        path = run_folder(args, seeds[0]).parent / name
        utils.save_json(path, {"model": args.model, "params": runs[0]["params"], "runs": runs, "summary": summary})
        print(json.dumps(summary))
        print(f"{len(runs)} seeds in {time.perf_counter() - start:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
