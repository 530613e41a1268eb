"""The generated parts of README, docs, results/README.md and the notebook's Markdown, from results/ and
the stored notebook, so that no number is typed by hand; and the maintainer's notebook export.

python -m lab.report                 # print every generated block
python -m lab.report --write         # refresh each <!-- NAME --> ... <!-- /NAME --> block and images/
python -m lab.report --check         # release check: pages, images, results/ and the stored notebook agree
python -m lab.report --run-notebook  # execute S6_assignment.ipynb in place (19 epochs), then --write
python -m lab.report --curves RUN_DIR OUT.png   # draw a run's curves from its history.json

A missing or broken results file is named with the command that remakes it. --write renders every
page before it replaces any, and replaces each one whole.
"""

from __future__ import annotations

import argparse
import base64
import copy
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

import runlog
import utils
from model import BaselineNet, Net

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
IMAGES = ROOT / "images"
NOTEBOOK = ROOT / "S6_assignment.ipynb"
PAGES = [ROOT / "README.md", ROOT / "docs" / "speed.md", ROOT / "docs" / "tuning.md", RESULTS / "README.md"]
RUN_NOTEBOOK = "python -m lab.report --run-notebook"
# The command that (re)makes each committed results file; results/README.md lists the same.
REGENERATE = {
    "net_seeds.json": "python train.py --seeds 1-5 --out 'results/net_seed{seed}'",
    "lite_seeds.json": "python train.py --model lite --seeds 1-5 --out 'results/lite_seed{seed}'",
    "micro_seeds.json": "python train.py --model micro --seeds 1-5 --out 'results/micro_seed{seed}'",
    "nano_seeds.json": "python train.py --model nano --seeds 1-5 --out 'results/nano_seed{seed}'",
    "fast/net_seeds.json": "python train.py --precision bf16 --batch-size 256 --lr 0.1 --seeds 1-5 "
    "--out 'results/fast/net_seed{seed}'",
    "speed.json": "python -m lab.benchmark --force",
    "speedrun.json": "python -m lab.benchmark --speedrun --force > results/speedrun.log",
    "speedrun_compiled.json": "python -m lab.benchmark --speedrun --compile --out results/speedrun_compiled.json "
    "> results/speedrun_compiled.log 2>&1",
    "speedrun_speednet_amd.json": "python benchmark.py --speedrun at commit c01c1c3 (it wrote results/speedrun.json)",
    "speedrun_framed_8ep.json": "python -m lab.benchmark --speedrun at commit 9b6f092 (it wrote results/speedrun.json)",
    "speedrun_speednet_intel.json": "python -m lab.benchmark --speedrun --model speedrun --skip-baseline "
    "--out results/speedrun_speednet_intel.json > results/speedrun_speednet_intel.log",
    "gpu/notebook_gpu.log": "bash lab/gpu/device_check1.sh (phase 4) on a GPU",
}


class ReportError(RuntimeError):
    """A results file is missing or unreadable; the message names it and the command that remakes it."""


def how_to_remake(name: str) -> str:
    """The advice for a broken results file."""
    command = REGENERATE.get(name)
    return f"remake it with `{command}`" if command else "remake it with the command in results/README.md"


# (results key, class name, parameter budget); epochs come from utils.RECIPES.
LADDER = [("net", "Net", 20_000), ("lite", "NetLite", 8_000), ("micro", "NetMicro", 4_000), ("nano", "NetNano", 2_000)]
NAMES = {key: name for key, name, _ in LADDER}


def read(name: str) -> str:
    """A committed results file's text (name relative to results/)."""
    path = RESULTS / name
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ReportError(f"{path}: missing; {how_to_remake(name)}") from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ReportError(f"{path}: unreadable ({err}); {how_to_remake(name)}") from None


