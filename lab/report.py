"""The tables of the README, docs/ and the notebook's Markdown, rendered from the data in results/, and the
release check that holds pages, results/ and the stored notebook to each other.

Pages are prose around generated <!-- NAME --> blocks: a table is data, so it is rendered, never typed, and
the prose quotes only numbers that a table on its page shows (the release check holds it to that).
`python -m lab.report [--write | --check | --run-notebook]`: lab/README.md says what each does. Each check fails
with one line naming the file that disagrees; after a user's own Run all the notebook checks say so
(`git checkout S6_assignment.ipynb` restores it, --run-notebook publishes it).
"""

from __future__ import annotations

import sys

if not __package__:  # `python lab/report.py` cannot import the project's modules
    sys.exit("run it from the repository root as: python -m lab.report [--write | --check | --run-notebook]")

import argparse
import base64
import functools
import json
import math
import os
import re
import signal
import statistics
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import nbformat
import torch

import utils
from lab import runlog, toolbox
from lab.networks import MODELS

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "lab"
RESULTS, IMAGES, NOTEBOOK = LAB / "results", ROOT / "images", ROOT / "S6_assignment.ipynb"
PAGES = [ROOT / "README.md", LAB / "README.md", RESULTS / "README.md", *sorted((LAB / "docs").glob("*.md"))]
NETWORK = {key: cls.__name__ for key, cls in MODELS.items()}


class ReportError(RuntimeError):
    """A results file is missing or unreadable; the message names it."""


def read_text(path: Path) -> str:
    """A page or results file as UTF-8, whatever the locale."""
    return path.read_text(encoding="utf-8")


READ: set[str] = set()  # every results file a block has read: the release check wants no other files there


def load(name: str) -> dict:
    """A results JSON (name relative to results/)."""
    path = RESULTS / name
    try:
        data = json.loads(read_text(path))
    except (OSError, ValueError) as err:  # missing, unreadable, not UTF-8, not JSON
        raise ReportError(f"{path}: {err}; remake it with the command results/README.md gives for it") from None
    READ.add(name)
    return data


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])  # fmt: skip


def notebook() -> nbformat.NotebookNode:
    """The stored notebook, outputs included."""
    return nbformat.reads(read_text(NOTEBOOK), as_version=4)


# One renderer for every table of runs (seed sweeps, validation rows, tuning candidates): a row per (label, runs).


def finals(runs: list[dict]) -> list[float]:
    """Each run's final accuracy."""
    return [r["epochs"][-1]["test_acc"] for r in runs]


def first_epoch(runs: list[dict]) -> str:
    """Mean first epoch at >= 99.4%, saying how many runs never got there."""
    reached = [e for r in runs if (e := utils.first_epoch_at(r["epochs"])) is not None]
    if not reached:
        return "never"
    some = "" if len(reached) == len(runs) else f" ({len(reached)} of {len(runs)})"
    return f"{statistics.fmean(reached):.1f}{some}" if len(reached) > 1 else f"{reached[0]}{some}"


def runs_table(pattern: str, label: str, evaluated: str = "val") -> str:
    """A row per candidate among the files matching `pattern` (its seeds pooled), the largest network first:
    size, schedule, every seed's final accuracy, their mean ± std and minimum, first epoch at 99.4%, time."""
    groups: dict[str, list[dict]] = {}
    for path in sorted(RESULTS.glob(pattern)):
        data = load(str(path.relative_to(RESULTS)))
        name = re.sub(r"^ablation/|(_seeds)?\.json$|(_seed\d+)?/history\.json$", "", str(path.relative_to(RESULTS)))
        groups.setdefault(f"`{NETWORK.get(name, name)}`", []).extend(data.get("runs", [data]))
    rows = []
    for name, runs in sorted(groups.items(), key=lambda g: (-g[1][0]["params"], g[0])):
        acc, seconds = finals(runs), statistics.fmean(e["seconds"] for r in runs for e in r["epochs"])
        spread = f" ± {statistics.stdev(acc):.2f}" if len(acc) > 1 else ""
        rows.append([name, f"{runs[0]['params']:,}", len(runs[0]["epochs"]), ", ".join(f"{a:.2f}" for a in acc),
                     f"**{statistics.fmean(acc):.2f}**{spread}", f"{min(acc):.2f}", first_epoch(runs),
                     f"{seconds:.1f} ({runs[0]['device_name']})"])  # fmt: skip
    return table([label, "parameters", "epochs", f"final {evaluated} % per seed", "mean ± std", "min",
                  "first epoch >= 99.4 (mean)", "train s / epoch (on)"], rows)  # fmt: skip


