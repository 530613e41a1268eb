"""Release check (`python -m lab.report --check`, run by CI; not part of `pytest`): the committed
evidence agrees with itself. README, docs, results/README.md and the notebook's Markdown show exactly
what results/ and the stored run hold; images/ holds the stored run's figures; sweep summaries
recompute. A user's own Run all changes the stored notebook, and then the notebook checks here say so
and name the command that publishes it (or restores the committed one); `pytest` never compares
against committed bits.
"""

import json
from dataclasses import asdict
from statistics import median

import nbformat
import pytest

import runlog
import utils
from lab import report
from model import MODELS

ROOT = report.ROOT
RESULTS = ROOT / "results"
LADDER = {"net": 19, "lite": 15, "micro": 15, "nano": 20}
PUBLISH = (
    f"the stored notebook is not the committed run: restore it with `git checkout {report.NOTEBOOK.name}`, or"
    f" publish this run with `{report.RUN_NOTEBOOK}`"
)


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


@pytest.mark.parametrize("page", report.PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_are_generated_from_results(page):
    text = page.read_text()
    assert report.render_page(text) == text, "run `python -m lab.report --write`"


def test_the_notebooks_markdown_and_images_are_generated_from_its_run():
    nb = report.stored_notebook()
    sources = [c.source for c in nb.cells]
    assert [c.source for c in report.render_notebook(nb).cells] == sources, "run `python -m lab.report --write`"
    for name, png in report.notebook_images(nb).items():
        assert (report.IMAGES / name).read_bytes() == png, f"images/{name} is not the stored run's: {PUBLISH}"


def test_every_committed_run_records_its_command():
    missing = [
        str(p.relative_to(ROOT)) for p in RESULTS.rglob("history.json") if "command" not in json.loads(p.read_text())
    ]
    assert not missing, f"no command recorded in {missing}: re-run them with train.py, which records it"


def test_checkpoints_are_kept_only_where_a_sweep_can_be_reevaluated_and_load_on_a_cpu():
    import torch

    kept = sorted(str(p.relative_to(RESULTS)) for p in RESULTS.rglob("model.pt"))
    assert kept == [f"{m}_seed{s}/model.pt" for m in sorted(LADDER) for s in range(1, 6)]
    for name in kept:
        MODELS[name.split("_")[0]]().load_state_dict(torch.load(RESULTS / name, map_location="cpu", weights_only=True))


@pytest.mark.parametrize("model", sorted(LADDER))
def test_seed_sweeps_are_complete_and_their_summaries_recompute(model):
    sweep = load(f"{model}_seeds.json")
    assert sweep["params"] == utils.count_parameters(MODELS[model]())
    assert [r["seed"] for r in sweep["runs"]] == [1, 2, 3, 4, 5]
    recipe = asdict(utils.RECIPES[model])
    for run in sweep["runs"]:
        assert len(run["epochs"]) == LADDER[model] and run["eval_set"].startswith("test")
        assert run["train_images"] == 60_000
        # A field added since the run was recorded ran at what is now its default.
        ran = asdict(utils.Recipe()) | {k: v for k, v in run["recipe"].items() if k in recipe}
        assert ran == recipe, f"not utils.RECIPES[{model!r}]: re-run it"
        assert run == load(f"{model}_seed{run['seed']}/history.json")
    assert runlog.not_one_sweep(sweep["runs"]) is None
    assert sweep["summary"] == runlog.summarize_runs(sweep["runs"])


def test_fast_recipe_sweep_is_complete_and_its_summary_recomputes():
    sweep = load("fast/net_seeds.json")
    assert [r["seed"] for r in sweep["runs"]] == [1, 2, 3, 4, 5]
    for run in sweep["runs"]:
        assert len(run["epochs"]) == 19 and run["train_images"] == 60_000 and run["eval_set"].startswith("test")
        assert run["recipe"] | {"precision": "bf16", "batch_size": 256, "lr": 0.1} == run["recipe"]
    assert sweep["summary"] == runlog.summarize_runs(sweep["runs"])


def test_speed_ratios_recompute_from_their_parts():
    speed = load("speed.json")
    base, ours = speed["baseline"], speed["ours"]
    assert speed["epoch_ratio"] == round(base["seconds_per_epoch"] / ours["seconds_per_epoch"], 2)
    assert speed["time_to_99_4_ratio"] == round(base["time_to_99_4"] / speed["ours_time_to_99_4"], 2)
    assert speed["ours_time_to_99_4"] <= ours["time_to_99_4"]
    assert base["epochs"][-1]["test_acc"] >= 99.4 and base["epoch_to_99_4"] == len(base["epochs"])


def test_speed_levers_recompute_from_their_rounds():
    levers = load("speed_levers.json")
    rows = levers["levers"]
    base, ours = rows[0], rows[1]
    assert base["lever"] == "task statement's recipe"
    for row in rows:
        assert len(row["all_rounds"]) == levers["rounds"]
        assert row["seconds_per_epoch"] == round(median(row["all_rounds"]), 2)
        assert row["vs_ours"] == pytest.approx(ours["seconds_per_epoch"] / row["seconds_per_epoch"], abs=0.011)
        ratio = base["seconds_per_epoch"] / row["seconds_per_epoch"]
        assert row["vs_task_statement"] == pytest.approx(ratio, abs=0.011)


@pytest.mark.parametrize("name", [name for _, name in report.SPEEDRUNS])
def test_speedrun_summaries_recompute_from_their_runs(name):
    run = load(name)
    s, accs = run["summary"], [r["test_acc"] for r in run["runs"]]
    assert [r["seed"] for r in run["runs"]] == list(range(1, 11))
    assert s["final_mean"] == round(sum(accs) / len(accs), 3) and s["final_min"] == min(accs)
    assert s["every_seed_at_least_99_4"] == (min(accs) >= utils.TARGET)
    assert s["seconds_mean"] == round(sum(r["seconds"] for r in run["runs"]) / len(accs), 3)
    if s.get("ratio"):
        # the benchmark divides by the unrounded mean: allow the last digit
        assert s["ratio"] == pytest.approx(s["baseline_time_to_99_4"] / s["seconds_mean"], abs=0.011)


def test_gpu_runs_are_full_and_the_deterministic_pair_agrees():
    runs = dict(report.gpu_runs())
    assert all(run["device"] == "cuda" and len(run["epochs"]) == 19 for run in runs.values())
    first, second = (r for cmd, r in runs.items() if "--deterministic" in cmd)
    assert first["deterministic"] and second["deterministic"]
    assert runlog.without_seconds(first["epochs"]) == runlog.without_seconds(second["epochs"])


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(report.NOTEBOOK, as_version=4)


def test_stored_run_is_the_full_19_epochs_and_meets_every_requirement(notebook):
    epochs = report.parse_epochs(report.notebook_text(notebook))
    assert [e["epoch"] for e in epochs] == list(range(1, 20)), PUBLISH
    assert all(row["met"] == "yes" for row in utils.assignment_checklist(MODELS["net"](), epochs))
    assert all(e["test_total"] == 10_000 and e["test_acc"] == round(e["test_correct"] / 100, 3) for e in epochs)


def test_every_code_cell_executed_in_order_and_clean(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), PUBLISH
    assert "widgets" not in notebook.metadata
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"stderr output: {out.text[:200]}"
            assert "\r" not in out.get("text", ""), f"progress-bar updates stored in the notebook: {PUBLISH}"
