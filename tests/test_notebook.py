"""The stored notebook is the real, clean, fully executed 19-epoch run, and the README quotes it."""

import json
import re

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "S6_assignment.ipynb"
EPOCH_LINE = re.compile(r"^epoch\s+(\d+) \|.* test loss [\d.]+ acc\s+([\d.]+)%", re.M)


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def epoch_lines(notebook):
    """(epoch, test accuracy) for every epoch line in the stored outputs."""
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    return [(int(e), float(a)) for e, a in EPOCH_LINE.findall(text)]


def test_stored_run_has_19_epochs_and_meets_the_target(epoch_lines):
    assert [e for e, _ in epoch_lines] == list(range(1, 20))
    assert epoch_lines[-1][1] >= 99.4


def test_every_code_cell_executed_in_order_and_clean(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert "widgets" not in notebook.metadata
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"stderr output: {out.text[:200]}"
            assert "\r" not in out.get("text", ""), "progress-bar updates stored in the notebook"


def test_notebook_history_json_matches_the_outputs(epoch_lines):
    history = json.loads((ROOT / "results" / "notebook_history.json").read_text())
    assert [(e["epoch"], round(e["test_acc"], 2)) for e in history["epochs"]] == epoch_lines


def test_readme_quotes_the_notebook(epoch_lines):
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(r"\| test accuracy >= 99.4% \| final ([\d.]+)%", readme)
    assert quoted, "README lacks the checklist's test accuracy row"
    assert float(quoted.group(1)) == epoch_lines[-1][1]