def load(name: str) -> dict:
    """A committed results JSON (name relative to results/)."""
    try:
        data = json.loads(read(name))
    except ValueError as err:  # JSONDecodeError
        raise ReportError(f"{RESULTS / name}: unreadable ({err}); {how_to_remake(name)}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{RESULTS / name}: not a results object; {how_to_remake(name)}")
    LOADED.append(name)
    return data


LOADED: list[str] = []  # the files the current block has read, to name the culprit of a KeyError


def stored_notebook() -> nbformat.NotebookNode:
    """The committed notebook, outputs included: read once per version of the file, as several blocks use it."""
    return copy.deepcopy(_read_notebook(NOTEBOOK, NOTEBOOK.stat().st_mtime_ns))


@functools.lru_cache(maxsize=1)
def _read_notebook(path: Path, mtime_ns: int) -> nbformat.NotebookNode:
    """The notebook at `path` as it was at `mtime_ns`."""
    return nbformat.read(path, as_version=4)


def repo_url() -> str:
    """REPO_URL as set in the notebook's set-up cell: the one place the publishing address is set."""
    sources = "\n".join(c.source for c in stored_notebook().cells if c.cell_type == "code")
    found = re.search(r'^REPO_URL = "([^"]+)"', sources, re.M)
    if not found:
        raise ReportError(f'{NOTEBOOK}: no REPO_URL = "..." line in the set-up cell')
    return found.group(1)


def badge() -> str:
    """The README's Open-in-Colab badge, pointing at REPO_URL's notebook."""
    path = re.sub(r"^https://github\.com/|\.git$", "", repo_url())
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{path}/blob/main/{NOTEBOOK.name})"
    )


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


# An epoch line as utils.format_epoch prints it (older logs: "test loss L acc A%" without the counts).
EPOCH_LINE = re.compile(
    r"^epoch\s+(\d+) \| train loss ([\d.]+) acc\s+([\d.]+)% \| test loss ([\d.]+) (?:(\d+)/(\d+) =|acc)"
    r"\s+([\d.]+)% \| lr ([\d.]+) \|\s+([\d.]+) s$",
    re.M,
)
EPOCH_FIELDS = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_correct",
    "test_total",
    "test_acc",
    "lr",
    "seconds",
]


def parse_epochs(text: str) -> list[dict]:
    """The epoch records in a log's or the notebook's epoch lines."""
    return [
        {
            k: (int(v) if k in ("epoch", "test_correct", "test_total") else float(v))
            for k, v in zip(EPOCH_FIELDS, m)
            if v
        }
        for m in EPOCH_LINE.findall(text)
    ]


def notebook_text(nb: nbformat.NotebookNode | None = None) -> str:
    """All the text the stored notebook's code cells printed."""
    cells = (nb or stored_notebook()).cells
    return "".join(o.get("text", "") for c in cells if c.cell_type == "code" for o in c.outputs)


def notebook_run() -> tuple[list[dict], str]:
    """(the stored notebook's epoch records, the line saying where it ran)."""
    text = notebook_text()
    epochs = parse_epochs(text)
    where = re.search(r"^(cpu|cuda|mps)\S* \((.+?)\) \|", text, re.M)
    if not epochs or not where:
        raise ReportError(f"{NOTEBOOK}: no executed run stored; {RUN_NOTEBOOK}")
    return epochs, f"{where.group(2)}, {where.group(1).upper()}"


def checklist() -> str:
    """The assignment's checklist on Net and the stored notebook's run, and the seed sweep's worst case."""
    epochs, where = notebook_run()
    rows = [list(r.values()) for r in utils.assignment_checklist(Net(), epochs)]
    s = load("net_seeds.json")["summary"]
    rows.append(
        [
            f"the same recipe over seeds {s['seeds'][0]}-{s['seeds'][-1]} (`train.py`, final epoch)",
            f"mean {s['final_mean']:.2f}% ± {s['final_std']:.2f}, lowest {s['final_min']:.2f}% "
            f"({load('net_seed1/history.json')['device_name']})",
            "yes" if s["final_min"] >= utils.TARGET else "NO",
        ]
    )
    return table(["requirement", f"measured (the notebook's run: {where})", "met"], rows)