# The story of the model (README, notebook): (what changed, results file, what it showed). Every run was scored on
# the validation split, the network's own first; the test set decided none of it. One seed cannot tell apart two
# results closer than the seeds' spread (about 0.05%): such a row says so, and what decided instead.
STORY = [
    ("the task statement's network (`BaselineNet`), under this project's recipe", "ablation/arch_baseline.json",
     "late to 99.4%, and its 20k budget is spent"),
    ("a lean skeleton: six 3x3 convs of 16, one max-pool after conv2, GAP, a 1x1 classifier",
     "ablation/arch_w16_pool2.json", "a third fewer parameters, a little less accuracy: room to spend"),
    ("the max-pool after conv1 instead", "ablation/arch_w16_pool1.json",
     "within the noise (3 seeds each), later to 99.4%: conv2 kept"),
    ("the max-pool after conv3 instead", "ablation/arch_w16_pool3.json",
     "within the noise (1 seed); slower, as conv3 runs at 22x22: conv2 kept"),
    ("the budget spent evenly: 20 channels in every conv", "ablation/arch_w20_pool2.json",
     "within the noise (1 seed); most weights at full resolution, the slowest place"),
    ("the budget tapered: 8, 16, 20, 24, 24 channels (`Net`)", "ablation/arch_net.json",
     "within the noise (1 seed); cheapest where images are large: kept"),
    ("`Net` without dropout or augmentation (batch 128)", "tuning/net_noaug_p0_seed1/history.json",
     "fits the training images almost perfectly: overfitting"),
    ("+ Dropout 0.05 after each block past the pool", "tuning/net_noaug_seed1/history.json",
     "the train-validation gap narrows a little"),
    ("+ augmentation: rotation ±8°, shift ±2 px, zoom ±10%", "tuning/net_wd1e-4_bs128_seed1/history.json",
     "training accuracy below validation, validation up"),
    ("batch 64 instead of 128: `Net`'s recipe", "tuning/net_wd1e-4_bs64_seed1/history.json",
     "the best validation of the steps (its seed 2 agrees)"),
]  # fmt: skip


def story() -> str:
    """The story table: each step's change, size and validation result, from its committed run (linked)."""
    rows = []
    for i, (change, name, showed) in enumerate(STORY, 1):
        data = load(name)
        runs = data.get("runs", [data])
        train_acc = statistics.fmean(max(e["train_acc"] for e in r["epochs"]) for r in runs)
        seeds = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
        rows.append([f"[{i}](lab/results/{name})", change, f"{runs[0]['params']:,}", f"{train_acc:.2f}",
                     f"{statistics.fmean(finals(runs)):.2f}{seeds}", first_epoch(runs), showed])  # fmt: skip
    return table(["step", "what changed", "parameters", "best train %", "final val %", "first epoch >= 99.4",
                  "what it showed"], rows)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# The other kinds: the assignment's checklist, the model's summary, the speedruns, the goals.


