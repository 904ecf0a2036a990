"""The recipes: what each step trains, their budgets, their texts, and how result.json and
checkpoints record them (``as_dict`` / ``from_dict``)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from conftest import REPO, every_field_changed
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_lite.config import ELASTIC_SIGMA_LIMIT, Augment, Baseline, Lite, model_from_dict, model_to_dict
from mnist_lite.data import _blur_matrix, elastic_displacement
from mnist_lite.engine import recipe_from_checkpoint
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.results import load_result
from mnist_lite.steps import (
    DESIGN_BASELINE,
    MAX_EPOCHS,
    MAX_TEST_TIME_SHIFT,
    OPTIMIZERS,
    PARAM_BUDGET,
    STEP5_BUDGET,
    STEP5_PLAIN,
    STEPS,
    TARGET_ACCURACY,
    Recipe,
)

RECIPES = {f"step{step}": recipe for step, recipe in STEPS.items()} | {"previous_step5": DESIGN_BASELINE}
TEXTS = ("step", "slug", "title", "target_template")


def test_the_series_is_steps_1_to_5_each_once():
    assert sorted(STEPS) == [1, 2, 3, 4, 5]  # STEPS is keyed by each recipe's step: a repeat would vanish


@pytest.mark.parametrize("step", sorted(STEPS))
def test_recipe(step):
    recipe = STEPS[step]
    assert 1 <= recipe.epochs <= MAX_EPOCHS == 15
    assert recipe.target.strip() and recipe.title.strip()
    assert recipe.schedule in ("constant", "onecycle", "step") and recipe.lr > 0 and recipe.batch_size > 0
    if recipe.schedule == "step":
        assert recipe.milestones and list(recipe.milestones) == sorted(set(recipe.milestones))
        assert all(0 < m < recipe.epochs for m in recipe.milestones)
    assert 0 <= recipe.label_smoothing < 1 and 0 <= recipe.ema_decay < 1
    assert (
        recipe.notebook == f"notebooks/{step:02d}_{recipe.slug}.ipynb" and (REPO / recipe.notebook).is_file()
    )
    recorded = recipe.as_dict()
    assert recorded["step"] == step and recorded["name"] == recipe.slug
    assert recorded["model"] == recipe.model.name == type(recipe.model()).__name__
    # JSON has no tuples: the record holds lists, so that a record read back equals the recipe's
    assert json.loads(json.dumps(recorded)) == recorded
    assert model_from_dict(recorded["model"], recorded["architecture"]) == recipe.model


def test_step1_is_the_baseline_and_steps_2_to_4_are_one_skeleton():
    assert STEPS[1].model == Baseline() and STEPS[1].model.name == "BaselineNet"
    for step in (2, 3, 4, 5):
        assert isinstance(STEPS[step].model, Lite) and STEPS[step].model.name == "LiteNet"
    assert STEPS[3].model == STEPS[4].model  # step 4 changes the schedule, not the model
    assert dataclasses.replace(STEPS[2].model, batch_norm=True) == STEPS[3].model
    # step 5 moves to the cheaper skeleton the design search chose (see the next test)
    five, four = STEPS[5].model, STEPS[4].model
    assert five.full_resolution == four.full_resolution[:1] and four.transition and not five.transition


def test_parameter_budgets():
    assert (PARAM_BUDGET, STEP5_BUDGET) == (10_000, 8_000)  # the project's promise, pinned
    for step in (2, 3, 4, 5):
        assert count_parameters(STEPS[step].model()) < PARAM_BUDGET, step
    assert count_parameters(STEPS[5].model()) < STEP5_BUDGET


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_as_dict_from_dict_round_trip(name):
    """What result.json and a checkpoint record is the whole recipe: it comes back equal, also
    through JSON, where tuples become lists."""
    recipe = RECIPES[name]
    assert Recipe.from_dict(recipe.as_dict()) == recipe
    recorded = json.loads(json.dumps(recipe.as_dict()))
    assert Recipe.from_dict(recorded) == recipe
    assert recipe_from_checkpoint({"recipe": recorded}, "checkpoint.pt") == recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_as_dict_is_what_json_records(name):
    """result.json holds ``as_dict()`` through JSON, and callers compare the two (a seed sweep
    counting a finished seed, the report checking a recorded run): they must be equal."""
    recorded = RECIPES[name].as_dict()
    assert json.loads(json.dumps(recorded)) == recorded


def test_every_field_survives_the_round_trip():
    recipe = every_field_changed()
    assert Recipe.from_dict(json.loads(json.dumps(recipe.as_dict()))) == recipe
    assert recipe_from_checkpoint({"recipe": recipe.as_dict()}, "checkpoint.pt") == recipe


def test_the_design_baseline_is_step5_as_the_search_began():
    """Spelled out field by field so that the search's variants keep their meaning; it is what
    step 5 trained before the search, as the sweep of that recipe recorded it."""
    assert DESIGN_BASELINE.step == 5 and [getattr(DESIGN_BASELINE, t) for t in TEXTS] == [
        getattr(STEPS[5], t) for t in TEXTS
    ]
    assert DESIGN_BASELINE.model.transition and len(DESIGN_BASELINE.model.full_resolution) == 2
    assert count_parameters(DESIGN_BASELINE.model()) < PARAM_BUDGET
    previous = load_result(REPO / "results" / "frontier" / "previous_float32" / "seed1" / "result.json")
    assert Recipe.from_dict(previous["recipe"]) == DESIGN_BASELINE != STEPS[5]


def test_step5_is_a_recipe_the_design_search_recorded_on_validation():
    """The design is chosen on held-out training images: step 5's recipe, field for field, is one
    of the variants in results/design, run on at least five seeds of the validation split."""
    chosen = [
        sorted(folder.glob("seed*.json"))
        for folder in (REPO / "results" / "design").iterdir()
        if json.loads((folder / "seed1.json").read_text())["recipe"] == STEP5_PLAIN.as_dict()
    ]
    assert len(chosen) == 1 and len(chosen[0]) >= 5
    for path in chosen[0]:
        run = json.loads(path.read_text())
        assert run["eval_split"] == "validation" and run["recipe"] == STEP5_PLAIN.as_dict()


def test_model_from_dict():
    recorded = json.loads(json.dumps(dataclasses.asdict(Lite(full_resolution=(4, 6), low_resolution=(8,)))))
    assert model_from_dict("LiteNet", recorded) == Lite(full_resolution=(4, 6), low_resolution=(8,))
    assert model_from_dict("BaselineNet", {}) == Baseline()
    del recorded["dropout"]
    with pytest.raises(ValueError, match="fields"):  # a default must not stand in for a missing value
        model_from_dict("LiteNet", recorded)
    with pytest.raises(ValueError, match="unknown model 'DropoutNet'"):
        model_from_dict("DropoutNet", {})


@pytest.mark.parametrize("field, value", [("second_pool", 2), ("separable", True), ("activation", "silu")])
def test_a_field_added_later_is_recorded_only_where_it_is_used(field, value):
    """Records written before ``field`` existed lack it; the same net recorded now must equal
    them, or a resumed run or a checked sweep would see another recipe."""
    assert field not in model_to_dict(Lite())
    assert model_from_dict("LiteNet", json.loads(json.dumps(model_to_dict(Lite())))) == Lite()
    config = Lite(**{field: value})
    recorded = json.loads(json.dumps(model_to_dict(config)))
    assert recorded[field] == value and model_from_dict("LiteNet", recorded) == config


def test_zoom_is_recorded_only_where_it_is_used():
    """Like the architecture's later fields: recipes without zoom record what they did before it."""
    plain = STEPS[4]
    assert "scale" not in plain.as_dict() and Recipe.from_dict(plain.as_dict()) == plain
    zoomed = dataclasses.replace(plain, augment=Augment(degrees=5.0, scale=0.1))
    recorded = json.loads(json.dumps(zoomed.as_dict()))
    assert recorded["scale"] == 0.1 and Recipe.from_dict(recorded) == zoomed
    for bad in (0.0, 0, 1.0, -0.1, "0.1"):  # 0 would compare unequal to as_dict's record of the same recipe
        with pytest.raises(ValueError, match="a zoom between 0 and 1, or left out"):
            Recipe.from_dict(dict(plain.as_dict(), scale=bad))


