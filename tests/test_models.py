"""The models of the five steps, their budgets, and the numbers their docstrings claim."""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict

import pytest
import torch
from torch import nn

from mnist_lite.models import count_parameters, layer_table
from mnist_lite.steps import MAX_EPOCHS, PARAM_BUDGET, STEP5_BUDGET, STEPS

MODELS = sorted({recipe.model for recipe in STEPS.values()}, key=lambda cls: cls.__name__)

@pytest.mark.parametrize("step", sorted(STEPS))
def test_model_maps_images_to_ten_logits(step):
    torch.manual_seed(0)
    model = STEPS[step].model()
    for mode in (model.train, model.eval):
        mode()
        logits = model(torch.randn(3, 1, 28, 28))
        assert logits.shape == (3, 10) and torch.isfinite(logits).all()


def test_parameter_budgets():
    assert (PARAM_BUDGET, STEP5_BUDGET) == (10_000, 8_000)  # the project's promise, pinned
    for step in (2, 3, 4, 5):
        assert count_parameters(STEPS[step].model()) < PARAM_BUDGET, step
    assert count_parameters(STEPS[5].model()) < STEP5_BUDGET


def test_count_parameters_counts_trainable_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10
    assert count_parameters(model) == 26
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 14


def receptive_field_at(model, where: str) -> int:
    """The receptive field at the last convolution or pool, as ``layer_table`` computes it."""
    kind = {"convolution": "Conv2d", "pool": "MaxPool2d"}[where]
    return [row for row in layer_table(model) if row.kind == kind][-1].receptive_field


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in MODELS])
def test_docstring_numbers_match_layer_table(cls):
    doc = " ".join(cls.__doc__.split())
    rf = re.search(r"Receptive field (\d+)x(\d+) at the last (convolution|pool)", doc)
    params = re.search(r"([\d,]+) parameters", doc)
    assert rf and params, f"{cls.__name__}'s docstring gives no receptive field or parameter count: {doc}"
    model = cls()
    assert rf.group(1) == rf.group(2)
    claimed = int(rf.group(1)), int(params.group(1).replace(",", ""))
    assert claimed == (receptive_field_at(model, rf.group(3)), count_parameters(model))
    gap = re.search(r"(\d+)x(\d+) feature maps into GAP", doc)
    if gap:
        rows = layer_table(model)
        into_gap = rows[[row.name for row in rows].index("gap") - 1].out_shape
        assert into_gap[1:] == (int(gap.group(1)), int(gap.group(2)))


class PaperNet(nn.Module):
    """A model whose table is worked out by hand: a 3x3 conv adds 2 * jump to the receptive field,
    a 2x2 pool adds 1 * jump and doubles the jump, a 1x1 conv adds nothing."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()),  # 28 -> 26, rf 3, 4*9+4 = 40
                conv2=nn.Sequential(nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU()),  # 24, rf 5, 216+12
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
    assert [(r.name, r.kind, r.out_shape, r.receptive_field, r.params) for r in rows] == [
        ("conv1", "Conv2d", (4, 26, 26), 3, 40),
        ("conv2", "Conv2d", (6, 24, 24), 5, 228),
        ("pool", "MaxPool2d", (6, 12, 12), 6, 0),
        ("conv3", "Conv2d", (8, 10, 10), 10, 440),
        ("squeeze", "Conv2d", (4, 10, 10), 10, 36),
        ("pool2", "MaxPool2d", (4, 5, 5), 12, 0),
        ("conv4", "Conv2d", (10, 1, 1), 28, 1010),
        ("flatten", "Flatten", (10,), 28, 0),
    ]
    assert count_parameters(model) == 40 + 228 + 440 + 36 + 1010


@pytest.mark.parametrize("step", sorted(STEPS))
def test_layer_table_rows(step):
    model = STEPS[step].model()
    model.train()
    rows = layer_table(model)
    assert rows[-1].out_shape == (10,)
    assert sum(row.params for row in rows) == count_parameters(model)
    assert [row.name for row in rows] == [name for name, _ in model.features.named_children()]
    fields = [row.receptive_field for row in rows]
    assert fields == sorted(fields) and fields[0] == 3
    assert model.training  # left as it was found


def test_steps_add_one_idea_each():
    lite = [STEPS[s].model() for s in (2, 3, 5)]
    kinds = [{type(m).__name__ for m in model.modules()} for model in lite]
    assert "BatchNorm2d" not in kinds[0] and "Dropout2d" not in kinds[0]
    assert "BatchNorm2d" in kinds[1] and "Dropout2d" not in kinds[1]
    assert "BatchNorm2d" in kinds[2] and "Dropout2d" in kinds[2]
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in lite[0].modules())
    assert not any(isinstance(m, nn.Linear) for model in lite for m in model.modules())


@pytest.mark.parametrize("step", sorted(STEPS))
def test_recipe(step):
    recipe = STEPS[step]
    assert recipe.step == step
    assert 1 <= recipe.epochs <= MAX_EPOCHS == 15
    assert recipe.target.strip() and recipe.title.strip()
    assert recipe.schedule in ("constant", "onecycle", "step") and recipe.lr > 0 and recipe.batch_size > 0
    if recipe.schedule == "step":
        assert recipe.milestones and list(recipe.milestones) == sorted(set(recipe.milestones))
        assert all(0 < m < recipe.epochs for m in recipe.milestones)
    assert recipe.as_dict()["model"] == recipe.model.__name__ and recipe.as_dict()["step"] == step


def test_a_targets_numbers_come_from_its_recipe():
    changed = dataclasses.replace(STEPS[4], lr=0.05, milestones=(5, 10))
    assert "a rate of 0.05 " in changed.target and "after epochs 5 and 10." in changed.target
    assert "a rate of 0.1 " in STEPS[4].target and "after epochs 8 and 12." in STEPS[4].target
    assert f"±{STEPS[5].augment.degrees:g}°" in STEPS[5].target and "{" not in STEPS[5].target
