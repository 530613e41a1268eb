"""The release check (lab/report.py) fails on what it guards: each test breaks a copy of the committed tree.

The copy is git's HEAD, not the working copy: a student's own Run all rewrites the notebook and its figures
there, and must leave these tests green (the working copy itself is `python -m lab.report --check`'s to judge).
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import nbformat
import pytest

import utils
from conftest import DATA_DIR, ROOT
from lab import report

TREE = ["README.md", "S6_assignment.ipynb", "images", "lab/README.md", "lab/docs", "lab/results"]  # the check reads


@pytest.fixture
def results(tmp_path, monkeypatch):
    """lab/results/ of a copy of the committed tree, whose pages, notebook and figures the checks read instead."""
    archive = subprocess.run(["git", "archive", "HEAD", *TREE], cwd=ROOT, capture_output=True)
    if archive.returncode == 0:
        tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tmp_path, filter="data")
    else:  # not a git checkout (a downloaded archive): the files as they are
        for name in TREE:
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    monkeypatch.setattr(report, "RESULTS", tmp_path / "lab" / "results")
    monkeypatch.setattr(report, "IMAGES", tmp_path / "images")
    monkeypatch.setattr(report, "NOTEBOOK", tmp_path / "S6_assignment.ipynb")
    lab = tmp_path / "lab"
    pages = [tmp_path / "README.md", lab / "README.md", lab / "results" / "README.md", *sorted(lab.glob("docs/*.md"))]
    monkeypatch.setattr(report, "PAGES", pages)
    return lab / "results"


def edit(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_the_committed_tree_passes(results):
    report.check_summaries_recompute()
    report.check_pages_images_and_results()


def test_an_accuracy_edited_by_hand_fails_the_summary_and_the_page(results):
    edit(results / "ablation" / "micro.json", lambda d: d["runs"][0]["epochs"][-1].update(test_acc=99.99))
    with pytest.raises(AssertionError, match="ablation/micro.json: its summary is not its runs'"):
        report.check_summaries_recompute()
    with pytest.raises(AssertionError, match="speed.md is stale"):
        report.check_pages_images_and_results()


def test_an_edited_final_loss_of_the_headline_fails_its_checkpoints_re_evaluation(results):
    edit(results / "net_seeds.json", lambda d: d["runs"][0]["epochs"][-1].update(test_loss=0.01))
    with pytest.raises(AssertionError, match="net_seed1/model.pt: scores otherwise"):
        report.check_headline_reevaluates()


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda e: e[3].update(epoch=7), "not numbered"),
        (lambda e: e[3].update(train_loss=-0.5), "train_loss"),
        (lambda e: e[3].update(test_correct=9000), "not its test_correct's"),
    ],
)
def test_an_epoch_record_that_cannot_be_fails(results, change, why):
    edit(results / "ablation" / "arch_net.json", lambda d: change(d["runs"][0]["epochs"]))
    with pytest.raises(AssertionError, match=why):
        report.check_summaries_recompute()


def test_an_edited_speedrun_summary_fails(results):
    edit(results / "speedrun.json", lambda d: d["summary"].update(final_mean=99.9))
    with pytest.raises(AssertionError, match="speedrun.json"):
        report.check_summaries_recompute()


def test_a_file_nothing_reads_fails(results):
    (results / "ablation" / "stray.log").write_text("a log")
    with pytest.raises(AssertionError, match="stray.log"):
        report.check_pages_images_and_results()


@pytest.mark.parametrize("size", [1000, 0])
def test_a_truncated_or_empty_checkpoint_is_named(results, size):
    path = results / "net_seed1" / "model.pt"
    path.write_bytes(path.read_bytes()[:size])
    with pytest.raises(AssertionError, match=r"net_seed1/model.pt: unreadable"):
        report.check_headline_reevaluates()


def test_prose_quoting_a_number_no_table_shows_fails(monkeypatch, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- fast -->\n| a | 99.51 |\n<!-- /fast -->\nIt ended at 99.51%, goal ≥ 99.55%, in 12.5 s.\n")
    monkeypatch.setattr(report, "PAGES", [page])
    with pytest.raises(AssertionError, match=r"\['12.5 s'\]"):
        report.check_prose_quotes_only_tables()


def test_a_students_own_run_all_leaves_these_tests_green(tmp_path):
    """A clone whose notebook was re-run on another machine (other epoch lines, other figures), uncommitted."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    nb = nbformat.read(clone / "S6_assignment.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = next(o for o in outputs if "epoch 19 |" in o.get("text", ""))
    text["text"] = text["text"].replace("epoch 19 |", "epoch 19 | another CPU's numbers |")
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    figures[0]["data"]["image/png"], figures[1]["data"]["image/png"] = (
        figures[1]["data"]["image/png"],
        figures[0]["data"]["image/png"],
    )
    nbformat.write(nb, clone / "S6_assignment.ipynb")
    env = {**os.environ, "MNIST_DATA_DIR": str(DATA_DIR)}
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status.split() == ["M", "S6_assignment.ipynb"]  # only the notebook changed, as after a Run all
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "lab/tests/test_release.py", "-k", "committed_tree or prose"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_a_file_in_images_that_the_notebook_does_not_show_fails(results):
    (results.parents[1] / "images" / "stray.png").write_bytes(b"not a figure of the notebook")
    with pytest.raises(AssertionError, match="stray.png"):
        report.check_pages_images_and_results()