def test_elastic_deformation_is_recorded_only_where_it_is_used():
    plain = STEPS[5]
    assert not {"elastic_alpha", "elastic_sigma"} & set(plain.as_dict())
    bent = dataclasses.replace(
        plain, augment=dataclasses.replace(plain.augment, elastic_alpha=34.0, elastic_sigma=4.0)
    )
    recorded = json.loads(json.dumps(bent.as_dict()))
    assert (recorded["elastic_alpha"], recorded["elastic_sigma"]) == (34.0, 4.0)
    assert Recipe.from_dict(recorded) == bent
    unsmoothed = dataclasses.replace(bent, augment=dataclasses.replace(bent.augment, elastic_sigma=0.0))
    assert Recipe.from_dict(json.loads(json.dumps(unsmoothed.as_dict()))) == unsmoothed
    widest = dataclasses.replace(
        bent, augment=dataclasses.replace(bent.augment, elastic_sigma=math.nextafter(ELASTIC_SIGMA_LIMIT, 0))
    )
    assert Recipe.from_dict(json.loads(json.dumps(widest.as_dict()))) == widest  # the limit, not below it
    for bad in (
        {"elastic_alpha": 34.0},
        {"elastic_sigma": 4.0},
        {"elastic_alpha": 0.0, "elastic_sigma": 4.0},
        {"elastic_alpha": 34, "elastic_sigma": 4.0},
        {"elastic_alpha": math.inf, "elastic_sigma": 4.0},
        {"elastic_alpha": 34.0, "elastic_sigma": 4},
    ):
        with pytest.raises(ValueError, match=r"an alpha above 0 and a sigma, or both left out for none"):
            Recipe.from_dict(dict(plain.as_dict(), **bad))
    for sigma in (-1.0, ELASTIC_SIGMA_LIMIT, 1e9, math.nan):  # Augment's own range, for records too
        with pytest.raises(ValueError, match=rf"^elastic_sigma {sigma!r}: from 0 to below 6.875$"):
            Recipe.from_dict(dict(plain.as_dict(), elastic_alpha=34.0, elastic_sigma=sigma))
        with pytest.raises(ValueError, match=rf"^elastic_sigma {sigma!r}: from 0 to below 6.875$"):
            Augment(elastic_alpha=34.0, elastic_sigma=sigma)