def checklist() -> str:
    """The assignment's checklist on the notebook's stored run, and Net's seed sweep."""
    run, sweep = load("notebook.json"), load("net_seeds.json")["runs"]
    rows = [list(r.values()) for r in utils.checklist_table(utils.assignment_checklist(MODELS["net"](), run["epochs"]))]
    acc = finals(sweep)
    rows.append([f"the same recipe over seeds 1-{len(sweep)} (final epoch)",
                 f"mean {statistics.fmean(acc):.2f}% ± {statistics.stdev(acc):.2f}, lowest {min(acc):.2f}%",
                 "yes" if min(acc) >= utils.TARGET else "no"])  # fmt: skip
    return table(["requirement", "measured (the notebook's stored run)", "met"], rows)


def log() -> str:
    """The stored notebook's training log, each epoch's line as utils.format_epoch printed it there."""
    return "```text\n" + "\n".join(utils.format_epoch(r) for r in load("notebook.json")["epochs"]) + "\n```"


def summary() -> str:
    """torchsummary's table as the stored notebook printed it."""
    cell = next(c for c in notebook().cells if "model_summary(" in c.source)
    return "```text\n" + "".join(o.get("text", "") for o in cell.outputs).strip() + "\n```"


def speedrun(*patterns: str) -> str:
    """Speedruns: accuracy over seeds, time a seed, and the same-run ratio to the task statement's recipe."""
    rows = []
    for name in (str(p.relative_to(RESULTS)) for pattern in patterns for p in sorted(RESULTS.glob(pattern))):
        run = load(name)
        s, r = run["summary"], run["recipe"]
        recipe = (
            f"`{NETWORK[r.get('model', 'speedrun')]}`, {r['epochs']} epochs, batch {r['batch_size']}, "
            f"{r['precision']}"
            + (f", Muon {r['muon_lr']:g}" if r.get("muon_lr") else "")
            + (", compiled" if r.get("compile") else "")
        )
        ratio = f"{s['baseline_time_to_99_4']:.0f} s: **{s['ratio']:.1f}x**" if s.get("ratio") else "not run"
        if s.get("ratio_min"):  # the baseline over several seeds: their mean, and the ratio's range
            ratio += f" ({s['ratio_min']:.1f}-{s['ratio_max']:.1f}x, {len(s['baseline_times_to_99_4'])} seeds)"
        held = sum(r["test_acc"] >= utils.TARGET for r in run["runs"])
        rows.append([f"`{name}`", run["machine"]["device_name"], recipe, f"{len(run['runs'])} ({held} >= 99.4)",
                     f"**{s['final_mean']:.2f}** ± {s['final_std']:.2f}", f"{s['final_min']:.2f}",
                     f"**{s['seconds_mean']:.2f} s**", f"{s['warmup_seconds']:.2f} s",
                     f"{s['forward_macs_per_image'] / 1e6:.2f} M", ratio])  # fmt: skip
    return table(["run", "on", "network and recipe", "seeds", "final test acc % (mean ± std)", "min final",
                  "time a seed", "warm-up (excluded)", "MACs / image", "task statement's recipe to 99.4%: ratio"],
                 rows)  # fmt: skip


RULE = utils.TARGET  # docs/speed.md: kept if, over >= 10 validation seeds, mean - 3 x std >= this


def rule() -> str:
    """Each validation row of the speedrun's networks (three seeds or more) under the rule: kept, out (a seed
    below the line among its first three, where a row may stop, or ten seeds short of the margin), or undecided.
    A ten-seed row's test-time shifts (`--tta`, scored on the same networks) are a row of their own."""
    rows = []
    for path in sorted(RESULTS.glob("ablation/*.json")):
        runs = load(str(path.relative_to(RESULTS)))["runs"]
        if runs[0]["model"] not in ("speedrun", "framed") or len(runs) < 3:
            continue
        rows.append(judged(f"`{path.stem}`", finals(runs)))
        if len(runs) >= 10 and all("tta_acc" in r for r in runs):
            rows.append(judged(f"`{path.stem}` + test-time shifts", [r["tta_acc"] for r in runs]))
    return table(["row", "seeds", "mean", "std", "mean - 3 x std", "verdict"], rows)


