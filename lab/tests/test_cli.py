"""train.py, runlog.py and the lab tools as a careless user runs them: one clear line per fault, nothing lost."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import utils
from conftest import DATA_DIR, ROOT
from lab import report, runlog, toolbox
from lab.networks import MODELS
from model import Net


def run(script: str, *args: str, cwd: Path = ROOT, limit: str = "") -> subprocess.CompletedProcess:
    """Run one of the bench's commands (lab.train, lab.report) as a user would; `limit`: a ulimit."""
    cmd = [sys.executable, "-m", script, *args]
    if limit:  # e.g. "-f 40": a disk that fills up after 40 KB
        cmd = ["bash", "-c", f'ulimit {limit}; exec "$@"', "bash", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """train.py with the shared data folder and no progress bar."""
    return run("lab.train", "--data-dir", str(DATA_DIR), "--no-progress", *args, cwd=cwd)


@pytest.fixture
def here(monkeypatch, capsys):
    """train.py's main in this process, as `cli` runs it (no interpreter to start): (exit code, stderr)."""
    from lab import train

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own signal handling alone

    def call(*args: str) -> subprocess.CompletedProcess:
        try:
            code = train.main(["--data-dir", str(DATA_DIR), "--no-progress", *args])
        except SystemExit as stop:  # argparse's errors
            code = stop.code
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return call


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def strict_json(path: Path) -> dict:
    """JSON as a strict reader takes it: NaN and Infinity are errors."""

    def refuse(name: str):
        raise ValueError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mnist) -> Path:
    """One short finished run: 2 epochs on the smoke run's images, precision auto."""
    out = tmp_path_factory.mktemp("run")
    done = cli("--epochs", "2", "--precision", "auto", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_cli_trains_and_writes_history(finished_run):
    history = strict_json(finished_run / "history.json")
    assert history["model"] == "net" and history["params"] == utils.count_parameters(Net())
    native = toolbox.native_bf16(torch.device("cpu"))
    assert history["recipe"]["precision"] == ("bf16" if native else "fp32")  # what ran, never "auto"
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert history["command"].startswith("python -m lab.train --data-dir")
    assert {"git_commit", "device_name", "cpu", "torch", "threads"} <= set(history)
    Net().load_state_dict(torch.load(finished_run / "model.pt", weights_only=True))
    assert sorted(p.name for p in finished_run.iterdir()) == ["history.json", "model.pt", "train.log"]
    assert (finished_run / "train.log").read_text().count("\nepoch") == 2


def test_default_output_is_runs_not_results(tmp_path, mnist, here, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = here("--epochs", "1")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "net_seed1" / "history.json").exists()
    assert not (tmp_path / "results").exists()


def test_an_earlier_run_is_never_overwritten(finished_run, here):
    before = snapshot(finished_run)
    done = here("--epochs", "1", "--out", str(finished_run))
    assert done.returncode == 2 and "already holds a run" in done.stderr and "--force" in done.stderr
    assert snapshot(finished_run) == before


def test_force_overwrites(tmp_path, mnist, here):
    (tmp_path / "old.txt").write_text("an earlier run")
    done = here("--epochs", "1", "--out", str(tmp_path), "--force")
    assert done.returncode == 0, done.stderr
    assert strict_json(tmp_path / "history.json")["train_images"] == utils.SMOKE_IMAGES


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--weight-decay", "-0.1"], "--weight-decay"),
        (["--seed", "-1"], "seed"),
        (["--seeds", "1-2", "--out", "somewhere"], "{seed}"),
        (["--epochs", "0"], "--epochs"),
        (["--model", "resnet"], "--model"),
        (["--seeds", "a-b"], "seeds"),
        (["--seeds", "5-1"], "reversed"),
        (["--seeds", "0-4294967295"], "at most 1000 seeds"),
        (["--seed", "1-3"], "one seed"),
        (["--seed", "5", "--seeds", "1-2", "--out", "runs/x{seed}"], "give one of them"),
        (["--muon-lr", "-0.02"], "--muon-lr"),
        (["--out", ""], "--out is empty"),
        (["--data-dir", " "], "--data-dir is empty"),
        (["--model", "nano", "--pool-after", "3"], "--pool-after"),
        (["--precision", "fp16"], "--precision"),
        (["--widths", "8,16"], "widths"),
        (["--model", "baseline", "--dropout", "0.1"], "do not apply"),
        (["--stages", "4,4/8,8"], "--stages"),
        (["--model", "nano", "--stages", "4,x"], "stages"),
        (["--warmup", "1"], "--warmup"),
        (["--weight-decay", "1e30"], "--weight-decay"),
        (["--dropout", "nan"], "dropout"),
        (["--out", "runs/x{seed"], "--out"),
        (["--out", "runs/{name}"], "--out"),
        (["--val-split", "60000"], "--val-split"),
        (["--model", "nano", "--stages", "4/4/4/4/4/4/4"], "too small"),
        (["--widths", "100000,100000,100000,100000,100000"], "--widths"),
    ],
)
def test_bad_flags_are_one_clear_line_before_anything_is_written(flags, message, finished_run, here):
    before = snapshot(finished_run)
    done = here(*flags) if "--out" in flags else here("--out", str(finished_run), "--force", *flags)
    assert done.returncode == 2 and "usage:" in done.stderr and message in done.stderr.splitlines()[-1], done.stderr
    assert snapshot(finished_run) == before


