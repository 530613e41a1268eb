"""What a run leaves behind: files written atomically, and seed-sweep summaries.

Used by train.py, mnist_data.py and the tools in lab/. As a command it gathers seeds that ran as
separate processes (in parallel, on a GPU) into the summary `train.py --seeds` writes, refusing runs
that are not one sweep (unfinished, repeated, or trained differently):

    python runlog.py runs/micro_seeds.json runs/micro_seed1 runs/micro_seed2 runs/micro_seed3
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from utils import first_epoch_at


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_seeds(text: str) -> list[int]:
    """argparse type: '1-5' or '1,3,7' or '2' -> seeds NumPy accepts (0 to 2**32 - 1)."""
    try:
        low, _, high = text.partition("-")
        seeds = list(range(int(low), int(high) + 1)) if high else [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds look like 1-5 or 1,2,3, not {text!r}") from None
    if not seeds or not all(0 <= s < 2**32 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be between 0 and {2**32 - 1}, got {text!r}")
    return seeds


def check_writable(path: Path) -> str | None:
    """Why files cannot be written in the folder `path` (made later if missing), or None: tried, not guessed."""
    for folder in [Path(path), *Path(path).parents]:
        if folder.exists():
            if not folder.is_dir():
                return f"{folder} is a file, not a folder"
            try:  # a real file, as permission bits say nothing to root or on a read-only mount
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError:
                return f"{folder} is not writable"
            return None
    return None


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(temp) on a temporary file beside `path`, then rename it over `path`: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(path: Path, obj) -> None:
    """Write strict JSON atomically (a crash mid-write keeps the previous file; NaN is refused)."""
    text = json.dumps(obj, indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_model(path: Path, model: nn.Module) -> None:
    """Save the model's weights atomically, as CPU tensors (they load anywhere); OSError if the disk refuses."""
    state = {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in model.state_dict().items()}
    try:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    except RuntimeError as err:  # torch's zip writer reports a full disk as a RuntimeError
        raise OSError(f"could not write {path} ({str(err).splitlines()[0][:120]})") from err


def without_seconds(epochs: list[dict]) -> list[dict]:
    """Epoch records minus the timing, which never repeats: what must repeat under a seed."""
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]


def summarize_runs(runs: list[dict]) -> dict:
    """Mean, std and worst cases of final test accuracy over several seeds' histories."""
    finals = np.array([r["epochs"][-1]["test_acc"] for r in runs])
    last3 = [min(e["test_acc"] for e in r["epochs"][-3:]) for r in runs]
    first = [first_epoch_at(r["epochs"]) for r in runs]
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


def sweep_summary(runs: list[dict], command: str) -> dict:
    """The seed-sweep JSON: the runs, their summary, and the command that made it."""
    return {
        "command": command,
        "model": runs[0]["model"],
        "params": runs[0]["params"],
        "runs": runs,
        "summary": summarize_runs(runs),
    }


# What every run of one sweep shares: the network, its data and its recipe.
SAME = ("model", "widths", "stages", "dropout", "params", "train_images", "eval_set", "recipe")


def not_one_sweep(runs: list[dict]) -> str | None:
    """Why these run histories do not make one sweep (None if they do)."""
    for r in runs:
        if len(r["epochs"]) != r["recipe"]["epochs"]:
            return f"seed {r['seed']} stopped after {len(r['epochs'])} of {r['recipe']['epochs']} epochs"
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) < len(seeds):
        return f"a seed appears twice ({seeds})"
    for key in SAME:
        if len({json.dumps(r.get(key), sort_keys=True) for r in runs}) > 1:
            return f"the runs differ in {key}"
    return None


def read_history(folder: Path) -> dict:
    """A run folder's history.json; ValueError naming the file if it is missing or not a run's history."""
    path = Path(folder) / "history.json"
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from None
    usable = (
        isinstance(run, dict)
        and all(k in run for k in (*SAME, "seed", "epochs"))
        and isinstance(run["recipe"], dict) and isinstance(run["recipe"].get("epochs"), int)
        and isinstance(run["epochs"], list) and len(run["epochs"]) > 0
        and all(isinstance(e, dict) and isinstance(e.get("test_acc"), float) for e in run["epochs"])
    )  # fmt: skip
    if not usable:
        raise ValueError(f"{path}: not the history of a run with at least one finished epoch")
    return run


def main(argv: list[str] | None = None) -> int:
    """Gather run folders' history.json files into one seed-sweep JSON."""
    p = argparse.ArgumentParser(description="Gather seeds run as separate processes into one sweep JSON.")
    p.add_argument("out", type=Path, help="the sweep JSON to write, e.g. runs/micro_seeds.json")
    p.add_argument("runs", type=Path, nargs="+", help="run folders, each with a history.json")
    p.add_argument("--force", action="store_true", help="overwrite an existing sweep JSON")
    args = p.parse_args(argv)
    if args.out.is_dir() or (args.out.exists() and not args.force):
        p.error(f"{args.out} already exists{'' if args.out.is_dir() else '; pass --force to overwrite it'}")
    if len({r.resolve() for r in args.runs}) < len(args.runs):
        p.error("a run folder is named twice")
    try:
        runs = [read_history(r) for r in args.runs]
    except ValueError as err:
        p.error(str(err))
    problem = not_one_sweep(runs)
    if problem:
        p.error(f"not one sweep: {problem}")
    problem = check_writable(args.out.parent)
    if problem:
        p.error(problem)
    command = shlex.join(["python", "runlog.py", *(argv if argv is not None else sys.argv[1:])])
    sweep = sweep_summary(runs, command)
    save_json(args.out, sweep)
    print(json.dumps(sweep["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
