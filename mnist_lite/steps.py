"""The five steps as plain data: the single source of truth for what each step trains.

The notebooks, the command line and the README all read these recipes; a command-line
flag such as ``--lr`` makes a modified copy with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mnist_lite import models
from mnist_lite.data import Augment

TARGET_ACCURACY = 99.4  # percent, held in each of the last epochs
PARAM_BUDGET = 10_000  # steps 2-5
STEP5_BUDGET = 8_000  # the final model
MAX_EPOCHS = 15


@dataclass(frozen=True)
class Recipe:
    step: int
    slug: str  # names the notebook, and the run in result.json
    title: str
    # the step's Target, one paragraph; {lr}, {milestones}, {degrees} and {accuracy} stand for the
    # recipe's values, so that the text cannot drift from them (see ``target``)
    target_template: str
    model: type
    epochs: int = MAX_EPOCHS
    batch_size: int = 128
    lr: float = 0.01  # the constant rate, or the peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"  # "constant", "onecycle", or "step": lr x0.1 at each of the milestones
    milestones: tuple[int, ...] = ()  # epochs after which the "step" schedule divides the rate by 10
    augment: Augment = field(default_factory=Augment)

    @property
    def target(self) -> str:
        milestones = " and ".join(map(str, self.milestones))
        return self.target_template.format(
            lr=f"{self.lr:g}", milestones=milestones, degrees=f"{self.augment.degrees:g}", accuracy=f"{TARGET_ACCURACY:g}"
        )

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.step:02d}_{self.slug}.ipynb"

    def as_dict(self) -> dict:
        """What ``result.json`` records of the recipe a run used."""
        return {
            "step": self.step,
            "name": self.slug,
            "model": self.model.__name__,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "schedule": self.schedule,
            "milestones": list(self.milestones),
            "rotation_degrees": self.augment.degrees,
            "translate": self.augment.translate,
        }


STEPS = {
    recipe.step: recipe
    for recipe in [
        Recipe(
            step=1,
            slug="setup",
            title="Set-up: data, pipeline and a first working model",
            target_template="Get the whole pipeline right on real MNIST: verified data, normalisation, "
            "a train/test loop and plots, with a plain convolutional net that is allowed to be big.",
            model=models.BaselineNet,
        ),
        Recipe(
            step=2,
            slug="skeleton_gap",
            title="Skeleton with global average pooling",
            target_template="Fit the parameter budget: a narrow skeleton of 3x3 convolutions, one max-pool "
            "with a 1x1 transition, and global average pooling in place of the dense head.",
            model=models.SkeletonNet,
        ),
        Recipe(
            step=3,
            slug="batchnorm",
            title="Batch normalisation",
            target_template="Make the narrow skeleton train fast and far: BatchNorm after every convolution.",
            model=models.BatchNormNet,
        ),
        Recipe(
            step=4,
            slug="lr_scheduler",
            title="Step learning-rate schedule",
            target_template="Converge further and settle: a rate of {lr} while the net finds its way, "
            "divided by 10 after epochs {milestones}.",
            model=models.BatchNormNet,
            lr=0.1,
            schedule="step",
            milestones=(8, 12),
        ),
        Recipe(
            step=5,
            slug="dropout_augmentation",
            title="Dropout and augmentation",
            target_template="Close the gap between train and test: random rotations within ±{degrees}° and "
            "light channel-wise dropout, so that the last five epochs hold {accuracy}% on every seed.",
            model=models.DropoutNet,
            lr=0.1,
            schedule="step",
            milestones=(8, 12),
            augment=Augment(degrees=7.0),
        ),
    ]
}