def judged(name: str, acc: list[float]) -> list:
    """One row of the rule's table."""
    low = statistics.fmean(acc) - 3 * statistics.stdev(acc)
    kept, decided = len(acc) >= 10 and low >= RULE, len(acc) >= 10 or min(acc[:3]) < RULE
    verdict = "**kept**" if kept else "out" if decided else "undecided"
    return [name, len(acc), f"{statistics.fmean(acc):.2f}", f"{statistics.stdev(acc):.3f}", f"{low:.2f}", verdict]


def profile() -> str:
    """Where the speedrun's time goes: each part, the busiest operations, multiply-adds per second against the peak."""
    p = load("profile.json")
    parts, total = p["parts_seconds"], sum(v for k, v in p["parts_seconds"].items() if k != "of which Muon")
    rows = [[k, f"{v:.2f}", f"{100 * v / total:.0f}%"] for k, v in parts.items()]
    rows += [
        [f"op `{o['op']}` {o['shapes']}", f"{o['self_s']:.2f}", f"{100 * o['self_s'] / total:.0f}%"]
        for o in p["top_ops"][:6]
    ]
    rate = f"{p['training_macs_per_second'] / 1e9:.1f} G multiply-adds/s"
    return table(
        [f"part of {p['steps']} training steps, then one test ({p['machine']['device_name']})", "seconds", "share"],
        rows,
    ) + (
        f"\n\nTraining reached {rate}; a matmul in the recipe's precision reaches "
        f"{p['peak_macs_per_second'] / 1e9:.1f} G/s on this machine (the peak here)."
    )


# Each block: a function, or the pattern, first-column label and evaluation set of a runs_table.
BLOCKS = {
    "checklist": checklist,
    "summary": summary,
    "log": log,
    "story": story,
    "ladder": ("*_seeds.json", "model", "test"),
    "profile": profile,
    "speedrun": lambda: speedrun("speedrun*.json", "compile_check/*.json", "gpu/speedrun.json"),
    "ablation": ("ablation/*.json", "row of `lab/ablation.sh`"),
    "rule": rule,
    "fast": ("**/net_seeds.json", "recipe", "test"),
    "gpu": ("gpu/net_seed1_cuda*/history.json", "run", "test"),
    "tuning": ("**/tuning/*/history.json", "candidate"),
    "gpu-sweeps": ("gpu/*_seeds.json", "candidate", "test"),
}


def render_page(text: str) -> str:
    """A page with every generated block in it refreshed."""
    for name in BLOCKS:
        pattern = re.compile(rf"(<!-- {name} -->\n)(?:.*?\n)?(<!-- /{name} -->)", re.S)
        if pattern.search(text):
            try:
                block = runs_table(*BLOCKS[name]) if isinstance(BLOCKS[name], tuple) else BLOCKS[name]()
            except (KeyError, TypeError, IndexError, ValueError, statistics.StatisticsError) as err:
                raise ReportError(f"block {name!r}: a file it reads holds something else ({err!r})") from None
            text = pattern.sub(lambda m, block=block: m.group(1) + block + "\n" + m.group(2), text)
    return text


def notebook_images(nb: nbformat.NotebookNode) -> dict[Path, bytes]:
    """images/NAME.png -> PNG bytes, for each figure a code cell names in its metadata["images"]."""
    found = {}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        names = cell.metadata.get("images", [])
        pngs = [base64.b64decode(o["data"]["image/png"]) for o in cell.outputs if "image/png" in o.get("data", {})]
        if len(names) != len(pngs):
            raise ReportError(f"{NOTEBOOK}: a cell names {names} but shows {len(pngs)} figures; run --run-notebook")
        found.update({IMAGES / f"{name}.png": png for name, png in zip(names, pngs)})
    return found


