"""What a run leaves behind: where it ran, its files written atomically, and seed-sweep summaries.

Used by train.py, benchmark.py, report.py and the notebook's export. As a command it gathers seeds
that ran as separate processes (in parallel, on a GPU) into the summary `train.py --seeds` writes:

    python runlog.py runs/micro_seeds.json runs/micro_seed1 runs/micro_seed2 runs/micro_seed3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from utils import first_epoch_at


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def environment(device: torch.device) -> dict:
    """Where a run happens: device, its name, CPU, torch version and CPU threads."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "device": str(device),
        "device_name": name,
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


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


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(temp) on a temporary file beside `path`, then rename it over `path`."""
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
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def save_model(path: Path, model: nn.Module) -> None:
    """Save the model's state_dict atomically."""
    _atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))


def sweep_summary(runs: list[dict], command: str) -> dict:
    """The seed-sweep JSON: the runs, their summary, and the command that made it."""
    return {
        "command": command,
        "model": runs[0]["model"],
        "params": runs[0]["params"],
        "runs": runs,
        "summary": summarize_runs(runs),
    }


def main(argv: list[str] | None = None) -> int:
    """Gather run folders' history.json files into one seed-sweep JSON."""
    p = argparse.ArgumentParser(description="Gather seeds run as separate processes into one sweep JSON.")
    p.add_argument("out", type=Path, help="the sweep JSON to write, e.g. runs/micro_seeds.json")
    p.add_argument("runs", type=Path, nargs="+", help="run folders, each with a history.json")
    p.add_argument("--force", action="store_true", help="overwrite an existing sweep JSON")
    args = p.parse_args(argv)
    if args.out.exists() and not args.force:
        p.error(f"{args.out} already exists; pass --force to overwrite it")
    missing = [str(r) for r in args.runs if not (r / "history.json").is_file()]
    if missing:
        p.error(f"no history.json in {', '.join(missing)}")
    runs = [json.loads((r / "history.json").read_text()) for r in args.runs]
    if len({(r["model"], r["params"], json.dumps(r["recipe"], sort_keys=True), r["eval_set"]) for r in runs}) > 1:
        p.error("the runs differ in model, parameters, recipe or evaluation set: not one sweep")
    command = shlex.join(["python", "runlog.py", *(argv if argv is not None else sys.argv[1:])])
    sweep = sweep_summary(runs, command)
    save_json(args.out, sweep)
    print(json.dumps(sweep["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
