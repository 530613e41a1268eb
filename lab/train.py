"""Train a Session 6 model on MNIST headless: a progress bar and a line per epoch; history and weights saved.

python -m lab.train                            # Net, 19 epochs, seed 1 -> runs/net_seed1/
python -m lab.train --model lite --seeds 1-5   # a seed sweep -> runs/lite_seed{1..5}/, runs/lite_seeds.json
python -m lab.train --val-split 10000          # tune on the last 10k training images, not test
python -m lab.train --model micro --widths 4,8,8,12,12 --dropout 0.02   # a variant, no code edits
SMOKE_TEST=1 python -m lab.train --epochs 1    # a smoke run: the first 2,000 training images

Every recipe flag (--lr, --batch-size, ...) is a field of utils.Recipe or of toolbox.ToolRecipe (Muon and
bf16, off by default), which checks its own value; its default is the model's recipe in toolbox.RECIPES. A run
never overwrites an earlier one: a non-empty run folder is refused unless --force. Every input is checked
before data is loaded or a folder is made.
"""

from __future__ import annotations

import sys

if not __package__:  # `python lab/train.py` cannot import the project's modules
    sys.exit("run it from the repository root as: python -m lab.train [flags]")

import argparse
import json
import os
import shlex
import string
import subprocess
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch

import utils
from lab import runlog, toolbox
from lab.networks import MODELS, BaselineNet, StageNet
from lab.runlog import one_seed, parse_seeds, positive_int
from model import Net

REPOSITORY = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 60_000


def stages(text: str) -> tuple[tuple[int, ...], ...]:
    """argparse type: '6,10/12,16/16,20' -> the positive conv widths of each stage (one stage: a Net's widths)."""
    try:
        groups = tuple(tuple(int(v) for v in group.split(",")) for group in text.split("/"))
    except ValueError:
        groups = ((0,),)
    if min(map(min, groups)) < 1:
        raise argparse.ArgumentTypeError(f"positive channel counts like 8,16,20,24,24 or 6,10/12,16, not {text!r}")
    return groups


def widths(text: str) -> tuple[int, ...]:
    """argparse type: '4,8,8,10,10' -> the channel counts of a Net."""
    groups = stages(text)
    if len(groups) > 1:
        raise argparse.ArgumentTypeError(f"widths are one group of channel counts like 8,16,20,24,24, not {text!r}")
    return groups[0]


def recipe_flags(p: argparse.ArgumentParser) -> None:
    """One flag per recipe field, its help from the field; values are checked by the recipe itself."""
    group = p.add_argument_group("recipe (default: the model's recipe in toolbox.RECIPES)")
    for f in fields(toolbox.ToolRecipe):
        kind = {"int": int, "float": float}.get(f.type, str)
        flag, text = "--" + f.name.replace("_", "-"), f"{f.metadata['help']} (Net: {f.default})"
        group.add_argument(flag, type=kind, choices=f.metadata["choices"], help=text)


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=list(MODELS), default="net", help="the network (lab/networks.py; default: net)")
    p.add_argument("--widths", type=widths, help="net/lite/micro/speedrun: channels of conv1-conv5, e.g. 4,8,8,10,10")
    p.add_argument("--pool-after", type=positive_int, help="the Net shapes: the max-pool after conv N (default 2)")
    p.add_argument("--stages", type=stages, help="nano: widths per stage, e.g. 6,10/12,16/16,20")
    p.add_argument("--dropout", type=float, help="dropout p in [0, 1) (default: the model's)")
    p.add_argument("--seed", type=one_seed, help="random seed (default: 1)")
    p.add_argument("--seeds", type=parse_seeds, help="several seeds, e.g. 1-5: also writes a summary JSON")
    recipe_flags(p)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="default: auto")
    p.add_argument("--data-dir", default="data", help="where MNIST/raw lives or is put (default: data)")
    p.add_argument("--out", default="runs/{model}_seed{seed}", help="run folder, {model} and {seed} filled in")
    p.add_argument("--force", action="store_true", help="write into run folders that already hold files")
    p.add_argument("--val-split", type=positive_int, metavar="N", help="evaluate on the last N training images")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--deterministic", action="store_true", help="deterministic CUDA kernels (CPU runs always repeat)")
    p.add_argument("--no-progress", action="store_true", help="no per-step progress bar")
    p.add_argument("--tta", action="store_true", help="also record the final model's accuracy with test-time shifts")
    return p


def run_folder(args, seed: int) -> Path:
    """Where one seed's files go."""
    return Path(args.out.format(model=args.model, seed=seed))


def sweep_path(args, seeds: list[int]) -> Path:
    """The summary JSON of a seed sweep, beside the seeds' folders."""
    name = f"{args.model}_val_seeds.json" if args.val_split else f"{args.model}_seeds.json"
    return run_folder(args, seeds[0]).parent / name