def outputs() -> dict[Path, bytes]:
    """Every file --write makes, rendered in memory: the pages, the notebook's Markdown, its figures."""
    nb = notebook()
    for cell in (c for c in nb.cells if c.cell_type == "markdown"):
        cell.source = render_page(cell.source + "\n").removesuffix("\n")
    made = {path: render_page(read_text(path)).encode() for path in PAGES}
    return made | {NOTEBOOK: (nbformat.writes(nb) + "\n").encode()} | notebook_images(nb)


def write(made: dict[Path, bytes]) -> None:
    """Check every target first, then replace each changed file whole: all or nothing is written."""
    blocked = [problem for path in made if (problem := runlog.check_writable(path.parent))]
    blocked += [f"{path} is not writable" for path in made if path.exists() and not os.access(path, os.W_OK)]
    if blocked:
        raise ReportError(f"nothing written: {'; '.join(blocked)}")
    for path, content in made.items():
        if not path.exists() or path.read_bytes() != content:
            runlog.atomic_write(path, lambda tmp, c=content: tmp.write_bytes(c))


DUMP = "import json; print(json.dumps({**utils.environment(device), 'epochs': history}))"


# The notebook runs in a child process (and its kernel in the child's), so that a stop ends both cleanly: nbclient
# stopped inside this process prints its own and the kernel's tracebacks instead of one line.
EXECUTE = """import sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], 4)
nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3", coalesce_streams=True,  # progress bars: last state
                        resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])"""


def run_notebook() -> None:
    """Execute the notebook in full (no SMOKE_TEST), then store it and its run as data in results/notebook.json.
    Ctrl-C or SIGTERM stops the run with nothing written."""
    nb = notebook()
    nb.cells.append(nbformat.v4.new_code_cell(DUMP))  # read back as data, then removed
    env = {k: v for k, v in os.environ.items() if k != "SMOKE_TEST"}
    with tempfile.TemporaryDirectory() as tmp:
        path, log = Path(tmp) / NOTEBOOK.name, Path(tmp) / "stderr"
        nbformat.write(nb, path)
        runlog.stop_once(KeyboardInterrupt())
        with log.open("w") as err:
            child = subprocess.Popen(
                [sys.executable, "-c", EXECUTE, str(path), str(ROOT)], env=env, stderr=err, start_new_session=True
            )
        try:
            failed = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)  # nbclient shuts its kernel down on the way out
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
        if failed:
            raise ReportError(f"the notebook failed:\n{log.read_text().strip()}")
        nb = nbformat.read(path, 4)
    run = json.loads(nb.cells.pop().outputs[0]["text"])
    record = {"command": "python -m lab.report --run-notebook", **run}
    write(
        {
            NOTEBOOK: (nbformat.writes(nb) + "\n").encode(),
            RESULTS / "notebook.json": (json.dumps(record, indent=1) + "\n").encode(),
        }
    )


# ---------------------------------------------------------------------------------------------------------
# The release check (--check, run by CI).

NUMBER = re.compile(r"(?<![\w.])\d[\d,]*\.?\d*(?:%| s\b|x\b)")  # a measured number in prose: 99.4%, 18.7 s, 17.8x


def check_pages_images_and_results() -> None:
    """Every table of the pages and the notebook's Markdown is rendered from results/, images/ is the notebook's
    figures, and results/ holds nothing that no table reads but the headline's checkpoints."""
    made = outputs()
    for path, content in made.items():
        assert path.exists() and path.read_bytes() == content, f"{path} is stale: run `python -m lab.report --write`"
    stray = sorted(str(p) for p in IMAGES.iterdir() if p not in made)
    assert not stray, f"images/ holds files that are not the notebook's figures: {stray}"
    kept = {str(p.relative_to(RESULTS)) for p in RESULTS.rglob("*") if p.is_file()} - {"README.md"}
    unread = sorted(kept - READ - {f"net_seed{s}/model.pt" for s in range(1, 6)})
    assert not unread, f"results/ holds files nothing reads: {unread[:5]}{' ...' if len(unread) > 5 else ''}"


