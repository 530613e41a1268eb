"""Render the README's result tables from the committed JSON in results/, so no number is typed.

python report.py           # print the tables
python report.py --write   # replace each <!-- NAME --> ... <!-- /NAME --> block in README.md
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import utils
from model import Net

RESULTS = Path("results")
README = Path("README.md")
# (results key, class name, parameter budget); epochs come from utils.RECIPES.
LADDER = [("net", "Net", 20_000), ("lite", "NetLite", 8_000), ("micro", "NetMicro", 4_000)]
NAMES = {key: name for key, name, _ in LADDER}


def load(name: str) -> dict:
    """A committed results JSON."""
    return json.loads((RESULTS / name).read_text())


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def checklist() -> str:
    """The assignment's checklist, measured on Net and the notebook's run (utils.assignment_checklist)."""
    rows = utils.assignment_checklist(Net(), load("notebook_history.json")["epochs"])
    return table(["requirement", "this repository (the notebook's run)", "met"], [list(r.values()) for r in rows])


def epoch_log() -> str:
    """The notebook run, one row per epoch."""
    run = load("notebook_history.json")
    rows = [
        [
            e["epoch"],
            f"{e['train_loss']:.4f}",
            f"{e['train_acc']:.2f}",
            f"{e['test_loss']:.4f}",
            f"{e['test_acc']:.2f}",
            f"{e['lr']:.5f}",
            f"{e['seconds']:.1f}",
        ]
        for e in run["epochs"]
    ]
    return table(["epoch", "train loss", "train acc %", "test loss", "test acc %", "lr", "train s"], rows)


def first_epoch(summary: dict) -> str:
    """Mean first epoch at >= 99.4%, saying how many seeds never got there."""
    reached = [e for e in summary["first_epoch_99_4"] if e is not None]
    if not reached:
        return "never"
    note = "" if len(reached) == len(summary["seeds"]) else f" ({len(reached)} of {len(summary['seeds'])} seeds)"
    return f"{summary['first_epoch_99_4_mean']}{note}"


# The frontier targets set before the runs: (model, summary key, description, test, threshold).
TARGETS = [
    ("net", "final_mean", "mean final test accuracy >= 99.55%", ">=", 99.55),
    ("net", "last3_min", "every seed >= 99.45% in each of the last 3 epochs", ">=", 99.45),
    ("net", "first_epoch_99_4_mean", "mean first epoch at >= 99.4% is <= 6", "<=", 6),
    ("lite", "final_mean", "mean final test accuracy >= 99.50%", ">=", 99.50),
    ("lite", "final_min", "every seed >= 99.4% at the final epoch", ">=", 99.4),
    ("micro", "final_mean", "mean final test accuracy >= 99.45%", ">=", 99.45),
]


def is_met(value: float | None, op: str, threshold: float) -> bool:
    """Whether a measured value meets a target."""
    return value is not None and (value >= threshold if op == ">=" else value <= threshold)


def targets() -> str:
    """Each frontier target beside the measured value and whether it was met."""
    rows = []
    for key, field, text, op, threshold in TARGETS:
        value = load(f"{key}_seeds.json")["summary"][field]
        rows.append([f"`{NAMES[key]}`", text, value, "yes" if is_met(value, op, threshold) else "**no**"])
    return table(["model", "target", "measured", "met"], rows)


# The default recipe of Net, and the faster opt-in one: (label, seed sweep).
RECIPE_SWEEPS = [
    ("default: fp32, batch 64, peak lr 0.05", "net_seeds.json"),
    ("`--precision bf16 --batch-size 256 --lr 0.1`", "fast/net_seeds.json"),
]


def fast() -> str:
    """Net over seeds 1-5 with the default recipe and with the faster bf16 + batch-256 one."""
    net_targets = [(field, op, threshold) for key, field, _, op, threshold in TARGETS if key == "net"]
    rows = []
    for label, path in RECIPE_SWEEPS:
        s = load(path)["summary"]
        met = sum(is_met(s[field], op, threshold) for field, op, threshold in net_targets)
        rows.append([label, *summary_cells(s), f"{met} of {len(net_targets)}", f"{s['seconds_per_epoch']:.1f}"])
    header = ["`Net` recipe (19 epochs, seeds 1-5)", *SUMMARY_HEADER, "`Net`'s targets met", "train s / epoch"]
    return table(header, rows)


SUMMARY_HEADER = ["final test acc % (mean ± std)", "min final", "min of last 3 epochs", "mean first epoch >= 99.4"]


def summary_cells(s: dict) -> list[str]:
    """A seed summary's mean ± std, worst final, worst of the last 3 epochs, first epoch at 99.4%."""
    return [
        f"**{s['final_mean']:.2f}** ± {s['final_std']:.2f}",
        f"{s['final_min']:.2f}",
        f"{s['last3_min']:.2f}",
        first_epoch(s),
    ]