def test_the_elastic_sigma_limit_is_where_the_blur_stops_fitting_an_mnist_image():
    """Just under the limit a batch deforms; at it the blur's reflected kernel is wider than the
    image, which would fail mid-training had ``Augment`` let such a sigma through."""
    images = torch.zeros(2, 1, 28, 28)
    below = math.nextafter(ELASTIC_SIGMA_LIMIT, 0)
    field = elastic_displacement(images, Augment(elastic_alpha=34.0, elastic_sigma=below))
    assert field.shape == (2, 28, 28, 2) and field.isfinite().all()
    with pytest.raises(RuntimeError, match="[Pp]adding size"):  # the blur itself, which Augment guards
        _blur_matrix(28, ELASTIC_SIGMA_LIMIT, torch.device("cpu"))


@pytest.mark.parametrize(
    "name, value, what",
    [("clean_epochs", 3, "a recipe with augmentation"), ("warmup_epochs", 2, "a constant or step schedule")],
)
def test_counts_of_epochs_are_recorded_only_where_used(name, value, what):
    plain = STEPS[5]
    assert name not in plain.as_dict()
    changed = dataclasses.replace(plain, **{name: value})
    recorded = json.loads(json.dumps(changed.as_dict()))
    assert recorded[name] == value and Recipe.from_dict(recorded) == changed
    for bad in (0, -1, plain.epochs, plain.epochs + 1):
        with pytest.raises(ValueError, match=f"{name} {bad}: 1 to 14 of the 15 epochs of {what}, or left"):
            Recipe.from_dict(dict(plain.as_dict(), **{name: bad}))
    for bad in (2.0, "3"):
        with pytest.raises(TypeError, match=f"recipe.{name}: .* is not a int"):
            Recipe.from_dict(dict(plain.as_dict(), **{name: bad}))