# The steps from a first plain network to the final one: (what changed, target, results file, one line
# of analysis). Each file is a committed run that records its command.
STORY = [
    ("the task statement's network and recipe (constant LR 0.01, rotation only)", "reach 99.4% at all",
     "speed.json", "wide and slow: it touches 99.4% once, late, and stops there"),
    ("`Net`'s skeleton: BN after every conv, max-pool at RF 6, GAP + 1x1 classifier, one-cycle LR; "
     "no dropout, no augmentation", "a lean network that fits MNIST", "tuning/net_noaug_p0_seed1/history.json",
     "learns the training images almost perfectly, validation stays well below: overfitting"),
    ("+ Dropout 0.05 after each block past the pool", "close the train-validation gap",
     "tuning/net_noaug_seed1/history.json", "the gap narrows a little; validation barely moves"),
    ("+ augmentation: rotation ±8°, shift ±2 px, zoom ±10% (batch 128)", "harder training images",
     "tuning/net_wd1e-4_bs128_seed1/history.json", "training accuracy now below validation, and validation up"),
    ("batch 64 instead of 128: the final recipe", "more, smaller steps",
     "tuning/net_wd1e-4_bs64_seed1/history.json", "the best validation of the steps; its seed 2 agrees"),
    ("the final recipe on the test set, seeds 1-5", ">= 99.4% on every seed, at the last epoch",
     "net_seeds.json", "every seed ends above 99.4%; quote the mean, not the best seed"),
]  # fmt: skip


def story_row(name: str) -> list[str]:
    """Parameters, best train accuracy, final (best) evaluated accuracy and on what, of a story run."""
    data = load(name)
    if name == "speed.json":  # the task statement's recipe, run until it first reached the target
        accs = [e["test_acc"] for e in data["baseline"]["epochs"]]
        params = utils.count_parameters(BaselineNet())
        return [f"{params:,}", "not recorded", f"{accs[-1]:.2f} ({max(accs):.2f})", f"test, epoch {len(accs)}"]
    runs = data.get("runs", [data])  # a seed sweep, or one run
    train = sum(max(e["train_acc"] for e in r["epochs"]) for r in runs) / len(runs)
    final = sum(r["epochs"][-1]["test_acc"] for r in runs) / len(runs)
    best = sum(max(e["test_acc"] for e in r["epochs"]) for r in runs) / len(runs)
    on = runs[0]["eval_set"].split()[0] + (f", mean of {len(runs)} seeds" if len(runs) > 1 else "")
    return [f"{data['params']:,}", f"{train:.2f}", f"{final:.2f} ({best:.2f})", on]


def story() -> str:
    """The iteration story: each step's target, change, size and result, from its committed run."""
    rows = [[i, target, change, *story_row(name), analysis, f"`results/{name}`"]
            for i, (change, target, name, analysis) in enumerate(STORY)]  # fmt: skip
    header = ["step", "target", "what changed", "params", "best train %", "final (best) %", "evaluated on",
              "analysis", "run"]  # fmt: skip
    return table(header, rows)


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
    ("micro", "final_min", "every seed >= 99.40% at the final epoch", ">=", 99.40),
    ("nano", "final_mean", "mean final test accuracy >= 99.30%", ">=", 99.30),
]


def is_met(value: float | None, op: str, threshold: float) -> bool:
    """Whether a measured value meets a target."""
    return value is not None and (value >= threshold if op == ">=" else value <= threshold)


def met_cell(value: float | None, op: str, threshold: float) -> str:
    """'yes', or '**no**' with how far a measured value falls short."""
    if is_met(value, op, threshold):
        return "yes"
    return "**no**" if value is None else f"**no**, by {abs(value - threshold):.2f}"