def test_out_naming_a_file_or_an_impossible_folder_is_one_clear_line(tmp_path, here):
    (tmp_path / "file").write_text("x")
    done = here("--out", str(tmp_path / "file" / "run"))
    assert done.returncode == 2 and "is a file" in done.stderr and "Traceback" not in done.stderr
    done = here("--out", "/proc/no-runs-here")
    assert done.returncode == 2 and "not writable" in done.stderr and "Traceback" not in done.stderr


def test_data_dir_naming_a_file_is_one_clear_line(tmp_path, here):
    (tmp_path / "data").write_text("x")
    done = here("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "is a file" in done.stderr


def test_non_finite_loss_stops_the_run_and_keeps_valid_files(tmp_path, mnist, here):
    done = here("--epochs", "2", "--lr", "1e6", "--out", str(tmp_path))
    assert done.returncode not in (0, 2) and "Traceback" not in done.stderr
    assert "epoch 1, step" in done.stderr and "lower the learning rate" in done.stderr
    assert not (tmp_path / "history.json").exists()  # no epoch finished with a finite loss
    assert "stopped" in (tmp_path / "train.log").read_text()


def test_a_checkpoint_is_kept_only_when_every_weight_and_statistic_is_finite(tmp_path, mnist, here):
    # Peak LR 300: a loss can stay finite for an epoch while BatchNorm's running variance overflows.
    done = here("--epochs", "3", "--lr", "300", "--out", str(tmp_path))
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    if (tmp_path / "model.pt").exists():
        state = torch.load(tmp_path / "model.pt", weights_only=True)
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
        assert len(strict_json(tmp_path / "history.json")["epochs"]) >= 1


def test_a_full_disk_is_one_line_and_keeps_no_half_file(tmp_path, mnist):
    done = run(
        "lab.train",
        "--data-dir",
        str(DATA_DIR),
        "--no-progress",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        limit="-f 40",
    )
    assert done.returncode == 1 and "could not write" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "history.json").exists() and not list(tmp_path.glob("*.tmp"))


