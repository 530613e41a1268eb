"""Real (short) training runs: learning happens, seeds reproduce, the CLI works end to end."""

import json
import subprocess
import sys

import pytest
import torch

import utils
from conftest import DATA_DIR, ROOT
from model import Net


def short_run(small_data, seed: int = 1, epochs: int = 1) -> list[dict]:
    """Train Net on the first 2,000 training images; evaluate on the 10k test set."""
    train, test = small_data
    utils.seed_everything(seed)
    return utils.fit(Net(), train, test, utils.Recipe(epochs=epochs, batch_size=32), seed=seed, progress=False)


def test_one_short_epoch_learns_far_above_chance(small_data):
    history = short_run(small_data)
    assert history[0]["test_acc"] > 60  # chance is 10%
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}


def test_same_seed_same_history_on_cpu(small_data):
    def without_time(history):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]

    first, second = short_run(small_data, seed=3), short_run(small_data, seed=3)
    assert without_time(first) == without_time(second)
    assert without_time(short_run(small_data, seed=4)) != without_time(first)


def test_fp32_and_bf16_both_learn_and_differ(small_data):
    train, test = small_data

    def run(precision: str) -> list[dict]:
        recipe = utils.Recipe(epochs=1, batch_size=32, precision=precision)
        return utils.fit(Net(), train, test, recipe, seed=1, progress=False)

    fp32, bf16 = run("fp32"), run("bf16")
    assert fp32[0]["test_acc"] > 60 and bf16[0]["test_acc"] > 60
    assert fp32[0]["train_loss"] != bf16[0]["train_loss"]  # bf16 autocast really ran


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="precision"):
        utils.autocast(torch.device("cpu"), "fp16")


def test_summarize_runs_reports_worst_cases():
    def run(seed, accs):
        return {"seed": seed, "epochs": [{"epoch": i + 1, "test_acc": a, "seconds": 1.0} for i, a in enumerate(accs)]}

    summary = utils.summarize_runs([run(1, [99.0, 99.41, 99.5, 99.6]), run(2, [99.4, 99.3, 99.45, 99.5])])
    assert summary["final_mean"] == 99.55 and summary["final_min"] == 99.5
    assert summary["last3_min"] == 99.3
    assert summary["first_epoch_99_4"] == [2, 1]


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run train.py as a user would."""
    cmd = [sys.executable, str(ROOT / "train.py"), "--data-dir", str(DATA_DIR), "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_cli_trains_and_writes_history(tmp_path, mnist):
    done = cli(
        "--limit-train", "1000", "--epochs", "2", "--batch-size", "64", "--precision", "bf16", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert sum(line.startswith("epoch") for line in done.stdout.splitlines()) == 2
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["model"] == "net" and history["params"] == utils.count_parameters(Net())
    assert history["recipe"]["precision"] == "bf16"
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert 0 <= history["epochs"][-1]["test_acc"] <= 100
    Net().load_state_dict(torch.load(tmp_path / "model.pt"))
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "train.log").read_text().count("\nepoch") == 2


def test_cli_seed_sweep_writes_a_summary(tmp_path, mnist):
    done = cli(
        "--model",
        "micro",
        "--seeds",
        "1-2",
        "--limit-train",
        "500",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "micro_seed{seed}"),
    )
    assert done.returncode == 0, done.stderr
    sweep = json.loads((tmp_path / "micro_seeds.json").read_text())
    assert [r["seed"] for r in sweep["runs"]] == [1, 2] and sweep["summary"]["seeds"] == [1, 2]


def test_cli_deterministic_flag_is_recorded(tmp_path, mnist):
    done = cli("--limit-train", "500", "--epochs", "1", "--deterministic", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "history.json").read_text())["deterministic"] is True


def test_benchmark_levers_swap_dropout_and_time_real_steps(small_data):
    import benchmark

    model = benchmark.with_dropout(Net(), torch.nn.Dropout2d)
    kinds = [type(m) for m in model.modules()]
    assert torch.nn.Dropout2d in kinds and torch.nn.Dropout not in kinds
    assert not any(isinstance(m, torch.nn.Dropout) for m in benchmark.with_dropout(Net(), None).modules())
    (images, labels), _ = small_data
    seconds, warm = benchmark.time_lever(images[:640], labels[:640], {"precision": "bf16"})
    assert seconds > 0 and warm > 0


@pytest.mark.parametrize(
    "flags", [["--epochs", "0"], ["--model", "resnet"], ["--seeds", "a-b"], ["--lr"], ["--precision", "fp16"]]
)
def test_cli_rejects_bad_flags(flags):
    done = cli(*flags)
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_without_cuda_is_one_clear_error():
    done = cli("--device", "cuda")
    assert done.returncode == 2 and "no CUDA" in done.stderr and "Traceback" not in done.stderr