@pytest.mark.parametrize(
    "name, bad",
    [
        ("epochs", 0),
        ("batch_size", 0),  # len(loader) would divide by it
        ("lr", -0.1),  # torch's SGD would refuse it with a traceback
        ("lr", 0.0),
        ("lr", math.nan),
        ("momentum", 1.0),
        ("momentum", -0.5),
        ("weight_decay", -1.0),
        ("label_smoothing", 1.0),
        ("ema_decay", 1.0),  # the average would never move
    ],
)
def test_from_dict_refuses_numbers_out_of_their_range(name, bad):
    with pytest.raises(ValueError, match=f"^{name} {bad!r}: "):
        Recipe.from_dict(dict(STEPS[5].as_dict(), **{name: bad}))
    with pytest.raises(MnistLiteError, match=f"^checkpoint.pt: a recipe this version cannot read .*{name}"):
        recipe_from_checkpoint({"recipe": dict(STEPS[5].as_dict(), **{name: bad})}, "checkpoint.pt")


def test_clean_epochs_need_an_augmentation_and_a_warm_up_a_schedule_without_its_own():
    unaugmented = dataclasses.replace(STEPS[5], augment=Augment()).as_dict()
    with pytest.raises(ValueError, match="clean_epochs 3: .* of a recipe with augmentation"):
        Recipe.from_dict(dict(unaugmented, clean_epochs=3))
    with pytest.raises(ValueError, match="warmup_epochs 2: .* of a constant or step schedule"):
        Recipe.from_dict(dict(STEPS[5].as_dict(), schedule="onecycle", warmup_epochs=2))


def test_the_optimizer_is_recorded_only_where_it_is_not_plain_sgd():
    """Every run recorded before the optimizer could change trained with SGD and reads the same."""
    assert all("optimizer" not in recipe.as_dict() for recipe in STEPS.values())
    for optimizer in OPTIMIZERS[1:]:
        changed = dataclasses.replace(STEPS[5], optimizer=optimizer)
        recorded = json.loads(json.dumps(changed.as_dict()))
        assert recorded["optimizer"] == optimizer and Recipe.from_dict(recorded) == changed
    for bad in ("sgd", "SGD", "rmsprop", 1, None):  # "sgd" would be a second record of the same recipe
        with pytest.raises((ValueError, TypeError), match="optimizer"):
            Recipe.from_dict(dict(STEPS[5].as_dict(), optimizer=bad))
    with pytest.raises(ValueError, match="optimizer 'nesterov' with no momentum"):
        Recipe.from_dict(dict(STEPS[5].as_dict(), optimizer="nesterov", momentum=0.0))


def test_test_time_shifts_are_recorded_only_where_they_are_used():
    """Recipes scored plainly record what they did before test-time shifts existed, so that the
    recorded runs of step 5's training recipe still match it; step 5 itself records its shift."""
    assert "test_time_shift" not in STEP5_PLAIN.as_dict() and STEPS[5].as_dict()["test_time_shift"] == 1
    assert STEP5_PLAIN != STEPS[5]
    recorded = json.loads(json.dumps(STEPS[5].as_dict()))
    assert Recipe.from_dict(recorded) == STEPS[5]
    assert Recipe.from_dict({k: v for k, v in recorded.items() if k != "test_time_shift"}) == STEP5_PLAIN
    for bad in (0, MAX_TEST_TIME_SHIFT + 1, -1, 1.0, True, "1"):  # 0 would compare unequal to the same recipe
        with pytest.raises((ValueError, TypeError), match="test_time_shift"):
            Recipe.from_dict(dict(recorded, test_time_shift=bad))


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda d: d.pop("architecture"), KeyError),  # recorded before the refactor
        (lambda d: d.update(model="DropoutNet"), ValueError),
        (lambda d: d.update(step=9), ValueError),
        (lambda d: d["architecture"].update(widths=[8]), ValueError),
    ],
    ids=["no-architecture", "old-model-name", "no-such-step", "unknown-field"],
)
def test_from_dict_refuses_what_as_dict_never_writes(change, error):
    """The errors its callers turn into one line (``recipe_from_checkpoint``, ``evaluate``)."""
    recorded = STEPS[5].as_dict()
    change(recorded)
    with pytest.raises(error):
        Recipe.from_dict(recorded)
    with pytest.raises(MnistLiteError, match="^checkpoint.pt: a recipe this version cannot read"):
        recipe_from_checkpoint({"recipe": recorded}, "checkpoint.pt")


