"""`Net` meets the assignment, works in the course's own training code, and the deliverable stands alone."""

import ast

import nbformat
import torch
import torch.nn.functional as F
from torch import nn

import utils
from conftest import ROOT
from model import Net


def test_net_meets_the_budget_with_the_assignments_layers():
    model = Net()
    assert utils.count_parameters(model) < 20_000
    kinds = {type(m) for m in model.modules()}
    assert {nn.BatchNorm2d, nn.Dropout, nn.AdaptiveAvgPool2d} <= kinds and nn.Linear not in kinds


def test_net_returns_log_probabilities():
    out = Net().eval()(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10) and torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-5)


def course_train(loss_fn, small_data, steps: int = 200) -> float:
    """The course's loop on Net (SGD lr 0.01, momentum 0.9, batch 64, no augmentation): test accuracy in %."""
    (images, labels), (test_x, test_y) = small_data
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    model.train()
    for step in range(steps):
        batch = order[(step * 64) % len(order) :][:64]
        loss = loss_fn(model(utils.normalize(images[batch])), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return 100 * utils.test(model, test_x, test_y)[1] / len(test_y)


def test_the_courses_nll_loss_trains_net_as_cross_entropy_does(small_data):
    nll, cross_entropy = course_train(F.nll_loss, small_data), course_train(F.cross_entropy, small_data)
    assert nll > 90 and abs(nll - cross_entropy) <= 0.3, (nll, cross_entropy)


def notebook_code() -> str:
    """The notebook's code cells, as one Python source."""
    nb = nbformat.read(ROOT / "S6_assignment.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_the_deliverable_imports_nothing_from_the_bench():
    for name, source in [("model.py", (ROOT / "model.py").read_text()), ("utils.py", (ROOT / "utils.py").read_text()),
                         ("the notebook", notebook_code())]:  # fmt: skip
        nodes = list(ast.walk(ast.parse(source)))
        modules = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in modules if m == "lab" or m.startswith("lab.")}, f"{name} imports the bench: {modules}"


def test_every_public_name_of_utils_is_reached_from_the_notebook():
    tree = ast.parse((ROOT / "utils.py").read_text())
    defined = {}  # each top-level name of utils and the names its definition uses
    for node in tree.body:
        targets = (
            [node.name] if hasattr(node, "name") else [t.id for t in getattr(node, "targets", []) if hasattr(t, "id")]
        )
        for target in targets:
            defined[target] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    notebook = ast.parse(notebook_code())
    todo = [
        n.attr for n in ast.walk(notebook) if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "utils"
    ]
    reached = set()
    while todo:
        name = todo.pop()
        if name in defined and name not in reached:
            reached.add(name)
            todo += defined[name]
    unreached = sorted(n for n in defined if not n.startswith("_") and n not in reached)
    assert not unreached, f"public names of utils.py the notebook never reaches: {unreached}"
    assert {"fit", "train", "prepare_digit"} <= reached
