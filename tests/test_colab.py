"""The ways a student opens the notebook in Colab, each in an empty folder as Colab has it: alone with REPO_URL set
to a copy (it clones), alone with the placeholder or an address that cannot be cloned (one message, no traceback),
and uploaded beside model.py and utils.py only (no clone, nothing of the bench imported)."""

import shutil
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import DATA_DIR, ROOT
from utils import MNIST_MD5

PROBE = "import os\nprint('FROM', utils.__file__, sys.modules['model'].__file__, os.getcwd(), 'lab' in sys.modules)"


def notebook(cells: int | None = None, url: str | None = None) -> nbformat.NotebookNode:
    """The notebook's first `cells` code cells (all if None), its REPO_URL set to `url`, and a probe of where the
    modules came from."""
    nb = nbformat.read(ROOT / "S6_assignment.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"][:cells] + [nbformat.v4.new_code_cell(PROBE)]
    if url:
        first, rest = nb.cells[0].source.split("\n", 1)
        assert first.startswith("REPO_URL = ")
        nb.cells[0].source = f"REPO_URL = {url!r}\n{rest}"
    return nb


def execute(nb: nbformat.NotebookNode, folder, allow_errors: bool = False) -> nbformat.NotebookNode:
    """Run it with nbclient in `folder`, in smoke mode (this process's SMOKE_TEST), as a fresh kernel."""
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb


def probe(nb: nbformat.NotebookNode) -> list[str]:
    """utils' file, model's file, the working folder and whether lab was imported, as the probe saw them."""
    return next(
        line for o in nb.cells[-1].outputs for line in o.get("text", "").splitlines() if "FROM" in line
    ).split()[1:]


def the_error(nb: nbformat.NotebookNode):
    """The one error the notebook's cells stopped on (there must be exactly one; the probe's is not counted)."""
    errors = [o for c in nb.cells[:-1] for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename in ("SystemExit", "MNISTDataError"), errors  # a message, no traceback
    return errors[0]


def test_alone_with_a_published_address_it_clones_and_imports_from_the_clone(tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    shutil.copy(ROOT / "S6_assignment.ipynb", tmp_path)
    clone = tmp_path / "s6-mnist"
    for attempt in ("first Run all", "Run all again after a kernel restart"):
        utils_file, model_file, cwd, lab = probe(execute(notebook(1, url=ROOT.as_uri()), tmp_path))
        assert (utils_file, model_file) == (str(clone / "utils.py"), str(clone / "model.py")), attempt
        assert cwd == str(tmp_path) and lab == "False", attempt  # uploads beside the notebook stay in reach
    assert (clone / ".git").is_dir() and not (tmp_path / "model.py").exists()


@pytest.mark.parametrize("url", [None, "nowhere.git", "https://github.invalid/nobody/s6-mnist.git"])
def test_an_address_that_cannot_be_cloned_stops_with_one_message_naming_both_ways_on(tmp_path, url):
    url = str(tmp_path / url) if url and "://" not in url else url  # None: the placeholder as shipped
    error = the_error(execute(notebook(1, url=url), tmp_path, allow_errors=True))
    assert "cannot be cloned" in error.evalue and "upload both" in error.evalue and "REPO_URL" in error.evalue
    assert not (tmp_path / "s6-mnist").exists()


def test_a_folder_that_is_not_this_projects_clone_is_named(tmp_path):
    (tmp_path / "s6-mnist").mkdir()
    (tmp_path / "s6-mnist" / "notes.txt").write_text("something else")
    error = the_error(execute(notebook(1, url=ROOT.as_uri()), tmp_path, allow_errors=True))
    assert "'s6-mnist' already exists" in error.evalue


def test_uploaded_with_model_and_utils_it_runs_every_cell_without_the_bench(tmp_path):
    """Also `pytest`'s smoke run of the notebook: every cell, and the outputs nbval's regression check compares."""
    for name in ("model.py", "utils.py"):
        shutil.copy(ROOT / name, tmp_path)
    raw = tmp_path / "data" / "MNIST" / "raw"  # where torchvision's download would put MNIST (no network here)
    raw.mkdir(parents=True)
    for name in MNIST_MD5:
        shutil.copy(DATA_DIR / "MNIST" / "raw" / name, raw)
    nb = execute(notebook(), tmp_path)
    stored = [c for c in nbformat.read(ROOT / "S6_assignment.ipynb", as_version=4).cells if c.cell_type == "code"]
    for ran, kept in zip(nb.cells, stored):  # the cells nbval's regression check compares: the same output
        if "NBVAL_CHECK_OUTPUT" in kept.source:
            assert [o.get("text") for o in ran.outputs] == [o.get("text") for o in kept.outputs], kept.source
    utils_file, model_file, cwd, lab = probe(nb)
    assert (utils_file, model_file, cwd) == (str(tmp_path / "utils.py"), str(tmp_path / "model.py"), str(tmp_path))
    assert lab == "False"
    assert not any(o.output_type == "error" for c in nb.cells for o in c.outputs)
    assert {p.name for p in tmp_path.iterdir()} - {"__pycache__"} == {"data", "model.py", "utils.py"}  # nothing else


def test_uploaded_without_a_network_the_data_cell_stops_with_one_message(tmp_path, monkeypatch):
    for name in ("model.py", "utils.py"):
        shutil.copy(ROOT / name, tmp_path)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # no network, wherever this runs
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    error = the_error(execute(notebook(2), tmp_path, allow_errors=True))
    assert "MNIST could not be fetched" in error.evalue and "MNIST/raw" in error.evalue