def targets() -> str:
    """Each frontier target beside the measured value and whether it was met."""
    rows = []
    for key, field, text, op, threshold in TARGETS:
        value = load(f"{key}_seeds.json")["summary"][field]
        rows.append([f"`{NAMES[key]}`", text, value, met_cell(value, op, threshold)])
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
    """Mean, spread and worst cases of each model over its seeds, and where they were trained."""
    rows = []
    for key, name, budget in LADDER:
        sweep = load(f"{key}_seeds.json")
        s, run = sweep["summary"], sweep["runs"][0]
        rows.append(
            [
                f"`{name}`",
                f"{sweep['params']:,} (< {budget:,})",
                len(run["epochs"]),
                len(s["seeds"]),
                *summary_cells(s),
                f"{s['seconds_per_epoch']:.1f} ({run['device_name']})",
            ]
        )
    header = ["model", "parameters", "epochs", "seeds", *SUMMARY_HEADER, "train s / epoch (on)"]
    return table(header, rows)


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
    """Each speed lever's seconds per epoch, from results/speed_levers.json (made by a mode since removed)."""
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


# The speedrun's goals: (summary key, description, test, threshold).
SPEEDRUN_GOALS = [
    ("final_mean", "CPU: mean final test accuracy >= 99.45% (10 seeds)", ">=", 99.45),
    ("final_min", "CPU: every seed >= 99.40% at its final epoch", ">=", 99.40),
    ("ratio", "CPU: at most 1/20 of the task statement's recipe's time to 99.4%, same run", ">=", 20),
    ("seconds_mean", "GPU: mean time at most 1.0 s", "<=", 1.0),
]
# (label, file): the headline CPU run first; it compiled, FramedSpeedNet and SpeedNet without Muon on the same
# CPU, SpeedNet earlier on another; the GPU run.
SPEEDRUNS = [
    ("CPU", "speedrun.json"),
    ("CPU, same machine", "speedrun_compiled.json"),
    ("CPU, same machine", "speedrun_framed_8ep.json"),
    ("CPU, same machine", "speedrun_speednet_intel.json"),
    ("CPU, earlier", "speedrun_speednet_amd.json"),
    ("GPU", "gpu/speedrun.json"),
]
NETWORKS = {"speedrun": "SpeedNet", "framed": "FramedSpeedNet"}


def speedrun_headline() -> str:
    """One sentence: the headline speedrun's accuracy, time and same-run ratio, and the GPU run's."""
    parts = []
    for label, name in (SPEEDRUNS[0], SPEEDRUNS[-1]):
        run = load(name)
        s, m = run["summary"], run["machine"]
        where = f"a {m['cores']}-core {m['cpu']}" if label == "CPU" else f"a lent {m['device_name']}"
        ratio = (
            f", {s['ratio']:.1f}x faster than the task statement's recipe reaches 99.4% in the same run"
            if s.get("ratio")
            else ""
        )
        parts.append(
            f"`{NETWORKS[run['recipe'].get('model', 'speedrun')]}` ({s['params']:,} parameters, "
            f"{run['recipe']['epochs']} epochs): {s['final_mean']:.2f}% mean (min {s['final_min']:.2f}%) over "
            f"{len(run['runs'])} seeds in **{s['seconds_mean']:.2f} s** on {where}{ratio}"
        )
    return "**Speedrun.** " + "; ".join(parts) + "."


