"""The five steps as plain data: the single source of truth for what each step trains.

The notebooks, the command line and the README all read these recipes; a command-line
flag such as ``--lr`` makes a modified copy with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from mnist_lite.config import Augment, Baseline, Lite, model_from_dict, model_to_dict

# The success rule, in one place: every one of the last LAST_EPOCHS epochs at or above TARGET_ACCURACY
# (result.json's keys such as last5_min_test_acc spell the 5 into the file format).
TARGET_ACCURACY = 99.4  # percent
LAST_EPOCHS = 5
# issue #10's second robustness bar for step 5: the median over seeds of the per-seed minimum of the
# last LAST_EPOCHS epochs, so that the target holds with room
MEDIAN_BAR = 99.48
PARAM_BUDGET = 10_000  # steps 2-5
STEP5_BUDGET = 8_000  # the final model
MAX_EPOCHS = 15
MAX_TEST_TIME_SHIFT = 4  # pixels; a shift of more would move a digit's strokes off the 28x28 image


# fields a record leaves out at these values, so that every record made before the field existed
# reads the same as one made after it (and each recipe has one record)
LEFT_OUT_UNUSED = {
    "optimizer": "sgd",
    "warmup_epochs": 0,
    "scale": 0.0,
    "elastic_alpha": 0.0,
    "elastic_sigma": 0.0,  # with its alpha: recorded whenever there is a deformation
    "clean_epochs": 0,
    "test_time_shift": 0,
}


@dataclass(frozen=True)
class Recipe:
    step: int
    slug: str  # names the notebook, and the run in result.json
    title: str
    # the step's Target, one paragraph; {lr}, {batch_size}, {milestones}, {degrees}, {translate}, {dropout},
    # {shifted_views} and {accuracy} stand for the recipe's values, so that the text cannot drift
    # from them (see ``target``)
    target_template: str
    model: Baseline | Lite  # a config; calling it builds the net
    epochs: int = MAX_EPOCHS
    batch_size: int = 128
    lr: float = 0.01  # the constant rate, or the peak of the one-cycle schedule
    momentum: float = 0.9  # SGD's momentum, or Adam's first beta (the second is PyTorch's 0.999)
    weight_decay: float = 0.0
    optimizer: str = "sgd"  # one of OPTIMIZERS
    schedule: str = "constant"  # "constant", "onecycle", or "step": lr x0.1 at each of the milestones
    milestones: tuple[int, ...] = ()  # epochs after which the "step" schedule divides the rate by 10
    # the rate rises linearly over the first n epochs, batch by batch, to what the schedule gives
    # ("constant" or "step"; one-cycle has its own warm-up): the first steps of a net whose
    # BatchNorm statistics are still settling take small ones
    warmup_epochs: int = 0
    augment: Augment = field(default_factory=Augment)
    # the last n epochs train on the images as they are, without ``augment``: the net's final
    # steps see the distribution it is scored on
    clean_epochs: int = 0
    label_smoothing: float = 0.0  # of the training loss; evaluation always scores plain cross-entropy
    # 0: evaluate and keep the trained weights; else an exponential moving average of the weights
    # and BatchNorm statistics, updated after every step with this decay, is what is evaluated and kept
    ema_decay: float = 0.0
    # 0: evaluation classifies each image as it is; n: by the mean softmax probabilities over the
    # image and its four copies shifted n pixels right, left, down and up (test-time augmentation)
    test_time_shift: int = 0

    @property
    def target(self) -> str:
        milestones = " and ".join(map(str, self.milestones))
        return self.target_template.format(
            lr=f"{self.lr:g}",
            batch_size=self.batch_size,
            milestones=milestones,
            degrees=f"{self.augment.degrees:g}",
            translate=f"{self.augment.translate:.0%}",
            dropout=getattr(self.model, "dropout", 0.0),
            accuracy=f"{TARGET_ACCURACY:g}",
            shifted_views=shifted_views(self.test_time_shift),
        )

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.step:02d}_{self.slug}.ipynb"

    def as_dict(self) -> dict:
        """What ``result.json`` and checkpoints record of the recipe a run used; a field of
        ``LEFT_OUT_UNUSED`` is left out at its value there (the elastic sigma with its alpha)."""
        recorded = {
            "step": self.step,
            "name": self.slug,
            "model": self.model.name,
            "architecture": model_to_dict(self.model),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "optimizer": self.optimizer,
            "schedule": self.schedule,
            "milestones": list(self.milestones),
            "warmup_epochs": self.warmup_epochs,
            "rotation_degrees": self.augment.degrees,
            "translate": self.augment.translate,
            "scale": self.augment.scale,
            "elastic_alpha": self.augment.elastic_alpha,
            "elastic_sigma": self.augment.elastic_sigma,
            "clean_epochs": self.clean_epochs,
            "label_smoothing": self.label_smoothing,
            "ema_decay": self.ema_decay,
            "test_time_shift": self.test_time_shift,
        }
        unused = {key for key, default in LEFT_OUT_UNUSED.items() if recorded[key] == default}
        if "elastic_alpha" in unused:  # no deformation: its sigma means nothing
            unused.add("elastic_sigma")
        else:  # a deformation: a sigma of 0 (no smoothing) is part of it
            unused.discard("elastic_sigma")
        return {key: value for key, value in recorded.items() if key not in unused}

    @classmethod
    def from_dict(cls, saved: dict) -> Recipe:
        """The recipe ``as_dict`` recorded: the step's texts, every trained value from ``saved``.

        Raises KeyError, TypeError or ValueError for anything ``as_dict`` would not have written.
        """
        if not isinstance(saved, dict) or saved.get("step") not in STEPS:
            raise ValueError(f"no step {saved.get('step') if isinstance(saved, dict) else saved!r}")
        # no zoom is recorded by leaving it out; a zoom of 1 or more would shrink images to nothing
        if "scale" in saved and not (isinstance(saved["scale"], float) and 0 < saved["scale"] < 1):
            raise ValueError(f"scale {saved['scale']!r}: a zoom between 0 and 1, or left out for none")
        # no elastic deformation is recorded by leaving both out; a sigma of 0 leaves the field
        # unsmoothed (its upper bound is Augment's own)
        alpha, sigma = saved.get("elastic_alpha"), saved.get("elastic_sigma")
        if (alpha, sigma) != (None, None) and not (
            isinstance(alpha, float) and 0 < alpha < math.inf and isinstance(sigma, float)
        ):
            raise ValueError(
                f"elastic_alpha {alpha!r}, elastic_sigma {sigma!r}: an alpha above 0 and a sigma, "
                "or both left out for none"
            )
        if "test_time_shift" in saved and saved["test_time_shift"] not in range(1, MAX_TEST_TIME_SHIFT + 1):
            raise ValueError(
                f"test_time_shift {saved['test_time_shift']!r}: 1 to {MAX_TEST_TIME_SHIFT} pixels, "
                "or left out for none"
            )
        filled = {**LEFT_OUT_UNUSED, **saved}  # what a record leaves out is at its default
        recipe = dataclasses.replace(
            STEPS[filled["step"]],
            model=model_from_dict(filled["model"], filled["architecture"]),
            epochs=filled["epochs"],
            batch_size=filled["batch_size"],
            lr=filled["lr"],
            momentum=filled["momentum"],
            weight_decay=filled["weight_decay"],
            optimizer=filled["optimizer"],
            schedule=filled["schedule"],
            milestones=tuple(filled["milestones"]),
            warmup_epochs=filled["warmup_epochs"],
            augment=Augment(
                filled["rotation_degrees"],
                filled["translate"],
                filled["scale"],
                filled["elastic_alpha"],
                filled["elastic_sigma"],
            ),
            clean_epochs=filled["clean_epochs"],
            label_smoothing=filled["label_smoothing"],
            ema_decay=filled["ema_decay"],
            test_time_shift=filled["test_time_shift"],
        )
        _check_like(recipe, STEPS[recipe.step])
        # out of these ranges a hand-edited record would fail later, in the loader or the optimizer
        for name, value, within, expected in (
            ("epochs", recipe.epochs, recipe.epochs >= 1, "at least 1"),
            ("batch_size", recipe.batch_size, recipe.batch_size >= 1, "at least 1"),
            ("lr", recipe.lr, 0 < recipe.lr < math.inf, "a positive number"),
            ("momentum", recipe.momentum, 0 <= recipe.momentum < 1, "from 0 to below 1"),
            ("weight_decay", recipe.weight_decay, 0 <= recipe.weight_decay < math.inf, "0 or more"),
            ("label_smoothing", recipe.label_smoothing, 0 <= recipe.label_smoothing < 1, "from 0 to below 1"),
            ("ema_decay", recipe.ema_decay, 0 <= recipe.ema_decay < 1, "from 0 to below 1 (0: none)"),
        ):
            if not within:  # a NaN is within no range
                raise ValueError(f"{name} {value!r}: {expected}")
        if recipe.schedule not in SCHEDULES:
            raise ValueError(f"schedule {recipe.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        # plain SGD is recorded by leaving it out, so that it has one record
        if "optimizer" in saved and saved["optimizer"] not in OPTIMIZERS[1:]:
            raise ValueError(
                f"optimizer {saved['optimizer']!r}: one of {', '.join(OPTIMIZERS[1:])}, or left out for sgd"
            )
        # checked once the recipe is built: the bound is its epochs, and it needs an augmentation
        if "clean_epochs" in saved and not (
            recipe.augment and saved["clean_epochs"] in range(1, recipe.epochs)
        ):
            raise ValueError(
                f"clean_epochs {saved['clean_epochs']!r}: 1 to {recipe.epochs - 1} of the {recipe.epochs} "
                "epochs of a recipe with augmentation, or left out for none"
            )
        if "warmup_epochs" in saved and not (
            recipe.schedule != "onecycle" and saved["warmup_epochs"] in range(1, recipe.epochs)
        ):
            raise ValueError(
                f"warmup_epochs {saved['warmup_epochs']!r}: 1 to {recipe.epochs - 1} of the {recipe.epochs} "
                "epochs of a constant or step schedule, or left out for none"
            )
        if recipe.optimizer == "nesterov" and recipe.momentum <= 0:  # torch's SGD would refuse it
            raise ValueError("optimizer 'nesterov' with no momentum")
        return recipe


SCHEDULES = ("constant", "onecycle", "step")
OPTIMIZERS = ("sgd", "nesterov", "adam")  # SGD with momentum, the same with Nesterov's, Adam


def shifted_views(pixels: int) -> str:
    """What a recipe's ``test_time_shift`` averages over, in words, for every text that says it."""
    return f"the image and its four copies shifted by {pixels} pixel{'s' if pixels > 1 else ''}"


