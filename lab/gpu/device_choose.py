"""Pick candidates from validation runs named <rung>_<candidate>_seed<N> (device check 3)."""

import glob
import json
import re
import sys
from collections import defaultdict
from pathlib import Path


def load(tuning: str, rung: str) -> dict[str, list[dict]]:
    """Candidate name -> its runs (history.json), for one rung."""
    runs = defaultdict(list)
    for path in sorted(glob.glob(f"{tuning}/{rung}_*_seed*/history.json")):
        name = re.sub(r"_seed\d+$", "", Path(path).parent.name)
        history = json.loads(Path(path).read_text())
        if len(history["epochs"]) == history["recipe"]["epochs"]:  # finished runs only
            runs[name].append(history)
    return runs


def flags(run: dict) -> str:
    """The candidate's train.py flags (the command between the fixed prefix and --val-split)."""
    return re.sub(r" --seed \d+", "", run["command"].split("--no-progress ")[1].split(" --val-split")[0])


def final_mean(runs: list[dict]) -> float:
    return sum(r["epochs"][-1]["test_acc"] for r in runs) / len(runs)


def first_epoch(run: dict, level: float = 99.4) -> int:
    """First epoch at >= level on validation (epochs + 1 if never)."""
    return next((e["epoch"] for e in run["epochs"] if e["test_acc"] >= level), len(run["epochs"]) + 1)


def main() -> None:
    mode, tuning, rung = sys.argv[1:4]
    runs = load(tuning, rung)
    base = f"{rung}_base"
    for name, rs in sorted(runs.items(), key=lambda kv: -final_mean(kv[1])):
        extra = f" first>=99.4 {[first_epoch(r) for r in rs]}" if rung == "net" else ""
        print(f"# {name}: seeds {len(rs)} mean val {final_mean(rs):.3f}{extra}", file=sys.stderr)
    if mode == "top":  # the best `k` candidates on seed 1 besides the base, and the base
        k = int(sys.argv[4])
        ranked = sorted((n for n in runs if n != base), key=lambda n: -final_mean(runs[n]))
        print(" ".join(ranked[:k] + ([base] if base in runs else [])))
    elif mode == "best":  # the best mean over the most-seeded candidates, if it is not the base: its flags
        most = max(map(len, runs.values()))
        best = max((n for n in runs if len(runs[n]) == most), key=lambda n: final_mean(runs[n]))
        if best != base:
            print(flags(runs[best][0]))
    elif mode == "beat":  # the best mean over seeds, if it beats a floor (an earlier check's best): its flags
        best = max(runs, key=lambda n: final_mean(runs[n]))
        if final_mean(runs[best]) > float(sys.argv[4]):
            print(flags(runs[best][0]))
    elif mode == "net":  # earliest mean first epoch at >= 99.4, final mean within 0.03 of the base
        floor = final_mean(runs[base]) - 0.03
        ok = [n for n in runs if final_mean(runs[n]) >= floor]
        best = min(ok, key=lambda n: (sum(map(first_epoch, runs[n])) / len(runs[n]), -final_mean(runs[n])))
        if best != base:
            print(flags(runs[best][0]))


if __name__ == "__main__":
    main()
