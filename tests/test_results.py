"""The committed results are internally consistent and the READMEs show exactly them."""

import json

import pytest

import report
import utils
from conftest import ROOT
from model import MODELS

RESULTS = ROOT / "results"
LADDER = {"net": 19, "lite": 15, "micro": 15}


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


@pytest.mark.parametrize("readme", ["README.md", "results/README.md"])
def test_readme_tables_are_generated_from_results(readme, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = (ROOT / readme).read_text()
    assert report.render_readme(text) == text, "run `python report.py --write`"


@pytest.mark.parametrize("model", sorted(LADDER))
def test_seed_sweeps_are_complete_and_their_summaries_recompute(model):
    sweep = load(f"{model}_seeds.json")
    assert sweep["params"] == utils.count_parameters(MODELS[model]())
    assert [r["seed"] for r in sweep["runs"]] == [1, 2, 3, 4, 5]
    for run in sweep["runs"]:
        assert len(run["epochs"]) == LADDER[model] and run["eval_set"].startswith("test")
        assert run["train_images"] == 60_000
    assert sweep["summary"] == utils.summarize_runs(sweep["runs"])


def test_fast_recipe_sweep_is_complete_and_its_summary_recomputes():
    sweep = load("fast/net_seeds.json")
    assert [r["seed"] for r in sweep["runs"]] == [1, 2, 3, 4, 5]
    for run in sweep["runs"]:
        assert len(run["epochs"]) == 19 and run["train_images"] == 60_000 and run["eval_set"].startswith("test")
        assert run["recipe"] | {"precision": "bf16", "batch_size": 256, "lr": 0.1} == run["recipe"]
    assert sweep["summary"] == utils.summarize_runs(sweep["runs"])


def test_default_run_is_seed_1_of_the_sweep_and_the_notebook_repeats_it():
    seed1 = load("net_seed1/history.json")
    assert seed1 == load("net_seeds.json")["runs"][0]
    notebook = load("notebook_history.json")

    def accuracies(epochs):
        return [(e["epoch"], e["train_loss"], e["test_acc"]) for e in epochs]

    # Same seed, same code, same CPU thread count: the notebook's run is train.py's run, bit for bit.
    assert accuracies(notebook["epochs"]) == accuracies(seed1["epochs"])


def test_speed_ratios_recompute_from_their_parts():
    speed = load("speed.json")
    base, ours = speed["baseline"], speed["ours"]
    assert speed["epoch_ratio"] == round(base["seconds_per_epoch"] / ours["seconds_per_epoch"], 2)
    assert speed["time_to_99_4_ratio"] == round(base["time_to_99_4"] / speed["ours_time_to_99_4"], 2)
    assert speed["ours_time_to_99_4"] <= ours["time_to_99_4"]
    assert base["epochs"][-1]["test_acc"] >= 99.4 and base["epoch_to_99_4"] == len(base["epochs"])


def test_speed_levers_cover_every_lever_and_their_ratios_recompute():
    from statistics import median

    import benchmark

    levers = load("speed_levers.json")
    rows = {r["lever"]: r for r in levers["levers"]}
    assert list(rows) == ["task statement's recipe", *benchmark.LEVERS]
    base, ours = rows["task statement's recipe"], rows[next(iter(benchmark.LEVERS))]
    for row in rows.values():
        assert len(row["all_rounds"]) == levers["rounds"]
        assert row["seconds_per_epoch"] == round(median(row["all_rounds"]), 2)
        assert row["vs_ours"] == pytest.approx(ours["seconds_per_epoch"] / row["seconds_per_epoch"], abs=0.011)
        assert row["vs_task_statement"] == pytest.approx(
            base["seconds_per_epoch"] / row["seconds_per_epoch"], abs=0.011
        )
    assert "compile_seconds" in rows["torch.compile"]


def test_gpu_runs_are_full_and_the_deterministic_pair_agrees():
    runs = dict(report.gpu_runs())
    assert all(run["device"] == "cuda" and len(run["epochs"]) == 19 for run in runs.values())
    first, second = (r for cmd, r in runs.items() if "--deterministic" in cmd)
    assert first["deterministic"] and second["deterministic"]
    assert report.without_seconds(first) == report.without_seconds(second)
