"""The models of the five steps: shapes, receptive fields, parameters and multiply-adds, checked
against hand computations."""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict

import pytest
import torch
from torch import nn

from mnist_lite.config import Baseline, Lite
from mnist_lite.models import BaselineNet, LiteNet, count_parameters, layer_table, multiply_adds
from mnist_lite.steps import DESIGN_BASELINE, STEPS

CONFIGS = {f"step{step}": recipe.model for step, recipe in STEPS.items()} | {
    "previous_step5": DESIGN_BASELINE.model,
    "separable": Lite(full_resolution=(4, 6), transition=5, low_resolution=(8, 12), separable=True),
    "separable_plain": Lite(full_resolution=(4,), low_resolution=(8, 12), separable=True, batch_norm=False),
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_model_maps_images_to_ten_logits(step):
    torch.manual_seed(0)
    model = STEPS[step].model()
    for mode in (model.train, model.eval):
        mode()
        logits = model(torch.randn(3, 1, 28, 28))
        assert logits.shape == (3, 10) and torch.isfinite(logits).all()


def test_a_config_builds_its_model():
    assert isinstance(Baseline()(), BaselineNet)
    config = Lite(full_resolution=(4,), low_resolution=(6,), dropout=0.1)
    model = config()
    assert isinstance(model, LiteNet) and model.config is config
    assert type(model).__name__ == config.name == "LiteNet" and BaselineNet.__name__ == Baseline.name


def test_count_parameters_counts_trainable_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10
    assert count_parameters(model) == 26
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 14


def lite_parameters(config: Lite) -> int:
    """A LiteNet's parameters, counted by hand from its config: each convolution has k*k*in*out
    weights (a separable one 3*3*in + in*out) and either a bias or BatchNorm's weight and bias
    per output channel."""
    per_channel = 2 if config.batch_norm else 1

    def conv3x3(channels: int, width: int) -> int:
        if config.separable and channels > 1:
            return 9 * channels + channels * width + per_channel * width
        return 9 * channels * width + per_channel * width

    total, channels = 0, 1
    for width in config.full_resolution:
        total, channels = total + conv3x3(channels, width), width
    if config.transition:
        total, channels = (
            total + channels * config.transition + per_channel * config.transition,
            config.transition,
        )
    for width in config.low_resolution:
        total, channels = total + conv3x3(channels, width), width
    return total + channels * 10 + 10  # the 1x1 classifier, with its bias


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parameter_counts_by_hand(name):
    config = CONFIGS[name]
    model = config()
    if isinstance(config, Baseline):
        assert count_parameters(model) == (9 * 16 + 16) + (9 * 16 * 32 + 32) + (32 * 25 * 64 + 64) + (
            64 * 10 + 10
        )
    else:
        assert count_parameters(model) == lite_parameters(config)


def test_baseline_docstring_numbers_match_layer_table():
    doc = " ".join(BaselineNet.__doc__.split())
    rf = re.search(r"Receptive field (\d+)x(\d+) at the last pool", doc)
    params = re.search(r"([\d,]+) parameters", doc)
    assert rf and params, doc
    model = BaselineNet()
    last_pool = [row for row in layer_table(model) if row.kind == "MaxPool2d"][-1]
    assert (int(rf.group(1)), int(rf.group(2))) == (last_pool.receptive_field,) * 2
    assert int(params.group(1).replace(",", "")) == count_parameters(model)


class PaperNet(nn.Module):
    """A model whose table is worked out by hand: a 3x3 conv adds 2 * jump to the receptive field,
    a 2x2 pool adds 1 * jump and doubles the jump, a 1x1 conv adds nothing. A convolution's
    multiply-adds are out_channels * out_height * out_width * in_channels * k * k."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()),  # 28 -> 26, rf 3, 4*9+4 = 40
                conv2=nn.Sequential(
                    nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU()
                ),  # 24, rf 5, 216+12
                pool=nn.MaxPool2d(2),  # 24 -> 12, rf 6, jump 2
                conv3=nn.Conv2d(6, 8, 3),  # 12 -> 10, rf 10, 432+8
                squeeze=nn.Conv2d(8, 4, 1),  # rf 10, 32+4
                pool2=nn.MaxPool2d(2),  # 10 -> 5, rf 12, jump 4
                conv4=nn.Conv2d(4, 10, 5),  # 5 -> 1, rf 12 + 4*4 = 28, 1000+10
                flatten=nn.Flatten(),
            )
        )


def test_layer_table_by_hand():
    model = PaperNet()
    rows = layer_table(model)
    assert [(r.name, r.kind, r.out_shape, r.receptive_field, r.params, r.multiply_adds) for r in rows] == [
        ("conv1", "Conv2d", (4, 26, 26), 3, 40, 4 * 26 * 26 * 1 * 9),
        ("conv2", "Conv2d", (6, 24, 24), 5, 228, 6 * 24 * 24 * 4 * 9),
        ("pool", "MaxPool2d", (6, 12, 12), 6, 0, 0),
        ("conv3", "Conv2d", (8, 10, 10), 10, 440, 8 * 10 * 10 * 6 * 9),
        ("squeeze", "Conv2d", (4, 10, 10), 10, 36, 4 * 10 * 10 * 8),
        ("pool2", "MaxPool2d", (4, 5, 5), 12, 0, 0),
        ("conv4", "Conv2d", (10, 1, 1), 28, 1010, 10 * 4 * 25),
        ("flatten", "Flatten", (10,), 28, 0, 0),
    ]
    assert count_parameters(model) == 40 + 228 + 440 + 36 + 1010
    assert multiply_adds(model) == 24336 + 124416 + 43200 + 3200 + 1000


def test_a_small_lite_net_by_hand():
    """conv 3x3 pad 1 (1 -> 4) at 28x28, pool, transition 1x1 (4 -> 3), conv 3x3 (3 -> 6) at 12x12,
    GAP over 12x12, classifier 1x1 (6 -> 10)."""
    model = Lite(full_resolution=(4,), padding=1, transition=3, low_resolution=(6,), batch_norm=False)()
    rows = {row.name: row for row in layer_table(model)}
    assert list(rows) == ["conv1", "pool", "transition", "conv2", "gap", "classifier", "flatten"]
    expected = {  # name: (shape, receptive field, parameters, multiply-adds)
        "conv1": ((4, 28, 28), 3, 4 * 9 + 4, 4 * 28 * 28 * 9),
        "pool": ((4, 14, 14), 4, 0, 0),
        "transition": ((3, 14, 14), 4, 4 * 3 + 3, 3 * 14 * 14 * 4),
        "conv2": ((6, 12, 12), 8, 3 * 6 * 9 + 6, 6 * 12 * 12 * 3 * 9),
        "gap": ((6, 1, 1), 8 + 11 * 2, 0, 0),  # a 12x12 kernel at jump 2: the whole image and more
        "classifier": ((10, 1, 1), 30, 6 * 10 + 10, 6 * 10),
        "flatten": ((10,), 30, 0, 0),
    }
    assert {
        name: (r.out_shape, r.receptive_field, r.params, r.multiply_adds) for name, r in rows.items()
    } == expected
    assert multiply_adds(model) == 28224 + 2352 + 23328 + 60
    assert count_parameters(model) == 40 + 15 + 168 + 70 == lite_parameters(model.config)
    assert rows["conv1"].description == "conv 3x3 pad 1, ReLU" and rows["gap"].description == "GAP"


def test_a_second_pool_sits_after_the_named_convolution_and_widens_what_the_last_ones_see():
    one = Lite(full_resolution=(4,), transition=0, low_resolution=(6, 6, 6), batch_norm=False)
    two = dataclasses.replace(one, second_pool=2)
    rows = {row.name: row for row in layer_table(two())}
    assert list(rows) == ["conv1", "pool", "conv2", "conv3", "pool2", "conv4", "gap", "classifier", "flatten"]
    # 14 -> 12 -> 10, pooled to 5, then 3; the jump doubles to 4, so conv4 adds 2 * 4 to the field
    assert rows["pool2"].out_shape == (6, 5, 5) and rows["conv4"].out_shape == (6, 3, 3)
    assert (rows["conv3"].receptive_field, rows["pool2"].receptive_field, rows["conv4"].receptive_field) == (
        12,
        14,
        22,
    )
    assert count_parameters(two()) == count_parameters(one())
    assert multiply_adds(one()) - multiply_adds(two()) == 6 * (8 * 8 - 3 * 3) * 6 * 9


def test_dilated_convolutions_are_the_last_ones_and_see_more_for_the_same_weights():
    one = Lite(full_resolution=(4,), transition=0, low_resolution=(6, 6, 6), batch_norm=False)
    two = dataclasses.replace(one, dilated=2)
    rows = {row.name: row for row in layer_table(two())}
    assert [rows[name].description for name in ("conv2", "conv3", "conv4")] == [
        "conv 3x3, ReLU",
        "conv 3x3 dilation 2, ReLU",
        "conv 3x3 dilation 2, ReLU",
    ]
    # 14 -> 12, then a dilated 3x3 spans 5x5: 12 -> 8 -> 4; each adds 2 * 2 * jump 2 = 8 to the field
    assert rows["conv3"].out_shape == (6, 8, 8) and rows["conv4"].out_shape == (6, 4, 4)
    assert [rows[name].receptive_field for name in ("conv2", "conv3", "conv4")] == [8, 16, 24]
    assert count_parameters(two()) == count_parameters(one())
    assert rows["conv4"].multiply_adds == 6 * 4 * 4 * 6 * 9
    assert "dilation" not in "".join(row.description for row in layer_table(one()))
    with pytest.raises(ValueError, match="dilated=3: at most the 2 low-resolution convolutions"):
        dataclasses.replace(one, second_pool=1, dilated=3)


def test_a_separable_convolution_filters_each_channel_then_mixes_them():
    """With ``separable``, conv2 (4 -> 6 at 14x14, no padding) is a 3x3 filter per input channel
    (4 * 9 weights, 4 * 12 * 12 * 9 multiply-adds) then a 1x1 convolution (4 * 6 weights,
    6 * 12 * 12 * 4); conv1 sees one channel and stays a full convolution."""
    full = Lite(full_resolution=(4,), transition=0, low_resolution=(6,), batch_norm=False)
    rows = {row.name: row for row in layer_table(dataclasses.replace(full, separable=True)())}
    assert rows["conv1"] == {row.name: row for row in layer_table(full())}["conv1"]
    conv2 = rows["conv2"]
    assert conv2.description == "depthwise conv 3x3, conv 1x1, ReLU"
    assert (conv2.out_shape, conv2.receptive_field) == ((6, 12, 12), 8)
    assert conv2.params == 4 * 9 + 4 * 6 + 6
    assert conv2.multiply_adds == 4 * 12 * 12 * 9 + 6 * 12 * 12 * 4


def test_the_activation_is_silu_where_the_config_says_so():
    relu = Lite(full_resolution=(4,), transition=0, low_resolution=(6, 6), batch_norm=True)
    silu = dataclasses.replace(relu, activation="silu")
    assert [row.description for row in layer_table(silu())][:1] == ["conv 3x3 pad 1, BN, SiLU"]
    assert not any(isinstance(m, torch.nn.ReLU) for m in silu().modules())
    assert count_parameters(silu()) == count_parameters(relu())
    x = torch.randn(2, 1, 28, 28)
    torch.manual_seed(0)
    a = relu().eval()
    torch.manual_seed(0)
    b = silu().eval()
    assert not torch.allclose(a(x), b(x))  # the same weights, another function
    with pytest.raises(ValueError, match="activation 'gelu': one of relu, silu"):
        Lite(activation="gelu")


def test_batch_norm_and_dropout_add_no_multiply_adds():
    plain = Lite(full_resolution=(4,), low_resolution=(6,), batch_norm=False)
    both = Lite(full_resolution=(4,), low_resolution=(6,), batch_norm=True, dropout=0.1)
    assert multiply_adds(plain()) == multiply_adds(both())
    assert [row.description for row in layer_table(both())][:1] == ["conv 3x3 pad 1, BN, ReLU, Dropout2d 0.1"]


def test_dense_layers_count_their_multiply_adds():
    rows = {row.name: row for row in layer_table(BaselineNet())}
    assert rows["dense"].multiply_adds == 800 * 64 and rows["classifier"].multiply_adds == 64 * 10
    assert rows["conv2"].multiply_adds == 32 * 11 * 11 * 16 * 9


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_layer_table_rows(name):
    model = CONFIGS[name]()
    model.train()
    rows = layer_table(model)
    assert rows[-1].out_shape == (10,)
    assert sum(row.params for row in rows) == count_parameters(model)
    assert sum(row.multiply_adds for row in rows) == multiply_adds(model) > 0
    assert [row.name for row in rows] == [name for name, _ in model.features.named_children()]
    fields = [row.receptive_field for row in rows]
    assert fields == sorted(fields) and fields[0] == 3
    if "gap" in [row.name for row in rows]:
        gap = [row.name for row in rows].index("gap")
        assert rows[gap].out_shape[1:] == (1, 1)
        assert all(row.receptive_field >= 28 for row in rows[gap:])  # after GAP, the whole image
        assert rows[gap - 1].receptive_field < 28  # the last convolution still sees a part of it
    assert model.training  # left as it was found


def test_steps_add_one_idea_each():
    lite = [STEPS[s].model() for s in (2, 3, 5)]
    kinds = [{type(m).__name__ for m in model.modules()} for model in lite]
    assert "BatchNorm2d" not in kinds[0] and "Dropout2d" not in kinds[0]
    assert "BatchNorm2d" in kinds[1] and "Dropout2d" not in kinds[1]
    assert "BatchNorm2d" in kinds[2] and "Dropout2d" in kinds[2]
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in lite[0].modules())
    assert not any(isinstance(m, nn.Linear) for model in lite for m in model.modules())
    # convolutions carry a bias only where no BatchNorm follows them
    assert all(m.bias is not None for m in lite[0].modules() if isinstance(m, nn.Conv2d))
    assert all(m.bias is None for m in lite[1].features[:-2].modules() if isinstance(m, nn.Conv2d))


@pytest.mark.results
def test_recorded_design_runs_are_the_size_of_their_architecture(repo_root):
    """results/design/NAME/seedS.json records the parameters and multiply-adds of its model."""
    import json

    from mnist_lite.config import model_from_dict

    failed = []
    for path in sorted((repo_root / "results" / "design").glob("*/seed*.json")):
        r = json.loads(path.read_text())
        try:
            model = model_from_dict(r["recipe"]["model"], r["recipe"]["architecture"])()
            assert (r["params"], r["multiply_adds"]) == (count_parameters(model), multiply_adds(model))
        except Exception as error:  # noqa: BLE001 - each failing file is listed
            failed.append(f"{path.relative_to(repo_root)}: {type(error).__name__}: {error}")
    assert not failed, "\n".join(failed)
