"""The release check (`python -m lab.report --check`, run by CI): pages, results/ and the stored notebook agree.

Each check fails with one line naming the file that disagrees. A user's own Run all changes the stored notebook;
the notebook checks then say so (`git checkout S6_assignment.ipynb` restores it, --run-notebook publishes it).
"""

import re
from dataclasses import asdict

import torch

import train
import utils
from lab.report import NOTEBOOK, PAGES, READ, RESULTS, ReportError, load, notebook, notebook_images, outputs, read_text
from model import MODELS

NUMBER = re.compile(r"(?<![\w.])\d[\d,]*\.?\d*(?:%| s\b|x\b)")  # a measured number in prose: 99.4%, 18.7 s, 17.8x


def check_pages_images_and_results() -> None:
    """Every table of the pages and the notebook's Markdown is rendered from results/, images/ is the notebook's
    figures, and results/ holds nothing that no table reads but the headline's checkpoints."""
    for path, content in outputs().items():
        assert path.exists() and path.read_bytes() == content, f"{path} is stale: run `python -m lab.report --write`"
    kept = {str(p.relative_to(RESULTS)) for p in RESULTS.rglob("*") if p.is_file()} - {"README.md"}
    unread = sorted(kept - READ - {f"net_seed{s}/model.pt" for s in range(1, 6)})
    assert not unread, f"results/ holds files nothing reads: {unread[:5]}{' ...' if len(unread) > 5 else ''}"


def check_prose_quotes_only_tables() -> None:
    """A measured number in a page's prose is one that a generated table of the same page shows."""
    texts = {page: read_text(page) for page in PAGES} | {NOTEBOOK: "\n".join(c.source for c in notebook().cells
                                                                             if c.cell_type == "markdown")}
    for page, text in texts.items():
        tables = "".join(b for _, b in re.findall(r"<!-- ([\w-]+) -->\n(.*?)<!-- /\1 -->", text, re.S))
        # not prose: the tables, code, links, goals (a threshold after >= or <=) and the assignment's 99.4%
        prose = re.sub(r"<!-- ([\w-]+) -->\n.*?<!-- /\1 -->|`[^`]*`|\]\([^)]*\)|(≥|≤|>=|<=) ?[\d.,]+|99\.4%", "",
                       text, flags=re.S)
        loose = [n for n in NUMBER.findall(prose) if n.rstrip("%sx ") not in tables]
        assert not loose, f"{page}: {loose} in the prose are in no table of the page: quote a table, or say it in words"


def check_notebook_run() -> None:
    """The stored notebook is results/notebook.json's run: every cell in order, clean, 19 epochs, the assignment met."""
    nb, run = notebook(), load("notebook.json")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{NOTEBOOK}: not one Run all in order"
    printed = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    bad = [o for c in code for o in c.outputs if o.output_type == "error" or o.get("name") == "stderr"
           or "\r" in o.get("text", "")]  # fmt: skip
    assert not bad, f"{NOTEBOOK}: an error, stderr or progress-bar updates are stored"
    lines = [utils.format_epoch(r) for r in run["epochs"]]
    assert re.findall(r"^epoch +\d+ \|.*$", printed, re.M) == lines, f"{NOTEBOOK}: not results/notebook.json's run"
    assert len(lines) == utils.RECIPES["net"].epochs and utils.assignment_met(
        utils.assignment_checklist(MODELS["net"](), run["epochs"])), "results/notebook.json: a requirement is missed"
    notebook_images(nb)


def check_summaries_recompute() -> None:
    """Every sweep's summary recomputes from its runs; the ladder ran today's networks, recipes and epochs."""
    for path in sorted(RESULTS.rglob("*.json")):
        data, name = load(str(path.relative_to(RESULTS))), path.relative_to(RESULTS)
        runs = data.get("runs") or []
        if runs and "eval_set" in runs[0]:  # train.py's runs
            assert data["summary"] == train.summarize_runs(runs), f"{name}: its summary is not its runs'"
        elif runs:  # a speedrun
            accs = [r["test_acc"] for r in runs]
            s = data["summary"]
            assert (s["final_mean"], s["final_min"]) == (round(sum(accs) / len(accs), 3), min(accs)), f"{name}: summary"
            assert s["seconds_mean"] == round(sum(r["seconds"] for r in runs) / len(runs), 3), f"{name}: seconds"
    for key in ("net", "lite", "micro", "nano"):
        runs, recipe = load(f"{key}_seeds.json")["runs"], asdict(utils.RECIPES[key])
        for r in runs:
            ran = {k: v for k, v in r["recipe"].items() if k in recipe}
            assert ran == recipe and r["params"] == utils.count_parameters(MODELS[key]()), f"{key}: not today's"
            assert r["train_images"] == 60_000 and r["eval_set"].startswith("test"), f"{key}_seeds.json: not test"


def check_headline_reevaluates() -> None:
    """Net's five checkpoints load on a CPU and score, on the test set, what net_seeds.json recorded."""
    test = utils.dataset_tensors(utils.get_mnist(RESULTS.parent / "data")[1])
    for run in load("net_seeds.json")["runs"]:
        path, model = RESULTS / f"net_seed{run['seed']}" / "model.pt", MODELS["net"]()
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:  # truncated, not a checkpoint, another network
            raise AssertionError(f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0]})") from None
        assert utils.test(model, *test)[1] / 100 == run["epochs"][-1]["test_acc"], f"{path}: scores otherwise"


def run_checks() -> int:
    """Run every check; print one line each; 1 if any failed."""
    failed = 0
    for check in [f for name, f in globals().items() if name.startswith("check_")]:
        try:
            check()
            print(f"ok    {check.__doc__}")
        except (AssertionError, ReportError, OSError, KeyError, ValueError) as err:
            failed += 1
            print(f"FAIL  {check.__name__}: {err}")
    print(f"release check: {'failed' if failed else 'passed'}")
    return 1 if failed else 0
