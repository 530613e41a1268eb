"""What a run leaves behind, written so that nothing is left half: atomic files, checked folders, and the
command-line types that name them, and the summary of a seed sweep. Used by the tools in lab/."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import utils


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


MAX_SEEDS = 1000  # more seeds than anyone runs here: a typo, not a plan (and no list of 2**32 seeds in memory)


def parse_seeds(text: str) -> list[int]:
    """argparse type: '1-5' or '1,3,7' or '2' -> seeds NumPy accepts (0 to 2**32 - 1), at most MAX_SEEDS."""
    try:
        low, _, high = text.partition("-")
        bounds = (int(low), int(high)) if high else None
        seeds = [] if bounds else [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds look like 1-5 or 1,2,3, not {text!r}") from None
    if bounds and bounds[1] < bounds[0]:
        raise argparse.ArgumentTypeError(f"the range {text!r} is reversed: write {high}-{low}")
    if bounds and bounds[1] - bounds[0] >= MAX_SEEDS or len(seeds) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_SEEDS} seeds in one command")
    if len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} names a seed twice")
    seeds = seeds or list(range(bounds[0], bounds[1] + 1))
    if not all(0 <= s < 2**32 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be between 0 and {2**32 - 1}, got {text!r}")
    return seeds


def one_seed(text: str) -> int:
    """argparse type: one seed, as parse_seeds checks it."""
    seeds = parse_seeds(text)
    if len(seeds) > 1:
        raise argparse.ArgumentTypeError(f"one seed, not {text!r} (--seeds takes several)")
    return seeds[0]


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


def atomic_write(path: Path, write: Callable[[Path], None], exclusive: bool = False) -> None:
    """Call write(temp) on a temporary file beside `path`, then rename it over `path`: all or nothing. With
    `exclusive`, FileExistsError if `path` exists by then (another run wrote it meanwhile): never overwritten."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        if exclusive:
            os.link(tmp, path)  # atomic, and refused where a file is: two writers cannot both succeed
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_json(path: Path, obj, exclusive: bool = False) -> None:
    """Write strict JSON atomically (a crash mid-write keeps the previous file; NaN is refused); `exclusive`: as
    atomic_write's."""
    text = json.dumps(obj, indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text), exclusive)


def save_model(path: Path, model: nn.Module) -> None:
    """Save the model's weights atomically, as CPU tensors (they load anywhere); OSError if the disk refuses."""
    state = {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in model.state_dict().items()}
    try:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    except RuntimeError as err:  # torch's zip writer reports a full disk as a RuntimeError
        raise OSError(f"could not write {path} ({f'{err}'.splitlines()[0][:120]})") from err


def without_seconds(epochs: list[dict]) -> list[dict]:
    """Epoch records minus the timing, which never repeats: what must repeat under a seed."""
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]


def claim(folder: Path) -> int | None:
    """Take `folder` for this process alone: an exclusive lock that the system drops when the process ends, so
    two runs never write into one folder. The descriptor that holds it, or None when another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, as before
        return -1
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


HELD = {"depth": 0, "pending": None}  # signals_held's state, which stop_once's handler reads


@contextlib.contextmanager
def signals_held():
    """A stop (stop_once's Ctrl-C or SIGTERM) waits until the block ends: files written together are left
    together. (A signal mask would not do: torch's worker threads would take the signal instead.)"""
    HELD["depth"] += 1
    try:
        yield
    finally:
        HELD["depth"] -= 1
        if not HELD["depth"] and HELD["pending"] is not None:
            pending, HELD["pending"] = HELD["pending"], None
            raise pending


def stop_once(exception: BaseException) -> None:
    """On Ctrl-C or SIGTERM raise `exception` once (after any signals_held block): a second signal while
    stopping is ignored, not a traceback."""

    def handler(signum: int, frame) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if HELD["depth"]:
            HELD["pending"] = exception
            return
        raise exception

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def summarize_runs(runs: list[dict]) -> dict:
    """Mean, std and worst cases of final test accuracy over several seeds' histories (train.py's sweeps)."""
    finals = np.array([r["epochs"][-1]["test_acc"] for r in runs])
    last3 = [min(e["test_acc"] for e in r["epochs"][-3:]) for r in runs]
    first = [utils.first_epoch_at(r["epochs"]) for r in runs]
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