def check_prose_quotes_only_tables() -> None:
    """A measured number in a page's prose is one that a generated table of the same page shows."""
    texts = {page: read_text(page) for page in PAGES} | {
        NOTEBOOK: "\n".join(c.source for c in notebook().cells if c.cell_type == "markdown")
    }
    for page, text in texts.items():
        tables = "".join(b for _, b in re.findall(r"<!-- ([\w-]+) -->\n(.*?)<!-- /\1 -->", text, re.S))
        # not prose: the tables, code, links, goals (a threshold after >= or <=) and the assignment's 99.4%
        prose = re.sub(
            r"<!-- ([\w-]+) -->\n.*?<!-- /\1 -->|`[^`]*`|\]\([^)]*\)|(≥|≤|>=|<=) ?[\d.,]+|99\.4%", "", text, flags=re.S
        )
        loose = [n for n in NUMBER.findall(prose) if n.rstrip("%sx ") not in tables]
        assert not loose, f"{page}: {loose} in the prose are in no table of the page: quote a table, or say it in words"


def check_notebook_run() -> None:
    """The stored notebook is results/notebook.json's run: every cell in order, clean, 19 epochs, the assignment met."""
    nb, run = notebook(), load("notebook.json")
    assert_history(run["epochs"], "results/notebook.json")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{NOTEBOOK}: not one Run all in order"
    printed = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    bad = [
        o
        for c in code
        for o in c.outputs
        if o.output_type == "error" or o.get("name") == "stderr" or "\r" in o.get("text", "")
    ]
    assert not bad, f"{NOTEBOOK}: an error, stderr or progress-bar updates are stored"
    lines = [utils.format_epoch(r) for r in run["epochs"]]
    assert re.findall(r"^epoch +\d+ \|.*$", printed, re.M) == lines, f"{NOTEBOOK}: not results/notebook.json's run"
    assert len(lines) == utils.Recipe().epochs and utils.assignment_met(
        utils.assignment_checklist(MODELS["net"](), run["epochs"])
    ), "results/notebook.json: a requirement is missed"
    notebook_images(nb)


def check_summaries_recompute() -> None:
    """Every sweep's summary recomputes from its runs; the ladder ran today's networks, recipes and epochs."""
    wrong = []  # every file that fails is named, not only the first
    for path in sorted(RESULTS.rglob("*.json")):
        name = path.relative_to(RESULTS)
        try:
            assert_summary(load(str(name)), name)
        except AssertionError as err:
            wrong.append(str(err))
        except Exception as err:  # a field missing, of another type, an empty list: malformed, named
            wrong.append(f"{name}: malformed ({type(err).__name__}: {err})")
    assert not wrong, "; ".join(wrong)
    for key in ("net", "lite", "micro", "nano"):
        tool = asdict(toolbox.RECIPES[key])
        runs, recipe = load(f"{key}_seeds.json")["runs"], {f: tool[f] for f in utils.Recipe.__dataclass_fields__}
        for r in runs:
            ran = {k: v for k, v in r["recipe"].items() if k in recipe}
            assert ran == recipe and r["params"] == utils.count_parameters(MODELS[key]()), f"{key}: not today's"
            assert r["train_images"] == 60_000 and r["eval_set"].startswith("test"), f"{key}_seeds.json: not test"


def assert_summary(data: dict, name: Path) -> None:
    """One results file's summary against its runs, and each run's history."""
    runs = data.get("runs") or []
    if runs and "eval_set" in runs[0]:  # lab/train.py's runs
        assert data["summary"] == runlog.summarize_runs(runs), f"{name}: its summary is not its runs'"
        for run in runs:
            assert_history(run["epochs"], f"{name}, seed {run['seed']}")
    elif runs:  # a speedrun
        accs = [r["test_acc"] for r in runs]
        s = data["summary"]
        assert (s["final_mean"], s["final_min"]) == (round(sum(accs) / len(accs), 3), min(accs)), f"{name}: summary"
        assert s["seconds_mean"] == round(sum(r["seconds"] for r in runs) / len(runs), 3), f"{name}: seconds"


