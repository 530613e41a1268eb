"""The speed toolbox (toolbox.py): each switch does what it says, and with every switch off it is utils' training."""

import dataclasses

import pytest
import torch
from torch import nn

import utils
from lab import runlog, toolbox
from lab.networks import BaselineNet
from lab.train import build_parser
from model import Net, receptive_field_table


def test_with_every_switch_off_the_toolbox_recipe_trains_exactly_as_utils(small_data):
    train, test = small_data
    utils.seed_everything(1)
    plain = utils.fit(Net(), train, test, utils.Recipe(epochs=1, batch_size=32), progress=False, on_epoch=len)
    utils.seed_everything(1)  # the same initial weights
    tools = utils.fit(Net(), train, test, toolbox.ToolRecipe(epochs=1, batch_size=32), progress=False, on_epoch=len)
    assert runlog.without_seconds(tools) == runlog.without_seconds(plain)


def test_bf16_runs_the_forward_passes_in_bf16_and_still_learns(small_data):
    train, test = small_data
    bf16 = toolbox.ToolRecipe(epochs=1, batch_size=32, precision="bf16")
    seen = []
    model = Net()
    model.features[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    history = utils.fit(model, train, (test[0][:1000], test[1][:1000]), bf16, progress=False, on_epoch=len)
    assert set(seen) == {torch.bfloat16}  # training and testing alike
    assert history[0]["test_acc"] > 60
    with toolbox.ToolRecipe().autocast(torch.device("cpu")):
        assert Net().features[0](torch.zeros(1, 1, 28, 28)).dtype == torch.float32


def test_test_time_shifts_average_the_five_views(small_data):
    _, (images, _) = small_data
    ring = images.clone()
    ring[..., 1:-1, 1:-1] = 0
    images = images[ring.flatten(1).sum(1) == 0][:64]  # a blank border: a 1-pixel roll is a shift
    model = Net().eval()
    views = [torch.roll(images, s, d) for s, d in ((0, 2), (1, 2), (-1, 2), (1, 3), (-1, 3))]
    expected = sum(utils.predict(model, v) for v in views) / 5
    assert torch.allclose(toolbox.predict_shifted(model, images, toolbox.ToolRecipe()), expected, atol=1e-5)


def test_muon_steps_the_conv_filters_and_sgd_the_rest(small_data):
    train, test = small_data
    model = Net()
    filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    recipe = toolbox.ToolRecipe(epochs=1, batch_size=32, muon_lr=0.02)
    optimizer, _ = recipe.optimizer(model, 10)
    sgd = [p for g in optimizer.param_groups for p in g["params"]]
    assert all(p is not f for p in sgd for f in filters) and len(sgd) == len(list(model.parameters())) - len(filters)
    before = [f.detach().clone() for f in filters]
    history = utils.fit(model, train, test, recipe, progress=False, on_epoch=len)
    assert all(not torch.equal(a, f) for a, f in zip(before, filters))  # Muon moved them
    assert history[0]["test_acc"] > 60
    utils.seed_everything(1)
    plain = utils.fit(Net(), train, test, toolbox.ToolRecipe(epochs=1, batch_size=32), progress=False, on_epoch=len)
    assert plain[0]["train_loss"] != history[0]["train_loss"]


def test_a_toolbox_field_out_of_range_is_refused_naming_it():
    with pytest.raises(ValueError, match="^precision must be one of fp32, bf16, auto"):
        toolbox.ToolRecipe(precision="fp16")
    with pytest.raises(ValueError, match="^muon_lr must be a number"):
        toolbox.ToolRecipe(muon_lr=-0.1)


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_native_bf16():
    flags = next((line.split() for line in open("/proc/cpuinfo") if line.startswith("flags")), None)
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags to compare with")
    native = "avx512_bf16" in flags or "amx_tile" in flags
    resolved = toolbox.resolve(toolbox.ToolRecipe(precision="auto"), torch.device("cpu"))
    assert resolved.precision == ("bf16" if native else "fp32")
    assert toolbox.resolve(toolbox.ToolRecipe(precision="bf16"), torch.device("cpu")).precision == "bf16"


def test_every_recipe_field_is_a_train_py_flag_with_its_help_and_checks_its_range():
    flags = {a.dest: a for a in build_parser()._actions}
    for field in dataclasses.fields(toolbox.ToolRecipe):
        assert flags[field.name].help.startswith(field.metadata["help"]), field.name
    with pytest.raises(ValueError, match="^lr must be"):
        toolbox.ToolRecipe(lr=0.0)


def test_summarize_runs_reports_worst_cases():
    def run(seed, accs):
        return {"seed": seed, "epochs": [{"epoch": i + 1, "test_acc": a, "seconds": 1.0} for i, a in enumerate(accs)]}

    summary = runlog.summarize_runs([run(1, [99.0, 99.41, 99.5, 99.6]), run(2, [99.4, 99.3, 99.45, 99.5])])
    assert summary["final_mean"] == 99.55 and summary["final_min"] == 99.5
    assert summary["last3_min"] == 99.3
    assert summary["first_epoch_99_4"] == [2, 1]


# The task statement's network as it published it (torchsummary): output side after each conv and
# pool; receptive fields as its README explains them (max-pool "after a receptive field of 7").
TASK_STATEMENT_SIZES = [26, 24, 22, 22, 11, 9, 9, 7, 5, 5, 1]
TASK_STATEMENT_RF = [3, 5, 7, 7, 8, 12, 16, 20, 24, 24, 32]


def test_receptive_field_table_matches_the_task_statements_network():
    rows = receptive_field_table(BaselineNet())[1:]
    assert [int(r["out"].split("x")[0]) for r in rows] == TASK_STATEMENT_SIZES
    assert [r["rf"] for r in rows] == TASK_STATEMENT_RF
    assert rows[4]["layer"].endswith("MaxPool2d 2") and rows[3]["rf"] == 7