def test_a_targets_numbers_come_from_its_recipe():
    changed = dataclasses.replace(STEPS[4], lr=0.05, milestones=(5, 10))
    assert "a rate of 0.05 " in changed.target and "after epochs 5 and 10." in changed.target
    assert f"a rate of {STEPS[4].lr:g} " in STEPS[4].target and "after epochs 8 and 12." in STEPS[4].target
    assert f"±{STEPS[5].augment.degrees:g}°" in STEPS[5].target and f"{TARGET_ACCURACY:g}%" in STEPS[5].target
    rotated = dataclasses.replace(STEPS[5], augment=Augment(degrees=12.5))
    assert "±12.5°" in rotated.target
    assert "four copies shifted by 1 pixel:" in STEPS[5].target
    assert "four copies shifted by 2 pixels:" in dataclasses.replace(STEPS[5], test_time_shift=2).target
    for recipe in STEPS.values():
        assert "{" not in recipe.target and "}" not in recipe.target


# --- hostile recorded recipes -------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
KEYS = sorted(STEPS[5].as_dict())


@st.composite
def recorded_recipes(draw):
    """A dict like those ``as_dict`` writes with some keys dropped or replaced by any JSON value
    (in the architecture too), or any JSON object at all."""
    if draw(st.booleans()):
        return draw(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), JSON_VALUES, max_size=8))
    recorded = json.loads(json.dumps(draw(st.sampled_from(list(RECIPES.values()))).as_dict()))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        if draw(st.booleans()):
            recorded.pop(key, None)
        else:
            recorded[key] = draw(JSON_VALUES)
    architecture = recorded.get("architecture")
    choice = draw(st.sampled_from(["keep", "replace", "change a field"]))
    if choice == "replace":
        recorded["architecture"] = draw(JSON_VALUES)
    elif choice == "change a field" and isinstance(architecture, dict) and architecture:
        architecture[draw(st.sampled_from(sorted(architecture)))] = draw(JSON_VALUES)
    return recorded


@settings(max_examples=50, deadline=None, derandomize=True)
@given(recorded_recipes())
def test_from_dict_of_any_recorded_recipe_raises_only_what_its_callers_catch(recorded):
    """``recipe_from_checkpoint`` and ``evaluate`` turn KeyError, TypeError and ValueError into
    one line; anything else would be a traceback. What it accepts, it records back unchanged."""
    try:
        recipe = Recipe.from_dict(recorded)
    except (KeyError, TypeError, ValueError, MnistLiteError):
        return
    recorded_again = as_lists(recipe.as_dict())
    assert {key: recorded[key] for key in recorded_again if key in recorded} == recorded_again


def as_lists(value):
    """``value`` with its tuples as lists, as JSON records them; the leaves themselves kept."""
    if isinstance(value, dict):
        return {key: as_lists(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_lists(item) for item in value]
    return value


@settings(max_examples=50, deadline=None, derandomize=True)
@given(recorded_recipes())
def test_recipe_from_checkpoint_of_any_recorded_recipe_is_a_recipe_or_one_error(recorded):
    try:
        recipe = recipe_from_checkpoint({"recipe": recorded}, "checkpoint.pt")
    except MnistLiteError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(recipe, Recipe)


# --- audits of the committed results/ -----------------------------------------------------------


@pytest.mark.results
@pytest.mark.parametrize("step", sorted(STEPS))
def test_recorded_step_runs_are_the_committed_recipes(step):
    """results/stepN/result.json records exactly this commit's recipe, and its model's size."""
    r = load_result(REPO / "results" / f"step{step}")
    assert Recipe.from_dict(r["recipe"]) == STEPS[step]
    assert r["model"] == STEPS[step].model.name
    assert r["params"] == count_parameters(STEPS[step].model())
    assert (r["train_limit"], r["test_limit"], r["eval_split"]) == (None, None, "test")


@pytest.mark.results
def test_budgets_of_the_recorded_runs():
    recorded = {step: load_result(REPO / "results" / f"step{step}")["params"] for step in STEPS}
    assert all(recorded[step] < PARAM_BUDGET for step in (2, 3, 4, 5)), recorded
    assert recorded[5] < STEP5_BUDGET, recorded