def _check_like(value, reference, name: str = "recipe") -> None:
    """``value`` has the types of ``reference``, field by field (a whole number may stand for a float)."""
    if dataclasses.is_dataclass(reference):
        if type(value) is not type(reference):
            raise TypeError(f"{name}: a {type(value).__name__}, expected a {type(reference).__name__}")
        for field_ in dataclasses.fields(reference):
            _check_like(getattr(value, field_.name), getattr(reference, field_.name), f"{name}.{field_.name}")
    elif isinstance(reference, tuple):
        if not isinstance(value, tuple) or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in value
        ):
            raise TypeError(f"{name}: {value!r} is not a list of whole numbers")
    elif isinstance(reference, float) and isinstance(value, int) and not isinstance(value, bool):
        return
    elif type(value) is not type(reference):
        raise TypeError(f"{name}: {value!r} is not a {type(reference).__name__}")


STEPS = {
    recipe.step: recipe
    for recipe in [
        Recipe(
            step=1,
            slug="setup",
            title="Set-up: data, pipeline and a first working model",
            target_template="Get the whole pipeline right on real MNIST: verified data, normalisation, "
            "a train/test loop and plots, with a plain convolutional net that is allowed to be big.",
            model=Baseline(),
        ),
        Recipe(
            step=2,
            slug="skeleton_gap",
            title="Skeleton with global average pooling",
            target_template="Fit the parameter budget: two padded 3x3 convolutions at full resolution, "
            "a max-pool and a 1x1 transition, four 3x3 convolutions at half resolution, and global average "
            "pooling in place of the dense head.",
            model=Lite(batch_norm=False),
        ),
        Recipe(
            step=3,
            slug="batchnorm",
            title="Batch normalisation",
            target_template="Make the narrow skeleton train fast and far: BatchNorm after every convolution.",
            model=Lite(),
        ),
        Recipe(
            step=4,
            slug="lr_scheduler",
            title="Step learning-rate schedule",
            target_template="Converge further and settle: a rate of {lr} while the net finds its way, "
            "divided by 10 after epochs {milestones}.",
            model=Lite(),
            lr=0.1,
            schedule="step",
            milestones=(8, 12),
        ),
        Recipe(
            step=5,
            slug="dropout_augmentation",
            title="Dropout and augmentation",
            target_template="Close the gap between train and test with rotations within ±{degrees}°, shifts "
            "of up to {translate} and channel-wise dropout of {dropout:.0%}, on a cheaper skeleton chosen on "
            "held-out training images (one convolution at full resolution, no transition, the last "
            "convolution dilated by 2, batches of {batch_size} at a rate of {lr}), each test image "
            "classified by the mean of the net's probabilities over {shifted_views}: the last five "
            "epochs at {accuracy}% on every seed, in half the time.",
            model=Lite(
                full_resolution=(8,), transition=0, low_resolution=(12, 16, 16, 16), dilated=1, dropout=0.02
            ),
            batch_size=256,
            lr=0.2,
            schedule="step",
            milestones=(8, 12),
            augment=Augment(degrees=12.0, translate=0.1),
            test_time_shift=1,
        ),
    ]
}