def assert_history(epochs: list[dict], where: str) -> None:
    """A history as lab/train.py writes it: epochs 1..n (at least one), values in range, each accuracy its count's."""
    assert epochs, f"{where}: no epoch"
    assert [r["epoch"] for r in epochs] == list(range(1, len(epochs) + 1)), f"{where}: epochs not numbered 1..n"
    for r in epochs:
        assert all(0 <= r[k] < math.inf for k in ("train_loss", "test_loss", "lr", "seconds")), f"{where}: {r}"
        assert all(0 <= r[k] <= 100 for k in ("train_acc", "test_acc")), f"{where}: an accuracy outside 0-100"
        if "test_correct" in r:
            acc = round(100 * r["test_correct"] / r["test_total"], 3)
            assert r["test_acc"] == acc, f"{where}, epoch {r['epoch']}: test_acc is not its test_correct's"


@functools.cache
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's test images and labels, read once."""
    return utils.dataset_tensors(utils.get_mnist(ROOT / "data")[1])


def check_headline_reevaluates() -> None:
    """Net's five checkpoints load on a CPU and score what net_seeds.json recorded (test accuracy and loss)."""
    test = test_set()
    wrong = []  # every checkpoint that fails is named, not only the first
    for run in load("net_seeds.json")["runs"]:
        path, model = RESULTS / f"net_seed{run['seed']}" / "model.pt", MODELS["net"]()
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:  # truncated, not a checkpoint, another network
            wrong.append(f"{path}: unreadable ({f'{type(err).__name__}: {err}'.splitlines()[0]})")
            continue
        loss, correct = utils.test(model, *test)
        last = run["epochs"][-1]
        # the loss to within CPU kinds' rounding (another instruction set sums in another order)
        if not (correct / 100 == last["test_acc"] and abs(loss - last["test_loss"]) < 2e-5):
            wrong.append(f"{path}: scores otherwise")
    assert not wrong, "; ".join(wrong)


def check_no_temporary_files() -> None:
    """No temporary file is left beside a page, a result or the notebook (a write stopped by SIGKILL leaves one)."""
    left = sorted(map(str, [*ROOT.glob(".*.tmp"), *IMAGES.glob(".*.tmp"), *RESULTS.rglob(".*.tmp"),
                            *LAB.glob("*/.*.tmp")]))  # fmt: skip
    assert not left, f"temporary files left by a stopped write: {left}; delete them"


def run_checks() -> int:
    """Run every check; print one line each; 1 if any failed."""
    failed = 0
    for check in [f for name, f in globals().items() if name.startswith("check_")]:
        try:
            check()
            print(f"ok    {check.__doc__}", flush=True)
        except (Exception, utils.MNISTDataError) as err:  # a malformed file is a FAIL line, and the next check runs
            failed += 1
            print(f"FAIL  {check.__name__}: {err}", flush=True)
    print(f"release check: {'failed' if failed else 'passed'}")
    return 1 if failed else 0


def main() -> int:
    """Print the blocks, write them, run the notebook, or run the release check."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="refresh the pages, the notebook's Markdown and images/")
    mode.add_argument("--check", action="store_true", help="the release check")
    mode.add_argument("--run-notebook", action="store_true", help="execute the notebook in full, then --write")
    args = p.parse_args()
    runlog.stop_once(KeyboardInterrupt())  # SIGTERM as Ctrl-C: one line, nothing half-written
    try:
        if args.check:
            return run_checks()
        if args.run_notebook:
            run_notebook()
        if args.write or args.run_notebook:
            write(outputs())
        else:
            print("\n".join(render_page(f"<!-- {name} -->\n<!-- /{name} -->\n") for name in BLOCKS))
    except (ReportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped by Ctrl-C or SIGTERM; nothing half-written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