def speedrun() -> str:
    """Each committed speedrun: network, accuracy over seeds, time, throughput, the same-run ratio; the goals."""
    rows, runs = [], [(label, load(name)) for label, name in SPEEDRUNS]
    for label, run in runs:
        s, r = run["summary"], run["recipe"]
        rows.append(
            [
                f"{label}: {run['machine']['device_name']}",
                f"`{NETWORKS[r.get('model', 'speedrun')]}`, {s['forward_macs_per_image'] / 1e6:.2f} M MACs/image",
                f"{r['epochs']} epochs, batch {r['batch_size']}, {r['precision']}"
                + (f", Muon {r['muon_lr']:g} for the filters" if r.get("muon_lr") else "")
                + (", `torch.compile`" if r.get("compile") else ""),
                f"**{s['final_mean']:.2f}** ± {s['final_std']:.2f}",
                f"{s['final_min']:.2f}",
                f"**{s['seconds_mean']:.2f} s** (max {s['seconds_max']:.2f})",
                f"{s['warmup_seconds']:.2f} s",
                f"{s['training_images_per_second']:,}",
                f"{s['baseline_time_to_99_4']:.0f} s -> {s['ratio']:.1f}x" if s.get("ratio") else "not run",
            ]
        )
    header = ["run", "network", "recipe", "final test acc % (mean ± std)", "min final", "time (training + final test)",
              "warm-up (excluded)", "training images/s", "task statement's recipe to 99.4%"]  # fmt: skip
    goals = []
    for key, text, op, threshold in SPEEDRUN_GOALS:
        value = dict(runs)["GPU" if key == "seconds_mean" else "CPU"]["summary"].get(key)
        goals.append([text, "not measured" if value is None else value, met_cell(value, op, threshold)])
    note = "\n\nMACs: multiply-adds of one forward pass; a training step counts about 3x.\n\n"
    return table(header, rows) + note + table(["goal (the headline CPU run; GPU: its own)", "measured", "met"], goals)


GPU_RUNS = ["net_seed1_cuda", "net_seed1_cuda_det1", "net_seed1_cuda_det2"]


def gpu_runs() -> list[tuple[str, dict]]:
    """(label, history) of each committed full GPU run of the default recipe."""
    runs = [load(f"gpu/{name}/history.json") for name in GPU_RUNS]
    return [
        (f"`{run['command']}`" + (f", run {name[-1]}" if "_det" in name else ""), run)
        for name, run in zip(GPU_RUNS, runs)
    ]


def gpu() -> str:
    """The full default run on a GPU, and the two --deterministic repeats."""
    runs = gpu_runs()
    card = runs[0][1]["device_name"]
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
    same = runlog.without_seconds(runs[1][1]["epochs"]) == runlog.without_seconds(runs[2][1]["epochs"])
    torch_version = runs[0][1]["torch"]
    note = (
        f"\n\n{card}, torch {torch_version}, seed 1, fp32, batch 64 (938 small steps an epoch; nothing was"
        " tuned for the GPU). The two `--deterministic` runs are"
        f" {'identical in every number but the seconds' if same else 'NOT identical'}."
    )
    return table(["run", "final test acc %", "train s / epoch", "19 epochs (training)"], rows) + note


def gpu_notebook() -> str:
    """The notebook's code path run in full on a lent GPU, from its log."""
    epochs = parse_epochs(read("gpu/notebook_gpu.log"))
    seconds = [e["seconds"] for e in epochs]
    return (
        f"{len(epochs)} epochs, {sum(seconds):.0f} s of training ({sum(seconds) / len(seconds):.1f} s an epoch), "
        f"final test accuracy {epochs[-1]['test_acc']:.2f}% (first >= {utils.TARGET}% at epoch "
        f"{utils.first_epoch_at(epochs)})"
    )


# Public single-run results (verified from their repositories' files): (label, params, test accuracy).
ANCHORS = [
    ("task statement, 19 ep.", 19_712, 99.45),
    ("3,762-param net, ep. 15", 3_762, 99.52),
    ("7,918-param net, >=99.41 ep. 9-15", 7_918, 99.41),
    ("1,936-param net, 75 ep.", 1_936, 99.10),
]


