"""The Colab path: the notebook alone in an empty folder clones the repository and imports from the clone."""

import shutil
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

SETUP_CELLS = 2  # the clone-and-install cell and the imports cell
PROBE = "import model\nprint('FROM', utils.__file__, model.__file__, os.getcwd())"


@pytest.fixture(scope="module")
def repo_url(tmp_path_factory) -> str:
    """A file:// address of this repository's committed state."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    return (ROOT).as_uri()


def run_setup(folder, monkeypatch, repo_url: str) -> str:
    """Execute the setup and import cells (plus a probe) of a copy of the notebook; return the probe's line."""
    nb = nbformat.read(ROOT / "S6_assignment.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"][:SETUP_CELLS]
    nb.cells = code + [nbformat.v4.new_code_cell(PROBE)]
    monkeypatch.setenv("S6_REPO_URL", repo_url)
    monkeypatch.setenv("SMOKE_TEST", "1")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return next(line for o in nb.cells[-1].outputs for line in o.get("text", "").splitlines() if "FROM" in line)


def test_notebook_alone_clones_the_repository_and_imports_from_it(tmp_path, monkeypatch, repo_url):
    shutil.copy(ROOT / "S6_assignment.ipynb", tmp_path)
    clone = tmp_path / "s6-mnist"
    for attempt in ("first Run all", "Run all again after a kernel restart"):
        line = run_setup(tmp_path, monkeypatch, repo_url)
        _, utils_file, model_file, cwd = line.split()
        assert utils_file == str(clone / "utils.py") and model_file == str(clone / "model.py"), attempt
        assert cwd == str(clone), attempt
    assert (clone / ".git").is_dir() and not (tmp_path / "model.py").exists()