def test_the_check_without_mnist_is_one_line_per_check(results, monkeypatch, capsys):
    def offline(root):
        raise utils.MNISTDataError(f"Could not get MNIST into {root}")

    monkeypatch.setattr(report.utils, "get_mnist", offline)
    report.test_set.cache_clear()  # read afresh, through the failing get_mnist
    assert report.run_checks() == 1
    printed = capsys.readouterr().out
    assert "FAIL  check_headline_reevaluates: Could not get MNIST" in printed and "Traceback" not in printed


@pytest.mark.parametrize("stop", [signal.SIGTERM])  # Ctrl-C takes the same path (runlog.stop_once)
def test_a_stopped_notebook_run_is_one_line_and_leaves_no_kernel_and_no_file(tmp_path, stop):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    env = {**os.environ, "MNIST_DATA_DIR": str(DATA_DIR)}
    cmd = [sys.executable, "-m", "lab.report", "--run-notebook"]
    proc = subprocess.Popen(cmd, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def children(pid: int) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in found.split()]

    deadline, kernels = time.monotonic() + 120, []
    while not kernels and time.monotonic() < deadline:  # the kernel runs the notebook's cells now
        kernels = [k for child in children(proc.pid) for k in children(child)]
        time.sleep(0.2)
    assert kernels, "no kernel started"
    time.sleep(3)
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip() == "stopped by Ctrl-C or SIGTERM; nothing half-written", stderr
    time.sleep(1)
    assert not any(Path(f"/proc/{k}").exists() for k in kernels), "the kernel outlived the run"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status == "", status


def test_a_malformed_history_is_a_fail_line_naming_its_file_and_every_check_runs(results, capsys):
    edit(results / "lite_seeds.json", lambda d: d["runs"][0].update(epochs=[]))
    edit(results / "micro_seeds.json", lambda d: d["runs"][0]["epochs"][0].update(test_acc="99.5"))
    assert report.run_checks() == 1
    printed = capsys.readouterr().out
    assert "lite_seeds.json" in printed and "micro_seeds.json" in printed and "Traceback" not in printed
    checks = [name for name in vars(report) if name.startswith("check_")]
    assert sum(line.startswith(("ok ", "FAIL ")) for line in printed.splitlines()) == len(checks)


def test_every_broken_checkpoint_is_named(results):
    for seed in (2, 4):
        (results / f"net_seed{seed}" / "model.pt").write_bytes(b"")
    with pytest.raises(AssertionError, match=r"net_seed2/model.pt: unreadable.*net_seed4/model.pt: unreadable"):
        report.check_headline_reevaluates()


def test_a_temporary_file_left_by_a_killed_write_is_named(results):
    (results / ".net_seeds.json.abc123.tmp").write_text("half")
    with pytest.raises(AssertionError, match=r"\.net_seeds\.json\.abc123\.tmp"):
        report.check_no_temporary_files()


def test_every_package_the_deliverable_imports_is_declared_and_pinned():
    import ast

    imported = set()
    for path in (ROOT / "model.py", ROOT / "utils.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            imported |= {n.split(".")[0] for n in names}
    packages = {{"PIL": "pillow"}.get(m, m).lower() for m in imported - set(sys.stdlib_module_names) - {"model"}}
    declared = {line.split(">=")[0].split("==")[0].strip().lower() for line in (ROOT / "requirements.txt").open()}
    pinned = {line.split("==")[0].strip().lower() for line in (ROOT / "constraints.txt").open()}
    assert packages and packages <= declared and packages <= pinned, packages - (declared & pinned)
