"""The speed toolbox (toolbox.py): each switch does what it says, and with every switch off it is utils' training."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import runlog
import toolbox
import utils
from model import Net


def test_with_every_switch_off_the_toolbox_trains_exactly_as_utils(small_data):
    train, test = small_data
    utils.seed_everything(1)
    plain = utils.fit(Net(), train, test, utils.Recipe(epochs=2, batch_size=32), progress=False, on_epoch=len)
    utils.seed_everything(1)  # the same initial weights
    tools = toolbox.fit(Net(), train, test, toolbox.ToolRecipe(epochs=2, batch_size=32), progress=False)
    assert runlog.without_seconds(tools) == runlog.without_seconds(plain)


def test_fp32_and_bf16_both_learn_and_differ(small_data):
    train, test = small_data
    fp32, bf16 = (toolbox.fit(Net(), train, test, toolbox.ToolRecipe(epochs=1, batch_size=32, precision=p),
                              progress=False) for p in ("fp32", "bf16"))  # fmt: skip
    assert fp32[0]["test_acc"] > 60 and bf16[0]["test_acc"] > 60
    assert fp32[0]["train_loss"] != bf16[0]["train_loss"]  # bf16 autocast really ran


def test_translate_shifts_each_image_by_at_most_the_crop_with_zero_fill(small_data):
    (images, _), _ = small_data
    batch = images[:32].float() / 255
    moved = toolbox.translate(batch, 2, torch.Generator().manual_seed(0))
    padded = F.pad(batch, (2, 2, 2, 2))
    for original, out in zip(padded, moved):
        crops = [original[:, dy : dy + 28, dx : dx + 28] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out, crop) for crop in crops)
    assert not torch.equal(moved, batch)


def test_test_time_shifts_average_the_five_views(small_data):
    _, (images, _) = small_data
    ring = images.clone()
    ring[..., 1:-1, 1:-1] = 0
    images = images[ring.flatten(1).sum(1) == 0][:64]  # a blank border: a 1-pixel roll is a shift
    model = Net().eval()
    views = [torch.roll(images, s, d) for s, d in ((0, 2), (1, 2), (-1, 2), (1, 3), (-1, 3))]
    expected = sum(utils.predict(model, v) for v in views) / 5
    assert torch.allclose(toolbox.predict_shifted(model, images, toolbox.ToolRecipe()), expected, atol=1e-5)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_fit_leaves_the_model_it_tested_and_sets_batchnorm_momentum(small_data, ema):
    train, test = small_data
    model = Net()
    history = toolbox.fit(model, train, test, toolbox.ToolRecipe(epochs=1, ema=ema, bn_momentum=0.3), progress=False)
    assert utils.test(model, *test)[1] == history[-1]["test_correct"]
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.3}
    if ema:
        plain = toolbox.fit(Net(), train, test, toolbox.ToolRecipe(epochs=1, bn_momentum=0.3), progress=False)
        assert plain[-1]["train_loss"] == history[-1]["train_loss"]  # the same training,
        assert plain[-1]["test_correct"] != history[-1]["test_correct"]  # another model tested


def test_each_epoch_hands_on_the_module_its_record_scored(small_data):
    train, test = small_data
    seen = []

    def on_epoch(record: dict, scored: nn.Module) -> None:  # what train.py checkpoints
        seen.append(utils.test(scored, *test)[1] == record["test_correct"])

    toolbox.fit(Net(), train, test, toolbox.ToolRecipe(epochs=2, ema=0.9), progress=False, on_epoch=on_epoch)
    assert seen == [True, True]


def test_muon_steps_the_conv_filters_and_sgd_the_rest(small_data):
    train, test = small_data
    model = Net()
    filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    optimizer, _ = toolbox.make_optimizer(model, toolbox.ToolRecipe(muon_lr=0.02), 10)
    assert all(p is not f for g in optimizer.param_groups for p in g["params"] for f in filters)
    before = [f.detach().clone() for f in filters]
    history = toolbox.fit(model, train, test, toolbox.ToolRecipe(epochs=1, batch_size=32, muon_lr=0.02), progress=False)
    assert all(not torch.equal(a, f) for a, f in zip(before, filters))  # Muon moved them
    assert history[0]["test_acc"] > 60


def test_a_toolbox_field_out_of_range_is_refused_naming_it():
    with pytest.raises(ValueError, match="^precision must be one of fp32, bf16, auto"):
        toolbox.ToolRecipe(precision="fp16")
    with pytest.raises(ValueError, match="channels_last does not go with muon_lr"):
        toolbox.ToolRecipe(muon_lr=0.02, memory_format="channels_last")


def test_distillation_mixes_in_the_teachers_softened_outputs(small_data):
    train, test = small_data
    teacher = Net()
    toolbox.fit(teacher, train, test, toolbox.ToolRecipe(epochs=1, batch_size=32), progress=False)
    recipe = toolbox.ToolRecipe(epochs=1, batch_size=32, distill=0.5, temperature=4.0)
    with pytest.raises(ValueError, match="teacher"):
        toolbox.fit(Net(), train, test, recipe, progress=False)
    taught = toolbox.fit(Net(), train, test, recipe, progress=False, teacher=teacher)
    plain = toolbox.fit(Net(), train, test, toolbox.ToolRecipe(epochs=1, batch_size=32), progress=False)
    assert taught[0]["train_loss"] != plain[0]["train_loss"] and taught[0]["test_acc"] > 60
    x, y = train[0][:64], train[1][:64]
    model = Net().eval()
    with torch.no_grad():  # the student as its own teacher: the divergence is zero, the loss is half the labels'
        mixed, logits = toolbox.batch_loss(model, x, y, recipe, torch.Generator().manual_seed(0), teacher=model)
    assert mixed.item() == pytest.approx(0.5 * F.cross_entropy(logits, y).item(), rel=1e-5)


def test_whitening_fixes_conv1_to_decorrelated_unit_variance_features_and_never_trains_it(small_data):
    train, test = small_data
    model = Net()
    conv1 = model.features[0][0]
    toolbox.fit(model, train, test, toolbox.ToolRecipe(epochs=1, batch_size=32, whiten=1, muon_lr=0.02),
                progress=False, on_epoch=lambda *_: None)  # fmt: skip
    fixed = conv1.weight.detach().clone()
    fresh = Net()
    toolbox.whiten_first_conv(fresh, train[0])
    assert torch.equal(fixed, fresh.features[0][0].weight) and not conv1.weight.requires_grad  # never trained
    half = len(fixed) // 2
    assert torch.equal(fixed[half:], -fixed[:half])  # +/- pairs: ReLU keeps both signs of a component
    with torch.no_grad():
        features = conv1(utils.normalize(train[0][:2000]))[:, :half]
    covariance = features.transpose(0, 1).flatten(1).cov()
    assert torch.allclose(covariance, torch.eye(half), atol=0.02)  # white: unit variance, no correlation


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_native_bf16():
    flags = next((line.split() for line in open("/proc/cpuinfo") if line.startswith("flags")), None)
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags to compare with")
    native = "avx512_bf16" in flags or "amx_tile" in flags
    resolved = toolbox.resolve(toolbox.ToolRecipe(precision="auto"), torch.device("cpu"))
    assert resolved.precision == ("bf16" if native else "fp32")
    assert toolbox.resolve(toolbox.ToolRecipe(precision="bf16"), torch.device("cpu")).precision == "bf16"