def ladder() -> str:
    """Mean, spread and worst cases of each model over its seeds."""
    rows = []
    for key, name, budget in LADDER:
        sweep = load(f"{key}_seeds.json")
        s = sweep["summary"]
        rows.append(
            [
                f"`{name}`",
                f"{sweep['params']:,} (< {budget:,})",
                utils.RECIPES[key].epochs,
                len(s["seeds"]),
                *summary_cells(s),
                f"{s['seconds_per_epoch']:.1f}",
            ]
        )
    return table(["model", "parameters", "epochs", "seeds", *SUMMARY_HEADER, "train s / epoch"], rows)


def speed() -> str:
    """The side-by-side timing of the task statement's recipe and ours."""
    s = load("speed.json")
    b, o, short = s["baseline"], s["ours"], s["ours_short"]
    n_short = len(short["epochs"])
    hit = o if s["ours_time_to_99_4_from"] == "ours" else short
    hit_label = f"epoch {hit['epoch_to_99_4']} of the {len(hit['epochs'])}-epoch schedule"
    rows = [
        [
            "training seconds per epoch",
            f"{b['seconds_per_epoch']:.1f}",
            f"{o['seconds_per_epoch']:.1f}",
            f"**{s['epoch_ratio']:.1f}x**",
        ],
        ["first epoch >= 99.4% (19-epoch schedule)", b["epoch_to_99_4"], o["epoch_to_99_4"], ""],
        [
            "wall time to first >= 99.4% (evaluation included)",
            f"{b['time_to_99_4']:.0f} s",
            f"{s['ours_time_to_99_4']:.0f} s ({hit_label})",
            f"**{s['time_to_99_4_ratio']:.1f}x**",
        ],
        [
            f"wall time to the end of the {n_short}-epoch schedule (final {short['epochs'][-1]['test_acc']:.2f}%)",
            f"{b['time_to_99_4']:.0f} s",
            f"{short['full_run_seconds']:.0f} s",
            f"{b['time_to_99_4'] / short['full_run_seconds']:.1f}x",
        ],
        ["full 19-epoch run (evaluation included)", "", f"{o['full_run_seconds']:.0f} s", ""],
    ]
    m = s["machine"]
    note = f"\n\nMachine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} on {m['device']}"
    note += f" ({m['torch_threads']} threads). The baseline ran until it first reached 99.4%."
    return table(["", "task statement's recipe", "ours", "speed-up"], rows) + note


def levers() -> str:
    """Each speed lever's seconds per epoch, from `python benchmark.py --levers`."""
    s = load("speed_levers.json")
    rows = [
        [
            r["lever"] + (f" (first compile {r['compile_seconds']:.0f} s)" if "compile_seconds" in r else ""),
            f"{r['seconds_per_epoch']:.1f}",
            f"{r['vs_ours']:.2f}x",
            f"{r['vs_task_statement']:.2f}x",
        ]
        for r in s["levers"]
    ]
    note = (
        f"\n\nMedians of {s['rounds']} interleaved rounds, each {s['images_per_run']:,} training images per"
        " lever, scaled to a 60,000-image epoch (training only)."
    )
    return table(["lever", "train s / epoch", "vs ours as committed", "vs task statement's recipe"], rows) + note


def without_seconds(run: dict) -> list[dict]:
    """A run's epoch records minus the timing, which never repeats: what must repeat under a seed."""
    return [{k: v for k, v in e.items() if k != "seconds"} for e in run["epochs"]]


def gpu_runs() -> list[tuple[str, dict]]:
    """(command, history) of each committed GPU run."""
    runs = [("`python train.py --device cuda`", "net_seed1_cuda")]
    runs += [(f"`python train.py --device cuda --deterministic`, run {i}", f"net_seed1_cuda_det{i}") for i in (1, 2)]
    return [(cmd, json.loads((RESULTS / "gpu" / name / "history.json").read_text())) for cmd, name in runs]


