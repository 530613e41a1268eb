"""The networks meet the assignment's constraints and produce the right shapes."""

import pytest
import torch
from torch import nn

import utils
from model import MODELS, BaselineNet, Net, NetLite, NetMicro


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape(name):
    model = MODELS[name]().eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("cls, budget", [(Net, 20_000), (NetLite, 8_000), (NetMicro, 4_000)])
def test_ladder_budgets_and_required_layers(cls, budget):
    model = cls()
    assert utils.count_parameters(model) < budget
    kinds = {type(m) for m in model.modules()}
    assert nn.BatchNorm2d in kinds
    assert kinds & {nn.Dropout, nn.Dropout2d}
    assert nn.AdaptiveAvgPool2d in kinds  # global average pooling
    assert not kinds & {nn.Linear}  # the 1x1 conv after GAP is the only classifier


def test_gap_really_pools_to_one_pixel():
    model = Net().eval()
    pooled = model.gap(model.features(torch.randn(2, 1, 28, 28)))
    assert pooled.shape[-2:] == (1, 1)


def test_baseline_has_the_published_parameter_count():
    assert utils.count_parameters(BaselineNet()) == 19_712


def test_receptive_field_table_follows_the_layers():
    rows = utils.receptive_field_table(Net())
    assert rows[0] == {"layer": "input", "out": "28x28", "rf": 1, "jump": 1}
    by_layer = {r["layer"].split(":")[0]: r for r in rows}
    assert by_layer["features.2"]["out"] == "12x12"  # the max-pool
    assert by_layer["features.6.0"]["rf"] == 22 and by_layer["features.6.0"]["out"] == "6x6"
    assert rows[-1]["out"] == "1x1"
    baseline_last = utils.receptive_field_table(BaselineNet())[-1]
    assert baseline_last["out"] == "1x1" and baseline_last["rf"] == 32