def long_run_after_its_first_epoch(out: Path) -> subprocess.Popen:
    """train.py on a 100-epoch run, once its first epoch is on disk."""
    cmd = [sys.executable, "-m", "lab.train", "--data-dir", str(DATA_DIR), "--no-progress"]
    cmd += ["--epochs", "100", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 300
    while not (out / "history.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc


def test_sigterm_is_handled_like_ctrl_c(tmp_path, mnist):
    proc = long_run_after_its_first_epoch(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "SIGTERM" in stderr and "Traceback" not in stderr
    history = strict_json(tmp_path / "history.json")
    assert 1 <= len(history["epochs"]) < 100
    Net().load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert "interrupted" in (tmp_path / "train.log").read_text()


def test_a_second_ctrl_c_while_stopping_is_ignored_not_a_traceback(tmp_path, mnist):
    proc = long_run_after_its_first_epoch(tmp_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def test_ctrl_c_during_the_speedrun_is_one_line(tmp_path, mnist):
    cmd = [
        sys.executable,
        "-m",
        "lab.benchmark",
        "--speedrun",
        "--skip-baseline",
        "--data-dir",
        str(DATA_DIR),
        "--out",
        str(tmp_path / "speedrun.json"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    while "warm-up" not in proc.stdout.readline():  # a seed is running now
        assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and stderr.strip() == "stopped by Ctrl-C or SIGTERM; nothing written", stderr
    assert not (tmp_path / "speedrun.json").exists()


def test_a_diverging_muon_is_named(tmp_path, mnist, here):
    done = here("--epochs", "1", "--muon-lr", "1e30", "--out", str(tmp_path))
    assert done.returncode == 3 and "--muon-lr 1e+30" in done.stderr and "Traceback" not in done.stderr


def test_ablation_checks_every_row_name_before_training_any():
    for names in (["bogus_row"], ["micro", "bogus_row"], [""], [], ["micro", "micro"]):
        done = subprocess.run(["bash", "lab/ablation.sh", *names], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 2 and any(s in done.stderr for s in ("no row named", "usage:", "twice")), done.stderr
        assert "epoch" not in done.stdout


def test_ablation_refuses_a_row_whose_result_it_cannot_write_before_training(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    (clone / "lab" / "results" / "ablation" / "base_ep5.json").unlink()
    (clone / "lab" / "results" / "ablation" / "base_ep5.json").mkdir()  # no file can be written there, not even by root
    done = subprocess.run(
        ["bash", "lab/ablation.sh", "base_ep5"], capture_output=True, text=True, cwd=clone, timeout=60
    )
    assert done.returncode == 2 and "cannot write lab/results/ablation/base_ep5.json" in done.stderr, done.stderr
    assert not (clone / "runs").exists()


def gpu_script(*args: str, out: Path | None = None) -> subprocess.CompletedProcess:
    """lab/gpu.sh as a user runs it, writing into `out` (its $OUT)."""
    env = {**os.environ, **({"OUT": str(out)} if out else {})}
    return subprocess.run(["bash", "lab/gpu.sh", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_the_gpu_script_takes_no_flag():
    done = gpu_script("--smoke")  # SMOKE_TEST=1 is the one smoke switch
    assert done.returncode == 2 and "usage:" in done.stderr


def test_the_gpu_script_never_overwrites_results_it_finds(tmp_path):
    committed = ROOT / "lab" / "results" / "gpu" / "speedrun.json"
    shutil.copy(committed, tmp_path)
    done = gpu_script(out=tmp_path)  # SMOKE_TEST=1, from conftest
    assert done.returncode != 0 and "already exists" in done.stderr
    assert (tmp_path / "speedrun.json").read_bytes() == committed.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speedrun.json"]


def test_the_gpu_script_runs_its_checks_in_smoke_mode_on_a_cpu(tmp_path):
    done = gpu_script(out=tmp_path)  # SMOKE_TEST=1, from conftest
    assert done.returncode == 0, done.stderr
    recipe = strict_json(tmp_path / "speedrun.json")["recipe"]
    assert recipe["model"] == "framed" and recipe["precision"] == "fp32"  # the recipe the rule kept
    assert len(strict_json(tmp_path / "net_seed1" / "history.json")["epochs"]) == 1


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    runlog.save_model(tmp_path / "model.pt", Net())
    before = (tmp_path / "model.pt").read_bytes()

    class Unsaveable(torch.nn.Module):
        def state_dict(self, *args, **kwargs):
            return {"weight": torch.zeros(3), "broken": lambda: None}  # pickling the lambda fails mid-write

    with pytest.raises(Exception, match="lambda|pickle"):
        runlog.save_model(tmp_path / "model.pt", Unsaveable())
    assert (tmp_path / "model.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temporary file left


def test_json_with_nan_is_refused_not_written(tmp_path):
    with pytest.raises(ValueError):
        runlog.save_json(tmp_path / "h.json", {"loss": math.nan})
    assert not list(tmp_path.iterdir())


def test_seed_sweep_writes_a_summary_and_refuses_to_overwrite_it(tmp_path, mnist, here):
    flags = ["--model", "micro", "--seeds", "1-2", "--epochs", "1"]
    done = here(*flags, "--out", str(tmp_path / "micro_seed{seed}"))
    assert done.returncode == 0, done.stderr
    sweep = strict_json(tmp_path / "micro_seeds.json")
    assert [r["seed"] for r in sweep["runs"]] == [1, 2] and sweep["summary"]["seeds"] == [1, 2]
    again = here(*flags, "--seeds", "3-4", "--out", str(tmp_path / "micro_seed{seed}"))
    assert again.returncode == 2 and "micro_seeds.json already exists" in again.stderr


def test_widths_and_dropout_flags_build_the_variant(tmp_path, mnist, here):
    done = here(
        "--model",
        "micro",
        "--widths",
        "6,8,8,10,10",
        "--dropout",
        "0",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    history = strict_json(tmp_path / "history.json")
    assert history["widths"] == [6, 8, 8, 10, 10] and history["dropout"] == 0 and history["params"] == 3796
    done = here(
        "--model",
        "nano",
        "--stages",
        "3,3/6,6",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "nano"),
    )
    assert done.returncode == 0, done.stderr
    assert strict_json(tmp_path / "nano" / "history.json")["stages"] == [[3, 3], [6, 6]]


def test_cli_deterministic_flag_is_recorded(tmp_path, mnist):
    done = cli("--epochs", "1", "--deterministic", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert strict_json(tmp_path / "history.json")["deterministic"] is True


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_without_cuda_is_one_clear_error():
    done = cli("--device", "cuda")
    assert done.returncode == 2 and "no CUDA" in done.stderr and "Traceback" not in done.stderr


def test_the_notebooks_code_path_is_train_pys_run_bit_for_bit(tmp_path, small_data, monkeypatch):
    """The notebook's calls (summary first, then fit) and train.py give the same run, in one process."""
    from lab import train

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own SIGTERM handling alone
    train.main(["--data-dir", str(DATA_DIR), "--epochs", "2", "--no-progress", "--out", str(tmp_path)])
    (train_x, train_y), test = small_data
    recipe = replace(utils.Recipe(), epochs=2)  # as the notebook's smoke mode overrides it
    utils.seed_everything(1)
    model = Net()
    utils.model_summary(model)
    history = utils.fit(model, (train_x, train_y), test, recipe, seed=1, progress=False)  # the smoke run's 2,000
    assert runlog.without_seconds(strict_json(tmp_path / "history.json")["epochs"]) == runlog.without_seconds(history)


def test_report_names_a_broken_results_file(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    with pytest.raises(report.ReportError, match=r"net_seeds.json: .*No such file.*results/README.md"):
        report.load("net_seeds.json")
    (tmp_path / "net_seeds.json").write_text('{"truncated": ')
    with pytest.raises(report.ReportError, match=r"net_seeds.json: Expecting"):
        report.load("net_seeds.json")
    (tmp_path / "net_seeds.json").write_text('{"runs": [{"epochs": []}]}')
    with pytest.raises(report.ReportError, match=r"block 'ladder': a file it reads holds something else"):
        report.render_page("<!-- ladder -->\n<!-- /ladder -->\n")


def test_report_writes_every_file_or_none(tmp_path):
    page = tmp_path / "README.md"
    page.write_text("old")
    (tmp_path / "images").write_text("a file where the images folder should be")
    with pytest.raises(report.ReportError, match="nothing written: .*images is a file"):
        report.write({page: b"new", tmp_path / "images" / "curves.png": b"a png"})
    assert page.read_text() == "old"


def test_report_reads_and_writes_pages_as_utf8_whatever_the_locale(tmp_path):
    page = tmp_path / "page.md"
    page.write_bytes("mean ± std\n<!-- ladder -->\n<!-- /ladder -->\n".encode())
    code = (
        "import sys; from lab import report; p = report.Path(sys.argv[1]); "
        "report.write({p: report.render_page(report.read_text(p)).encode()})"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}  # an ASCII locale
    done = subprocess.run([sys.executable, "-c", code, str(page)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    text = page.read_bytes().decode("utf-8")
    assert text.startswith("mean ± std\n") and "| `Net` | " in text and "Â" not in text


def test_report_run_as_a_file_says_how_to_run_it():
    for tool in ("report", "benchmark", "train"):
        done = subprocess.run([sys.executable, f"lab/{tool}.py"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 1 and f"python -m lab.{tool}" in done.stderr and "Traceback" not in done.stderr


def test_report_prints_every_block(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["report"])
    assert report.main() == 0
    printed = capsys.readouterr().out
    assert all(f"<!-- {name} -->" in printed for name in report.BLOCKS)


def test_the_ratio_is_over_the_baseline_seeds_with_its_range(tmp_path, mnist, monkeypatch):
    from lab import benchmark

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own signal handling alone
    reached = {1: 100.0, 2: 300.0, 3: 200.0}  # seconds to 99.4%: the task statement's recipe takes minutes a seed

    def baseline(data_dir: str, max_epochs: int, seed: int) -> list[dict]:
        return [{"epoch": 1, "test_acc": 99.5, "train_seconds": reached[seed], "elapsed": reached[seed]}]

    monkeypatch.setattr(benchmark, "run_baseline", baseline)
    out = tmp_path / "speedrun.json"
    args = ["--speedrun", "--baseline-seeds", "1-3", "--seeds", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["benchmark", *args, "--data-dir", str(DATA_DIR)])
    benchmark.main()
    result = json.loads(out.read_text())
    s, seconds = result["summary"], result["summary"]["seconds_mean"]
    assert [b["seed"] for b in result["baseline"]] == [1, 2, 3] and s["baseline_time_to_99_4"] == 200.0
    assert (s["ratio"], s["ratio_min"], s["ratio_max"]) == tuple(round(t / seconds, 2) for t in (200, 100, 300))


def test_benchmark_refuses_unusable_flags_outputs_and_data_before_any_work(tmp_path, monkeypatch, capsys):
    from lab import benchmark

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own signal handling alone

    def refused(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["benchmark", *args])
        with pytest.raises(SystemExit) as stop:
            benchmark.main()
        assert stop.value.code == 2
        return capsys.readouterr().err.splitlines()[-1]

    (tmp_path / "speedrun.json").write_text("{}")
    assert "exists; pass --force" in refused("--speedrun", "--out", str(tmp_path / "speedrun.json"))
    assert (tmp_path / "speedrun.json").read_text() == "{}"
    assert "not writable" in refused("--speedrun", "--out", "/proc/no-results-here/b.json")
    data_file = ["--data-dir", str(tmp_path / "speedrun.json"), "--out", str(tmp_path / "o")]
    assert "is a file" in refused("--speedrun", *data_file)
    assert "seeds must be between" in refused("--speedrun", "--baseline-seeds", "18446744073709551616")
    assert "is reversed" in refused("--speedrun", "--baseline-seeds", "3-1")
    assert "one of the arguments --speedrun --profile is required" in refused("--out", str(tmp_path / "o"))
    for out, why in ((str(tmp_path), "is a folder"), ("", "is empty")):
        for force in ([], ["--force"]):
            line = refused("--speedrun", "--out", out, *force)
            assert why in line and "exists" not in line, line


def test_the_profile_splits_the_speedrun_into_its_parts(tmp_path):
    done = run(
        "lab.benchmark",
        "--profile",
        "2",
        "--data-dir",
        str(DATA_DIR),
        "--out",
        str(tmp_path / "profile.json"),
    )
    assert done.returncode == 0, done.stderr
    result = strict_json(tmp_path / "profile.json")
    parts = result["parts_seconds"]
    assert set(parts) == {"forward and the rest", "augment", "backward", "optimizer", "evaluation", "of which Muon"}
    assert all(v > 0 for v in parts.values()) and parts["of which Muon"] < parts["optimizer"]
    assert result["top_ops"] and 0 < result["training_macs_per_second"] and 0 < result["peak_macs_per_second"]


def test_no_torch_load_without_weights_only():
    for path in [*ROOT.glob("*.py"), *ROOT.glob("lab/*.py"), *ROOT.glob("tests/*.py"), ROOT / "S6_assignment.ipynb"]:
        for line in path.read_text().splitlines():
            if "torch.load(" in line and "def " not in line and '"torch.load("' not in line:
                assert "weights_only=True" in line, f"{path.name}: {line.strip()}"


def test_speedrun_counts_multiply_adds_of_each_layer():
    from lab import benchmark

    # conv1 1->8 on 26x26 = 8*9*676, conv2 8->16 on 24x24 = 16*72*576, ... as in model.py's table.
    expected = 8 * 9 * 676 + 16 * 72 * 576 + 20 * 144 * 100 + 24 * 180 * 64 + 24 * 216 * 36 * 2 + 10 * 24
    assert benchmark.forward_macs(Net(widths=(8, 16, 20, 24, 24))) == expected
    # FramedSpeedNet: the same layers on the central 24x24, so 22x22, 20x20, then 8x8, 6x6, 4x4, 4x4.
    framed = 8 * 9 * 484 + 16 * 72 * 400 + 20 * 144 * 64 + 24 * 180 * 36 + 24 * 216 * 16 * 2 + 10 * 24
    assert benchmark.forward_macs(MODELS["framed"](widths=(8, 16, 20, 24, 24))) == framed


def test_imports_run_one_way_and_no_script_is_imported():
    import ast

    files = [*ROOT.glob("*.py"), *ROOT.glob("lab/*.py")]
    names = {str(p.relative_to(ROOT).with_suffix("")).replace("/", "."): p for p in files}
    graph = {}
    for name, path in names.items():
        nodes = list(ast.walk(ast.parse(path.read_text())))
        found = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
        for n in (n for n in nodes if isinstance(n, ast.ImportFrom) and n.module):  # from lab import runlog
            found |= {n.module, *(f"{n.module}.{a.name}" for a in n.names)}
        graph[name] = found & set(names) - {name}
    assert graph["lab.report"] >= {"utils", "lab.runlog", "lab.networks"}, graph  # the parser sees `from lab import`
    assert not any("lab.train" in deps for deps in graph.values()), graph  # a script, not a library

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            todo += [d for d in graph[todo.pop()] if d not in seen and not seen.add(d)]
        return seen

    assert [name for name in graph if name in reachable(name)] == [], graph  # no circle


def test_two_runs_into_one_folder_at_once_one_refuses_and_the_other_is_whole(tmp_path, mnist):
    cmd = [sys.executable, "-m", "lab.train", "--data-dir", str(DATA_DIR), "--no-progress"]
    cmd += ["--epochs", "1", "--out", str(tmp_path)]
    runs = [
        subprocess.Popen([*cmd, "--lr", lr], stderr=subprocess.PIPE, text=True, cwd=ROOT) for lr in ("0.05", "0.04")
    ]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in runs)
    assert [code for code, _ in results] == [0, 2], results
    assert "in use by another" in results[1][1] or "already holds a run" in results[1][1]
    history = strict_json(tmp_path / "history.json")
    log = (tmp_path / "train.log").read_text()
    assert log.startswith(f"$ {history['command']}\n") and log.count("$ ") == 1  # one run's log, that run's files


def test_force_over_a_run_that_fails_leaves_no_files_of_the_earlier_run(tmp_path, finished_run, here):
    shutil.copytree(finished_run, tmp_path / "run")
    done = here("--epochs", "1", "--lr", "1e6", "--force", "--out", str(tmp_path / "run"))
    assert done.returncode == 3
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["train.log"]  # the failed run's own log


def test_a_signal_while_a_checkpoint_and_its_history_are_written_waits_for_both(small_data):
    utils.fit(Net(), small_data[0], None, utils.Recipe(epochs=1), progress=False)  # torch's threads are up
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    runlog.stop_once(KeyboardInterrupt("stopped"))  # train.py's handler
    written = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with runlog.signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                written.append("checkpoint and history")  # reached: the stop waits for the block
        assert written == ["checkpoint and history"]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# Nothing lost, round five: each class of the reliability review, with the test that guards it.


def test_no_script_passes_force_and_a_committed_row_is_refused_before_training():
    for script in ROOT.glob("lab/*.sh"):
        code = [line.split("#")[0] for line in script.read_text().splitlines()]
        assert not any("--force" in line for line in code), script.name
    committed = ROOT / "lab" / "results" / "ablation" / "base_ep5.json"
    before = committed.read_bytes()
    done = subprocess.run(["bash", "lab/ablation.sh", "base_ep5"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "already exists" in done.stderr and committed.read_bytes() == before


def test_the_gpu_script_checks_both_outputs_before_any_work(tmp_path):
    (tmp_path / "net_seed1").mkdir()
    done = gpu_script(out=tmp_path)
    assert done.returncode == 2 and "net_seed1 already exists" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net_seed1"]  # no speedrun ran


def test_a_summary_written_by_another_run_meanwhile_is_kept_and_this_one_printed(tmp_path, mnist, here, monkeypatch):
    from lab import train

    made = train.sweep_summary

    def another_writer_first(runs, command):  # the other sweep finishes while this one builds its summary
        (tmp_path / "net_seeds.json").write_text("the other sweep's summary")
        return made(runs, command)

    monkeypatch.setattr(train, "sweep_summary", another_writer_first)
    done = here("--seeds", "1-2", "--epochs", "1", "--out", str(tmp_path / "seed{seed}"))
    assert done.returncode == 1 and "written by another run meanwhile" in done.stderr
    assert (tmp_path / "net_seeds.json").read_text() == "the other sweep's summary"
    assert '"final_mean"' in done.stdout and (tmp_path / "seed2" / "history.json").exists()


def test_a_benchmark_file_written_meanwhile_is_kept_and_the_result_printed(tmp_path, capsys):
    from lab import benchmark

    (tmp_path / "speedrun.json").write_text("another run's")
    with pytest.raises(SystemExit, match="another run wrote it meanwhile"):
        benchmark.save(tmp_path / "speedrun.json", {"summary": {"final_mean": 99.5}}, force=False)
    assert (tmp_path / "speedrun.json").read_text() == "another run's"
    assert '"final_mean": 99.5' in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--out", "."], "is the repository itself"),
        (["--seeds", "1,1"], "names a seed twice"),
    ],
)
def test_inputs_that_mean_something_else_are_refused(flags, message, here):
    done = here("--epochs", "1", "--force", *flags)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_baseline_seeds_without_a_baseline_are_refused(monkeypatch, capsys, tmp_path):
    from lab import benchmark

    flags = ["--speedrun", "--skip-baseline", "--baseline-seeds", "1-3", "--out", str(tmp_path / "s.json")]
    monkeypatch.setattr(sys, "argv", ["benchmark", *flags])
    with pytest.raises(SystemExit):
        benchmark.main()
    assert "--baseline-seeds and --skip-baseline" in capsys.readouterr().err


def test_sigterm_to_the_release_check_is_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "lab.report", "--check"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().startswith("ok")  # into its checks
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip() == "stopped by Ctrl-C or SIGTERM; nothing half-written", stderr