def gpu() -> str:
    """The full default run on a GPU, and the two --deterministic repeats."""
    card = (RESULTS / "gpu" / "gpu.log").read_text().splitlines()[0].split(",")[0]
    runs = gpu_runs()
    rows = []
    for cmd, run in runs:
        seconds = [e["seconds"] for e in run["epochs"]]
        rows.append(
            [
                cmd,
                f"{run['epochs'][-1]['test_acc']:.2f}",
                f"{sum(seconds) / len(seconds):.1f}",
                f"{sum(seconds):.0f} s",
            ]
        )
    same = without_seconds(runs[1][1]) == without_seconds(runs[2][1])
    torch_version = runs[0][1]["torch"]
    note = (
        f"\n\n{card}, torch {torch_version}, seed 1, fp32, batch 64 (938 small steps an epoch; nothing was"
        " tuned for the GPU). The two `--deterministic` runs are"
        f" {'identical in every number but the seconds' if same else 'NOT identical'}."
    )
    return table(["run", "final test acc %", "train s / epoch", "19 epochs (training)"], rows) + note


# Public single-run results (verified from their repositories' files): (label, params, test accuracy).
ANCHORS = [
    ("task statement, 19 ep.", 19_712, 99.45),
    ("3,762-param net, ep. 15", 3_762, 99.52),
    ("7,918-param net, >=99.41 ep. 9-15", 7_918, 99.41),
]


def plot_ladder(path: Path = Path("images/params_vs_accuracy.png")) -> None:
    """Our three models (mean, min-max bars over seeds) beside the public single runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, name, _ in LADDER:
        sweep = load(f"{key}_seeds.json")
        s = sweep["summary"]
        err = [[s["final_mean"] - s["final_min"]], [s["final_max"] - s["final_mean"]]]
        ax.errorbar(sweep["params"], s["final_mean"], yerr=err, fmt="o", capsize=4, color="C0")
        ax.annotate(
            f"{name} ({utils.RECIPES[key].epochs} ep., {len(s['seeds'])} seeds)",
            (sweep["params"], s["final_mean"]),
            textcoords="offset points",
            xytext=(8, 6),
            fontsize=8,
            color="C0",
        )
    for label, params, acc in ANCHORS:
        ax.plot(params, acc, "s", color="C3")
        ax.annotate(label, (params, acc), textcoords="offset points", xytext=(8, -12), fontsize=8, color="C3")
    ax.axhline(99.4, color="gray", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("Ours: mean and min-max over seeds (blue); public single runs (red)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def tuning() -> str:
    """Every validation run in results/tuning/: what it changed and its final validation accuracy."""
    rows = []
    for path in sorted((RESULTS / "tuning").glob("*/history.json")):
        run = json.loads(path.read_text())
        r, last = run["recipe"], run["epochs"][-1]
        rows.append(
            [
                f"`{path.parent.name}`",
                run["model"],
                f"{run['params']:,}",
                run["seed"],
                r["batch_size"],
                r["lr"],
                r["weight_decay"],
                r.get("precision", "fp32"),
                len(run["epochs"]),
                f"{last['test_acc']:.2f}",
                f"{max(e['test_acc'] for e in run['epochs']):.2f}",
            ]
        )
    header = [
        "run",
        "model",
        "params",
        "seed",
        "batch",
        "peak lr",
        "weight decay",
        "precision",
        "epochs",
        "final val acc %",
        "best val acc %",
    ]
    return table(header, rows)


def architecture() -> str:
    """Net's layers with output size and receptive field, computed from model.py."""
    rows = utils.receptive_field_table(Net())
    return table(
        ["layer", "output", "receptive field", "jump"], [[r["layer"], r["out"], r["rf"], r["jump"]] for r in rows]
    )


BLOCKS = {
    "targets": targets,
    "tuning": tuning,
    "architecture": architecture,
    "checklist": checklist,
    "epoch-log": epoch_log,
    "ladder": ladder,
    "speed": speed,
    "levers": levers,
    "fast": fast,
    "gpu": gpu,
}


def render_readme(text: str) -> str:
    """README text with every generated block refreshed."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name} -->\n)(?:.*?\n)?(<!-- /{name} -->)", re.S)
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> None:
    """Print the tables, or write them into README.md."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="update README.md in place")
    if p.parse_args().write:
        for path in (README, RESULTS / "README.md"):
            path.write_text(render_readme(path.read_text()))
        plot_ladder()
    else:
        for name, make in BLOCKS.items():
            print(f"<!-- {name} -->\n{make()}\n")


if __name__ == "__main__":
    main()