def plot_ladder(path: Path = ROOT / "images" / "params_vs_accuracy.png") -> None:
    """Our ladder (mean, min-max bars over seeds) beside the public single runs."""
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
    """The validation runs (results/tuning/, results/gpu/tuning/), a row per candidate: command and accuracies."""
    candidates: dict[str, list[dict]] = {}
    for path in sorted([*RESULTS.glob("tuning/*/history.json"), *RESULTS.glob("gpu/tuning/*/history.json")]):
        name = re.sub(r"_seed\d+$", "", str(path.parent.relative_to(RESULTS)))
        candidates.setdefault(name, []).append(load(str(path.relative_to(RESULTS))))
    rows = []
    for name, runs in candidates.items():
        finals = [r["epochs"][-1]["test_acc"] for r in runs]
        rows.append(
            [
                f"`{name}`",
                f"{runs[0]['params']:,}",
                f"`{runs[0]['command']}`",
                len(runs[0]["epochs"]),
                ", ".join(str(r["seed"]) for r in runs),
                ", ".join(f"{a:.2f}" for a in finals),
                f"**{sum(finals) / len(finals):.2f}**",
            ]
        )
    header = ["candidate", "params", "command (first seed)", "epochs", "seeds", "final val acc %", "mean"]
    return table(header, rows)


def ablation() -> str:
    """The speed toolbox on the validation split (lab/ablation.sh): each row's seeds, TTA apart, seconds per epoch."""
    rows = []
    for path in sorted(RESULTS.glob("ablation/*/*_val_seeds.json")):
        sweep = load(str(path.relative_to(RESULTS)))
        runs, command = sweep["runs"], sweep["command"]
        flags = command.split("--no-progress ", 1)[1].split(" --out")[0]
        finals = [r["epochs"][-1]["test_acc"] for r in runs]
        tta = [r["tta_acc"] for r in runs]
        seconds = [e["seconds"] for r in runs for e in r["epochs"]]
        rows.append([f"`{path.parent.name}`", f"`{flags}`", ", ".join(f"{a:.2f}" for a in finals),
                     f"**{sum(finals) / len(finals):.2f}**", f"{sum(tta) / len(tta):.2f}",
                     f"{sum(seconds) / len(seconds):.1f}"])  # fmt: skip
    cpu = runs[0]["device_name"]  # every row ran on one machine
    header = ["row", "flags on top of `--model speedrun`", "final val acc % (seeds 1-3)", "mean",
              "with test-time shifts (apart)", "train s / epoch"]  # fmt: skip
    note = "Each row's network with its own recipe in `utils.RECIPES` under the row's flags, 50,000 images"
    return table(header, rows) + f"\n\n{note}, validated on the last 10,000; {cpu}, CPU."


BLOCKS = {
    "badge": badge,
    "checklist": checklist,
    "story": story,
    "ladder": ladder,
    "targets": targets,
    "speedrun-headline": speedrun_headline,
    "speedrun": speedrun,
    "speed": speed,
    "levers": levers,
    "fast": fast,
    "gpu": gpu,
    "gpu-notebook": gpu_notebook,
    "tuning": tuning,
    "ablation": ablation,
}


def render(name: str) -> str:
    """One generated block; a results file with unexpected content is a ReportError naming it."""
    LOADED.clear()
    try:
        return BLOCKS[name]()
    except (KeyError, TypeError, IndexError, ValueError) as err:
        culprit = LOADED[-1] if LOADED else "a results file"
        raise ReportError(
            f"{RESULTS / culprit}: unexpected content ({type(err).__name__}: {err}); {how_to_remake(culprit)}"
        ) from None


def render_page(text: str) -> str:
    """A Markdown page with every generated block in it refreshed."""
    for name in BLOCKS:
        pattern = re.compile(rf"(<!-- {name} -->\n)(?:.*?\n)?(<!-- /{name} -->)", re.S)
        if pattern.search(text):
            block = render(name)
            text = pattern.sub(lambda m, block=block: m.group(1) + block + "\n" + m.group(2), text)
    return text


def render_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with the generated blocks of its Markdown cells refreshed (outputs untouched)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = render_page(cell.source + "\n").removesuffix("\n")
    return nb


