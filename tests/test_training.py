"""The training code itself: schedule, loss and accuracy accounting, NaN stop, seeds, checklists, tables."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import utils
from model import Net, receptive_field_table


def short_run(small_data, seed: int = 1, epochs: int = 1, **recipe) -> list[dict]:
    """Train Net on the first 2,000 training images; evaluate on the 10k test set."""
    train, test = small_data
    recipe = utils.Recipe(epochs=epochs, batch_size=32) if not recipe else utils.Recipe(epochs=epochs, **recipe)
    utils.seed_everything(seed)
    return utils.fit(Net(), train, test, recipe, seed=seed, progress=False)


def lrs(recipe: utils.Recipe, steps: int) -> list[float]:
    """The learning rate of every step of make_optimizer's schedule, and the one after the last."""
    optimizer, scheduler = utils.make_optimizer(nn.Linear(1, 1).parameters(), recipe, steps)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_one_short_epoch_learns_far_above_chance(small_data):
    history = short_run(small_data)
    assert history[0]["test_acc"] > 60  # chance is 10%
    fields = {"epoch", "train_loss", "train_acc", "test_loss", "test_correct", "test_total", "test_acc", "lr"}
    assert set(history[0]) == fields | {"seconds"}
    assert history[0]["test_acc"] == round(100 * history[0]["test_correct"] / 10_000, 3)


def test_schedule_pins_first_peak_and_last_step():
    recipe = utils.Recipe(lr=0.05, warmup=0.2)
    values = lrs(recipe, 1005)  # the peak falls on step 0.2 * 1005 - 1 = 200
    assert values[0] == pytest.approx(0.005)  # peak / 10
    assert max(values) == pytest.approx(0.05) and values.index(max(values)) == 200
    assert values[-1] == pytest.approx(0.05e-3)  # peak / 1000 at the last step
    assert all(a < b for a, b in zip(values[:200], values[1:201]))  # rises, then
    assert all(a > b for a, b in zip(values[200:], values[201:]))  # falls


def test_schedule_is_torchs_one_cycle_lr():
    recipe = utils.Recipe(lr=0.05, warmup=0.2)
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.05)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=0.05,
        total_steps=1001,
        pct_start=0.2,
        anneal_strategy="linear",
        cycle_momentum=False,
        div_factor=10,
        final_div_factor=100,
    )
    theirs = []
    for _ in range(1000):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        one_cycle.step()
    assert lrs(recipe, 1001)[:1000] == pytest.approx(theirs, abs=1e-12)


def test_tiny_runs_still_anneal():
    # One batch, one epoch: the only step runs at the peak and the LR ends at its minimum, not stuck.
    values = lrs(utils.Recipe(lr=0.05), 2)
    assert values == pytest.approx([0.05, 0.05e-3])


def test_train_epoch_loss_and_accuracy_are_the_direct_computation(small_data):
    (images, labels), _ = small_data
    images, labels = images[:100], labels[:100]  # batches of 64 and a short one of 36
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # no BN or dropout: batching changes nothing
    torch.manual_seed(0)
    nn.init.normal_(model[1].weight, std=0.05)
    still = utils.Recipe(batch_size=64, lr=1e-12, weight_decay=0.0, rotate=0, shift=0, scale=0)
    with torch.no_grad():
        logits = model(utils.normalize(images))
        expected_loss = F.cross_entropy(logits, labels).item()
        expected_acc = 100 * (logits.argmax(1) == labels).float().mean().item()
    optimizer, scheduler = utils.make_optimizer(model.parameters(), still, 3)
    loss, acc = utils.train(
        model, images, labels, optimizer, scheduler, still, torch.Generator().manual_seed(0), progress=False
    )
    assert loss == pytest.approx(expected_loss, abs=1e-5)
    assert acc == pytest.approx(expected_acc)


def test_non_finite_loss_stops_with_epoch_and_step(small_data):
    (images, labels), _ = small_data
    recipe = utils.Recipe(epochs=1, batch_size=32, lr=1e6)
    model = Net()
    optimizer, scheduler = utils.make_optimizer(model.parameters(), recipe, 100)
    with pytest.raises(utils.NonFiniteLossError, match=r"epoch 3, step \d+-\d+ of 63"):
        utils.train(
            model,
            images,
            labels,
            optimizer,
            scheduler,
            recipe,
            torch.Generator().manual_seed(0),
            epoch=3,
            progress=False,
        )


def test_same_seed_same_history_on_cpu(small_data):
    first, second = short_run(small_data, seed=3), short_run(small_data, seed=3)

    def timeless(history: list[dict]) -> list[dict]:  # the seconds never repeat
        return [{k: v for k, v in e.items() if k != "seconds"} for e in history]

    assert timeless(first) == timeless(second)
    assert timeless(short_run(small_data, seed=4)) != timeless(first)


@pytest.mark.parametrize(
    "field, value",
    [("lr", 0.0), ("lr", float("nan")), ("epochs", 0), ("epochs", 2.5), ("weight_decay", 1e30), ("warmup", 1.0),
     ("rotate", -1.0), ("batch_size", float("inf"))],
)  # fmt: skip
def test_a_recipe_out_of_range_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        utils.Recipe(**{field: value})  # the notebook's recipe checks itself


