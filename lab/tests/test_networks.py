"""The bench's networks (and Net) meet the assignment's constraints, produce the right shapes and take their options."""

import pytest
import torch
from torch import nn

import utils
from lab.networks import MODELS, BaselineNet, FramedSpeedNet, NetLite, NetMicro, NetNano, SpeedNet, StageNet
from model import Net, receptive_field_table


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape(name):
    model = MODELS[name]().eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize(
    "cls, budget",
    [
        (Net, 20_000),
        (NetLite, 8_000),
        (NetMicro, 4_000),
        (NetNano, 2_000),
        (SpeedNet, 20_000),
        (FramedSpeedNet, 20_000),
    ],
)
def test_every_rung_meets_its_budget_and_the_assignments_layers(cls, budget):
    rows = {r["requirement"]: r["met"] for r in utils.assignment_checklist(cls(), [{"epoch": 1, "test_acc": 99.5}])}
    assert utils.count_parameters(cls()) < budget
    assert set(rows.values()) == {True}, rows


def test_the_task_statements_network_has_its_published_parameter_count():
    assert utils.count_parameters(BaselineNet()) == 19_712  # the task statement's summary says 19,712


@pytest.mark.parametrize("pool_after", [1, 2, 3, 5])
def test_the_max_pool_goes_after_the_conv_asked_and_dropout_only_past_it(pool_after):
    features = list(Net(pool_after=pool_after).features)
    assert isinstance(features[pool_after], nn.MaxPool2d)
    dropped = [any(isinstance(m, nn.Dropout) for m in block) for block in features if isinstance(block, nn.Sequential)]
    assert dropped == [i >= pool_after for i in range(6)]
    assert Net(pool_after=pool_after)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_widths_and_dropout_are_constructor_arguments():
    model = Net(widths=(4, 6, 6, 7, 7), dropout=0.2)
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [4, 6, 6, 7, 7, 7, 10]
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.2}
    with pytest.raises(ValueError, match="widths"):
        Net(widths=(4, 6))
    with pytest.raises(ValueError, match="dropout"):
        Net(dropout=1.5)


def test_speednet_is_nets_layers_with_one_dropout_after_the_pooling():
    speed, net = SpeedNet(), Net()
    assert [type(m) for m in speed.features.modules() if not isinstance(m, nn.Dropout)] == [
        type(m) for m in net.features.modules() if not isinstance(m, nn.Dropout)
    ]
    assert not any(isinstance(m, nn.Dropout) for m in speed.features.modules())
    assert isinstance(speed.gap[1], nn.Dropout)


def test_stagenet_keeps_the_first_stage_at_full_resolution():
    sizes = [r["out"] for r in receptive_field_table(StageNet(((4, 4), (8, 8))))]
    assert sizes == ["28x28", "28x28", "28x28", "14x14", "14x14", "14x14", "1x1", "1x1"]


def test_separable_convs_after_the_first_are_depthwise_then_pointwise():
    convs = [m for m in StageNet(((4, 6), (8,)), separable=True).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.groups) for c in convs] == [
        (1, 4, 3, 1),  # a single input channel: a plain conv
        (4, 4, 3, 4),  # depthwise 3x3: one filter per channel
        (4, 6, 1, 1),  # pointwise 1x1 mixes them
        (6, 6, 3, 6),
        (6, 8, 1, 1),
        (8, 10, 1, 1),  # the classifier
    ]
    # 9*c_in + c_in*c_out weights per separable conv instead of 9*c_in*c_out, as the docstring says
    assert utils.count_parameters(StageNet(((4, 6),), separable=True)) < utils.count_parameters(StageNet(((4, 6),)))


def test_netnano_is_the_documented_separable_stagenet():
    sizes = [(r["layer"].split(": ")[-1], r["out"], r["rf"]) for r in receptive_field_table(NetNano())]
    assert sizes[-3:] == [("conv1x1 16->20", "7x7", 32), ("global avg pool", "1x1", 56), ("conv1x1 20->10", "1x1", 56)]
    assert NetNano().stages == ((6, 10), (12, 16), (16, 20))
    assert any(isinstance(m, nn.Conv2d) and m.groups == 16 for m in NetNano().modules())  # depthwise
