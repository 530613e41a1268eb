"""The three ways a student opens the notebook in Colab, each in an empty folder as Colab has it:
alone with a published REPO_URL (it clones), alone with the placeholder (one message, no traceback),
and uploaded beside model.py and utils.py only (no clone, nothing else of ours imported)."""

import shutil
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import DATA_DIR, ROOT
from mnist_data import MNIST_MD5

SETUP_CELLS = 1  # the set-up cell: clone if needed, install torchsummary, import
PROBE = (
    "import sys\nprint('FROM', utils.__file__, sys.modules['model'].__file__, os.getcwd(), 'mnist_data' in sys.modules)"
)


def notebook(cells: int | None = None) -> nbformat.NotebookNode:
    """The notebook's first `cells` code cells (all of them if None), and a probe of where the modules came from."""
    nb = nbformat.read(ROOT / "S6_assignment.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"][:cells] + [nbformat.v4.new_code_cell(PROBE)]
    return nb


def execute(nb: nbformat.NotebookNode, folder, allow_errors: bool = False) -> nbformat.NotebookNode:
    """Run it with nbclient in `folder`, in smoke mode, as a fresh kernel."""
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb


def probe(nb: nbformat.NotebookNode) -> list[str]:
    """utils' file, model's file, the working folder and whether mnist_data was imported, as the probe saw them."""
    return next(
        line for o in nb.cells[-1].outputs for line in o.get("text", "").splitlines() if "FROM" in line
    ).split()[1:]


@pytest.fixture(autouse=True)
def smoke(monkeypatch):
    monkeypatch.setenv("SMOKE_TEST", "1")
    monkeypatch.delenv("S6_REPO_URL", raising=False)


def test_alone_with_a_published_address_it_clones_and_imports_from_the_clone(tmp_path, monkeypatch):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    monkeypatch.setenv("S6_REPO_URL", ROOT.as_uri())  # as REPO_URL would say, for this repository's commits
    shutil.copy(ROOT / "S6_assignment.ipynb", tmp_path)
    clone = tmp_path / "s6-mnist"
    for attempt in ("first Run all", "Run all again after a kernel restart"):
        utils_file, model_file, cwd, _ = probe(execute(notebook(SETUP_CELLS), tmp_path))
        assert (utils_file, model_file, cwd) == (str(clone / "utils.py"), str(clone / "model.py"), str(clone)), attempt
    assert (clone / ".git").is_dir() and not (tmp_path / "model.py").exists()


def test_alone_with_the_placeholder_it_stops_with_one_message_naming_both_ways_on(tmp_path):
    nb = execute(notebook(SETUP_CELLS), tmp_path, allow_errors=True)
    error = next(o for o in nb.cells[0].outputs if o.output_type == "error")
    assert error.ename == "SystemExit"
    assert "Upload both" in error.evalue and "REPO_URL" in error.evalue
    assert not (tmp_path / "s6-mnist").exists()


@pytest.mark.parametrize("address", ["nowhere.git", "https://github.invalid/nobody/s6-mnist.git"])
def test_an_address_that_cannot_be_cloned_stops_with_one_message(tmp_path, monkeypatch, address):
    url = str(tmp_path / address) if "://" not in address else address  # a missing repository; no network
    monkeypatch.setenv("S6_REPO_URL", url)
    nb = execute(notebook(SETUP_CELLS), tmp_path, allow_errors=True)
    errors = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["SystemExit"] and "CalledProcessError" not in str(nb.cells[0].outputs)
    assert f"could not clone {url}" in errors[0].evalue and "upload model.py and utils.py" in errors[0].evalue


def test_uploaded_with_model_and_utils_it_runs_every_cell_without_our_other_modules(tmp_path):
    for name in ("model.py", "utils.py"):
        shutil.copy(ROOT / name, tmp_path)
    raw = tmp_path / "data" / "MNIST" / "raw"  # where torchvision's download would put MNIST (no network here)
    raw.mkdir(parents=True)
    for name in MNIST_MD5:
        shutil.copy(DATA_DIR / "MNIST" / "raw" / name, raw)
    nb = execute(notebook(), tmp_path)
    utils_file, model_file, cwd, offline_route = probe(nb)
    assert (utils_file, model_file, cwd) == (str(tmp_path / "utils.py"), str(tmp_path / "model.py"), str(tmp_path))
    assert offline_route == "False"
    assert not any(o.output_type == "error" for c in nb.cells for o in c.outputs)
    assert {p.name for p in tmp_path.iterdir()} - {"__pycache__"} == {"data", "model.py", "utils.py"}  # nothing else


def test_uploaded_without_a_network_the_data_cell_stops_with_one_message(tmp_path, monkeypatch):
    for name in ("model.py", "utils.py"):
        shutil.copy(ROOT / name, tmp_path)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # no network, wherever this runs
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    nb = execute(notebook(SETUP_CELLS + 1), tmp_path, allow_errors=True)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["SystemExit"], errors
    assert "MNIST could not be downloaded" in errors[0].evalue and "MNIST/raw" in errors[0].evalue


@pytest.mark.parametrize("clone", ["an empty folder", "another repository"])
def test_a_folder_that_is_not_this_projects_clone_stops_with_one_message(tmp_path, monkeypatch, clone):
    if clone == "an empty folder":
        (tmp_path / "s6-mnist").mkdir()
    else:  # REPO_URL at a repository that is not this project
        other = tmp_path / "other"
        other.mkdir()
        (other / "README.md").write_text("another project")
        for command in (
            ["init", "-q"],
            ["add", "."],
            ["-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "x"],
        ):
            subprocess.run(["git", *command], cwd=other, check=True, capture_output=True)
        monkeypatch.setenv("S6_REPO_URL", other.as_uri())
    for attempt in ("first Run all", "Run all again"):
        nb = execute(notebook(SETUP_CELLS), tmp_path, allow_errors=True)
        errors = [o for o in nb.cells[0].outputs if o.output_type == "error"]
        assert [e.ename for e in errors] == ["SystemExit"], attempt
        assert "not a clone of this project" in errors[0].evalue and "rm -rf s6-mnist" in errors[0].evalue