# Step 5 as trained, each image scored as it is: the recipe the design search chose in round 18
# (round 4's pick with its last convolution dilated); step 5 adds only its test-time shifts to it,
# chosen by tools/tta.py on the validation split.
STEP5_PLAIN = dataclasses.replace(STEPS[5], test_time_shift=0)

# The recipe the design search of tools/design.py varied: step 5 as it stood when the search
# began (two convolutions at full resolution). Every field is spelled out, the model's too, so that
# a change of step 5 or of the defaults cannot change what a recorded variant means; ``bench``
# times it beside today's step 5. (Its texts, title and Target, are today's step 5's and unused.)
DESIGN_BASELINE = dataclasses.replace(
    STEPS[5],
    model=Lite(
        full_resolution=(8, 16),
        padding=1,
        transition=8,
        low_resolution=(12, 14, 14, 16),
        second_pool=0,
        dilated=0,
        separable=False,
        batch_norm=True,
        dropout=0.02,
        activation="relu",
    ),
    epochs=MAX_EPOCHS,
    batch_size=128,
    lr=0.1,
    momentum=0.9,
    weight_decay=0.0,
    optimizer="sgd",
    schedule="step",
    milestones=(8, 12),
    warmup_epochs=0,
    augment=Augment(degrees=7.0, translate=0.0, scale=0.0, elastic_alpha=0.0, elastic_sigma=0.0),
    clean_epochs=0,
    label_smoothing=0.0,
    ema_decay=0.0,
    test_time_shift=0,
)

# Step 5 from round 4 to round 18, each image scored as it is: the design search's round 4 pick
# (tools/design.py's batch256_rotate12_translate), which the frontier, the paired checks of tools/
# (all but round 21's, which trained STEP5_PLAIN) and step 5's sweeps before round 18
# (results/round4_step5, step5_plain) recorded; ROUND4_STEP5 is the same with the test-time
# shifts, as step 5 trained and scored it.
ROUND4_PLAIN = dataclasses.replace(
    DESIGN_BASELINE,
    model=dataclasses.replace(
        DESIGN_BASELINE.model, full_resolution=(8,), transition=0, low_resolution=(12, 16, 16, 16)
    ),
    batch_size=256,
    lr=0.2,
    augment=dataclasses.replace(DESIGN_BASELINE.augment, degrees=12.0, translate=0.1),
)
ROUND4_STEP5 = dataclasses.replace(ROUND4_PLAIN, test_time_shift=1)
