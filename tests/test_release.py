"""The release check (lab/report.py) fails on what it guards: each test breaks a copy of results/."""

import json
import shutil

import pytest

from conftest import DATA_DIR, ROOT
from lab import report


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A copy of results/ that the report and the checks read instead."""
    copy = tmp_path / "results"
    shutil.copytree(ROOT / "results", copy)
    monkeypatch.setattr(report, "RESULTS", copy)
    return copy


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


def test_an_edited_speedrun_summary_fails(results):
    edit(results / "speedrun.json", lambda d: d["summary"].update(final_mean=99.9))
    with pytest.raises(AssertionError, match="speedrun.json"):
        report.check_summaries_recompute()


def test_a_file_nothing_reads_fails(results):
    (results / "ablation" / "stray.log").write_text("a log")
    with pytest.raises(AssertionError, match="stray.log"):
        report.check_pages_images_and_results()


def test_a_truncated_checkpoint_is_named(results):
    (results.parent / "data").symlink_to(DATA_DIR)  # the check reads MNIST beside results/
    path = results / "net_seed1" / "model.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(AssertionError, match=r"net_seed1/model.pt: unreadable"):
        report.check_headline_reevaluates()


def test_prose_quoting_a_number_no_table_shows_fails(monkeypatch, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- fast -->\n| a | 99.51 |\n<!-- /fast -->\nIt ended at 99.51%, goal ≥ 99.55%, in 12.5 s.\n")
    monkeypatch.setattr(report, "PAGES", [page])
    with pytest.raises(AssertionError, match=r"\['12.5 s'\]"):
        report.check_prose_quotes_only_tables()