def output_problem(args, seeds: list[int]) -> str | None:
    """Why the run may not write where it would (None if it may)."""
    if not args.out.strip() or not args.data_dir.strip():  # '' would mean the current folder: the repository
        return f"--{'out' if not args.out.strip() else 'data-dir'} is empty: name a folder"
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(args.out) if name is not None}
    except ValueError as err:
        return f"--out {args.out!r}: {err}"
    if names - {"model", "seed"}:
        return f"--out {args.out!r}: only {{model}} and {{seed}} are filled in, not {sorted(names - {'model', 'seed'})}"
    if len(seeds) > 1 and "seed" not in names:
        return f"--out {args.out!r} has no {{seed}}: every seed would write into the same folder"
    for folder in [run_folder(args, s) for s in seeds]:
        if Path(folder).resolve() in (REPOSITORY, *REPOSITORY.parents):
            return f"--out {args.out!r} is the repository itself (or a folder above it): name a folder for the run"
        problem = runlog.check_writable(folder)
        if problem:
            return f"--out: {problem}"
        if not args.force and folder.is_dir() and any(folder.iterdir()):
            return f"{folder}/ already holds a run; pass --force to overwrite it, or choose another --out"
    if args.seeds and not args.force and sweep_path(args, seeds).exists():
        return f"{sweep_path(args, seeds)} already exists; pass --force to overwrite it, or choose another --out"
    return None


def build_model(args) -> torch.nn.Module:
    """The network the flags name, with --widths / --stages / --dropout applied."""
    options = {"widths": args.widths, "stages": args.stages, "dropout": args.dropout, "pool_after": args.pool_after}
    return MODELS[args.model](**{k: v for k, v in options.items() if v is not None})


def model_problem(args) -> str | None:
    """Why the flags do not make a network that takes a 28x28 image (None if they do)."""
    cls = MODELS[args.model]
    if cls is BaselineNet and (args.widths or args.stages or args.pool_after or args.dropout is not None):
        return "--widths, --stages, --pool-after and --dropout do not apply to --model baseline (the published network)"
    if args.pool_after and not issubclass(cls, Net):
        return f"--pool-after applies to --model net, lite, micro, speedrun or framed, not --model {args.model}"
    if args.widths and not (issubclass(cls, Net) and len(args.widths) == cls.n_widths):
        return f"--widths: --model {args.model} takes {getattr(cls, 'n_widths', 'no')} widths"
    if args.stages and not issubclass(cls, StageNet):
        return f"--stages applies to --model nano, not --model {args.model}"
    if sum(args.widths or ()) + sum(map(sum, args.stages or ())) > 4096:
        return "--widths/--stages: over 4,096 channels in all, far beyond this assignment's 20k parameters"
    try:
        model = build_model(args)
        model.eval()(torch.zeros(1, 1, 28, 28))
    except (ValueError, RuntimeError) as err:  # a bad dropout, a map that shrinks below 1x1
        return f"--model {args.model}: {f'{err}'.splitlines()[0]}"
    return None