def test_a_recipe_of_the_wrong_type_is_refused():
    for field, value in (("lr", "0.05"), ("epochs", True), ("rotate", None)):
        with pytest.raises(ValueError, match=f"^{field} must be"):
            utils.Recipe(**{field: value})


def test_confusion_matrix_counts_true_by_predicted():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predicted = torch.tensor([0, 1, 1, 2, 0, 2])
    matrix = utils.confusion_matrix(predicted, labels, classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


GOOD = [{"epoch": e, "test_acc": 99.5} for e in range(1, 20)]


def met(model: nn.Module, history: list[dict]) -> dict[str, bool]:
    return {row["requirement"].split()[0]: row["met"] for row in utils.assignment_checklist(model, history)}


def tiny(bn: bool = True, dropout: bool = True, gap: bool = True) -> nn.Module:
    """A small conv net (4 channels at 9x9) with or without each required layer."""
    layers = [nn.Conv2d(1, 4, 3, stride=3)] + [nn.BatchNorm2d(4)] * bn + [nn.ReLU()] + [nn.Dropout(0.1)] * dropout
    head = [nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 10, 1)] if gap else [nn.Flatten(), nn.Linear(4 * 9 * 9, 10)]
    return nn.Sequential(*layers, *head)


def test_checklist_passes_net_and_the_tiny_net():
    assert set(met(Net(), GOOD).values()) == {True}
    assert set(met(tiny(), GOOD).values()) == {True}


@pytest.mark.parametrize(
    "model, history, requirement",
    [
        (Net(widths=(8, 16, 32, 48, 48)), GOOD, "parameters"),
        (tiny(bn=False), GOOD, "Batch"),
        (tiny(dropout=False), GOOD, "Dropout"),
        (tiny(gap=False), GOOD, "Global"),
        (tiny(), GOOD + [{"epoch": 20, "test_acc": 99.5}], "epochs"),
        (tiny(), GOOD[:17] + [{"epoch": 18, "test_acc": 99.39}] + GOOD[18:], "stable,"),
        (tiny(), GOOD[:-1] + [{"epoch": 19, "test_acc": 99.39}], "test stable,"),
    ],
)
def test_checklist_reports_each_broken_requirement(model, history, requirement):
    rows = met(model, history)
    assert sorted(k for k, v in rows.items() if not v) == sorted(requirement.split())  # those, and only those


def test_only_rows_of_the_assignment_kind_decide_whatever_their_wording():
    dip = GOOD[:-1] + [{"epoch": 19, "test_acc": 99.45}]
    rows = utils.assignment_checklist(Net(), GOOD[:17] + [{"epoch": 18, "test_acc": 99.3}] + dip[18:])
    project = [r for r in rows if r["kind"] == "project"]
    assert len(project) == 1 and not project[0]["met"] and utils.assignment_met(rows)
    project[0]["requirement"] = "a reworded bar"
    assert utils.assignment_met(rows)
    rows[0]["met"] = False  # parameters
    assert not utils.assignment_met(rows)


def test_the_check_fails_only_on_the_assignment_the_stability_row_is_shown_beside_it(capsys):
    dip = GOOD[:16] + [{"epoch": 17, "test_acc": 99.3}] + GOOD[17:]  # meets the assignment, dips in epoch 17
    utils.check_assignment(Net(), dip)  # passes
    printed = capsys.readouterr().out
    assert "stable, the project's own bar" in printed and printed.rstrip().endswith("no")
    with pytest.raises(AssertionError, match="assignment"):
        utils.check_assignment(Net(), GOOD[:-1] + [{"epoch": 19, "test_acc": 99.39}])
    utils.check_assignment(Net(), GOOD[:-1] + [{"epoch": 19, "test_acc": 99.39}], strict=False)  # smoke mode


def test_receptive_field_table_follows_nets_layers():
    by_layer = {r["layer"].split(":")[0]: r for r in receptive_field_table(Net())}
    assert by_layer["features.2"]["out"] == "12x12"  # the max-pool
    assert by_layer["features.6.0"]["rf"] == 22 and by_layer["features.6.0"]["out"] == "6x6"


def test_helpers_refuse_an_empty_history_and_count_epochs_by_number():
    with pytest.raises(ValueError, match="no epoch"):
        utils.assignment_checklist(Net(), [])
    with pytest.raises(ValueError, match="no epoch"):
        utils.plot_history([])
    late = [{"epoch": e, "test_acc": 99.5} for e in range(7, 26)]  # 19 records, but 25 epochs trained
    assert met(Net(), late)["epochs"] is False


def test_the_confusion_plot_takes_a_digit_that_was_not_tested():
    labels = torch.tensor([0, 1, 1, 2])  # no 3 to 9
    figure = utils.plot_confusion_matrix(utils.confusion_matrix(labels, labels))
    assert figure.axes[1].get_ylim()[0] <= 98.0
