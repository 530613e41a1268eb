"""What a run leaves behind: where it ran, its files written atomically, and seed-sweep summaries.

Used by train.py, benchmark.py, report.py and the notebook's export.
"""

from __future__ import annotations

import json
import os
import platform
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