def git_commit() -> str | None:
    """The checkout's commit (with -dirty if it has uncommitted changes), or None outside git."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=REPOSITORY, capture_output=True, text=True
        )
    except OSError:
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def load_data(args, device: torch.device) -> tuple[tuple, tuple, str]:
    """(train tensors, evaluation tensors, name of the evaluation set) as the flags ask."""
    train_set, test_set = utils.get_mnist(args.data_dir)
    train_x, train_y = utils.dataset_tensors(train_set, device)
    if args.val_split:
        cut = len(train_y) - args.val_split
        eval_data, eval_set = (train_x[cut:], train_y[cut:]), f"val (last {args.val_split} training images)"
        train_x, train_y = train_x[:cut], train_y[:cut]
    else:
        eval_data, eval_set = utils.dataset_tensors(test_set, device), "test (MNIST 10k)"
    limit = utils.SMOKE_IMAGES if utils.SMOKE else None  # SMOKE_TEST=1: a smoke run
    return (train_x[:limit], train_y[:limit]), eval_data, eval_set


def all_finite(model: torch.nn.Module) -> bool:
    """Whether every weight and buffer (BatchNorm statistics too) is finite."""
    return all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def run_one(args, seed: int, recipe: toolbox.ToolRecipe, data, device: torch.device, command: str) -> dict:
    """Train one seed, writing train.log, model.pt and history.json after every epoch."""
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
        "pool_after": getattr(model, "pool_after", None),
        "dropout": getattr(model, "dropout", None),
        "params": utils.count_parameters(model),
        "seed": seed,
        **utils.environment(device),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "train_images": len(train_data[1]),
        "eval_set": eval_set,
        "recipe": asdict(recipe),
        "epochs": [],
    }
    for name in ("history.json", "model.pt"):  # --force: an earlier run's files never sit beside this run's log
        (out / name).unlink(missing_ok=True)
    with (out / "train.log").open("w") as log_file:

        def log(line: str) -> None:
            print(line, flush=True)
            log_file.write(line + "\n")
            log_file.flush()

        def on_epoch(record: dict) -> None:
            if not all_finite(model):  # a finite loss can still leave inf in BatchNorm's running variance
                raise utils.NonFiniteLossError(
                    f"epoch {record['epoch']} left non-finite weights or BatchNorm "
                    f"statistics: lower the learning rate (peak {recipe.lr:g})"
                )
            # Weights first, history last: the history never names an epoch whose weights are not on disk, and a
            # signal waits for both, so the checkpoint is never an epoch ahead of the history either.
            with runlog.signals_held():  # the log's line too: a stop leaves the three files agreeing
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
            utils.fit(model, train_data, eval_data, recipe, seed, not args.no_progress, on_epoch)
        except KeyboardInterrupt:
            log(f"interrupted after {len(result['epochs'])} epochs; kept what was written in {out}/")
            raise
        except utils.NonFiniteLossError as err:
            log(f"stopped: {err}; {out}/ keeps the last finite epoch ({len(result['epochs'])})")
            raise
        if args.tta:  # reported apart from the plain number, which alone counts
            images, labels = eval_data
            correct = int((toolbox.predict_shifted(model, images, recipe).argmax(1) == labels).sum())
            result["tta_acc"] = round(100 * correct / len(labels), 3)
            runlog.save_json(out / "history.json", result)
            log(f"with test-time shifts (5 views, reported apart): {result['tta_acc']:.2f}%")
        accuracies = [e["test_acc"] for e in result["epochs"]]
        log(
            f"final {accuracies[-1]:.2f}% | best {max(accuracies):.2f}% | "
            f"{sum(e['seconds'] for e in result['epochs']):.0f} s in all -> {out}/"
        )
    return result


def sweep_summary(runs: list[dict], command: str) -> dict:
    """The seed-sweep JSON: the runs, their summary, and the command that made it."""
    return {
        "command": command,
        "model": runs[0]["model"],
        "params": runs[0]["params"],
        "runs": runs,
        "summary": runlog.summarize_runs(runs),
    }


def main(argv: list[str] | None = None) -> int:
    """Check every flag, load MNIST once, train every requested seed."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "lab.train", *argv])
    overrides = {f.name: getattr(args, f.name) for f in fields(toolbox.ToolRecipe) if getattr(args, f.name) is not None}
    try:
        recipe = replace(toolbox.RECIPES[args.model], **overrides)  # the recipe checks each value
    except ValueError as err:  # its message starts with the field's name
        parser.error(f"--{str(err).split()[0].replace('_', '-')}: {err}")
    try:
        device = utils.pick_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    recipe = toolbox.resolve(recipe, device)
    if args.val_split is not None and args.val_split >= TRAIN_IMAGES:
        parser.error(f"--val-split {args.val_split} leaves none of MNIST's {TRAIN_IMAGES:,} training images")
    if args.seeds and args.seed is not None:
        parser.error("--seed and --seeds: give one of them")
    seeds = args.seeds or [1 if args.seed is None else args.seed]
    problem = model_problem(args) or output_problem(args, seeds)
    if problem:
        parser.error(problem)
    for seed in seeds:  # made and taken now, so an unusable --out is one line before anything is loaded
        try:
            run_folder(args, seed).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            parser.error(f"--out: cannot create {run_folder(args, seed)} ({err.strerror})")
        if runlog.claim(run_folder(args, seed)) is None:  # held until this process ends
            parser.error(f"--out: {run_folder(args, seed)}/ is in use by another train.py run")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.deterministic:  # cuDNN's default conv backward adds in a varying order on GPUs
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs this to repeat
        torch.use_deterministic_algorithms(True)
    runlog.stop_once(KeyboardInterrupt())
    runs = []
    start = time.perf_counter()
    try:
        data = load_data(args, device)
        for seed in seeds:
            runs.append(run_one(args, seed, recipe, data, device, command))
        if args.seeds:
            path, sweep = sweep_path(args, seeds), sweep_summary(runs, command)
            print(json.dumps(sweep["summary"]))
            with runlog.signals_held():
                runlog.save_json(path, sweep, exclusive=not args.force)
            print(f"{len(runs)} seeds in {time.perf_counter() - start:.0f} s -> {path}")
    except FileExistsError:  # another run wrote the summary meanwhile: both kept, this one's runs are on disk
        print(f"error: {path} was written by another run meanwhile; this sweep's runs are in their folders and its "
              "summary is printed above", file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("stopped by Ctrl-C or SIGTERM; every finished epoch is on disk", file=sys.stderr)
        return 130
    except utils.MNISTDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except utils.NonFiniteLossError as err:
        muon = f"; Muon steps the 3x3 filters at --muon-lr {recipe.muon_lr:g}: lower it first" if recipe.muon_lr else ""
        print(f"error: {err}{muon}", file=sys.stderr)
        return 3
    except OSError as err:  # disk full, folder removed mid-run: every finished epoch is still on disk
        print(f"error: could not write the run's files: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