def notebook_images(nb: nbformat.NotebookNode) -> dict[str, bytes]:
    """images/NAME.png -> PNG bytes, for each figure a code cell names in its metadata["images"]."""
    found = {}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        names = cell.metadata.get("images", [])
        pngs = [base64.b64decode(o["data"]["image/png"]) for o in cell.outputs if "image/png" in o.get("data", {})]
        if len(names) != len(pngs):
            raise ReportError(f"{NOTEBOOK}: a cell names {names} but shows {len(pngs)} figures; {RUN_NOTEBOOK}")
        found.update({f"{name}.png": png for name, png in zip(names, pngs)})
    return found


def write() -> None:
    """Render every page, the notebook's Markdown and its figures first, then replace each file whole."""
    nb = stored_notebook()
    outputs = {path: render_page(path.read_text()).encode() for path in PAGES}
    outputs[NOTEBOOK] = (nbformat.writes(render_notebook(nb)) + "\n").encode()
    outputs |= {IMAGES / name: png for name, png in notebook_images(nb).items()}
    blocked = [problem for path in outputs if (problem := runlog.check_writable(path.parent))]
    blocked += [f"{path} is not writable" for path in outputs if path.exists() and not os.access(path, os.W_OK)]
    if blocked:
        raise ReportError(f"nothing written: {'; '.join(blocked)}")
    for path, content in outputs.items():
        if not path.exists() or (path.read_bytes() if isinstance(content, bytes) else path.read_text()) != content:
            runlog.atomic_write(
                path, lambda tmp, c=content: tmp.write_bytes(c) if isinstance(c, bytes) else tmp.write_text(c)
            )
    plot_ladder()


def run_notebook() -> None:
    """Execute the notebook in place, in full (no SMOKE_TEST), keeping each progress bar's last state."""
    from nbclient import NotebookClient

    env_smoke = os.environ.pop("SMOKE_TEST", None)
    try:
        nb = stored_notebook()
        client = NotebookClient(nb, timeout=3600, kernel_name="python3", coalesce_streams=True,
                                resources={"metadata": {"path": str(ROOT)}})  # fmt: skip
        client.execute()
    finally:
        if env_smoke is not None:
            os.environ["SMOKE_TEST"] = env_smoke
    runlog.atomic_write(NOTEBOOK, lambda tmp: nbformat.write(nb, tmp))


def curves(run_dir: Path, out: Path) -> None:
    """Draw a run's loss, accuracy and learning-rate curves from its history.json."""
    import matplotlib

    matplotlib.use("Agg")
    run = runlog.read_history(run_dir)
    label = f"{run['model']}, seed {run['seed']}: {run['eval_set']}"
    utils.plot_history(run["epochs"], label).savefig(out, dpi=100)


def check() -> int:
    """Run the release checks (lab/release_checks.py): committed evidence, pages and notebook agree."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "lab" / "release_checks.py")]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode:
        print(
            "release check failed: each failure above says which file disagrees and the command that brings"
            " README, docs and results/ in line with it (`python -m lab.report --write` for the pages)",
            file=sys.stderr,
        )
    return done.returncode


def main() -> int:
    """Print the blocks, write them, run the notebook, draw a run's curves, or run the release check."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="refresh the pages, the notebook's Markdown and images/")
    mode.add_argument("--check", action="store_true", help="the release check (needs pytest)")
    mode.add_argument("--run-notebook", action="store_true", help="execute the notebook in place, then --write")
    mode.add_argument("--curves", nargs=2, type=Path, metavar=("RUN_DIR", "OUT_PNG"), help="draw a run's curves")
    args = p.parse_args()
    if args.check:
        return check()
    try:
        if args.curves:
            problem = runlog.check_writable(args.curves[1].parent)
            if problem:
                p.error(problem)
            try:
                curves(*args.curves)
            except ValueError as err:
                p.error(str(err))
            return 0
        if args.run_notebook:
            run_notebook()
        if args.write or args.run_notebook:
            write()
        else:
            for name in BLOCKS:
                print(f"<!-- {name} -->\n{render(name)}\n")
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
