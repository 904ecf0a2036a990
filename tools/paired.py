"""The loop of the paired checks (``tools/precise_bn.py``, ``tools/tta.py``): a recipe (step 5's
from round 4 to round 18, ``steps.ROUND4_PLAIN``, unless a check names another; the records hold
it) trained once for a seed, every epoch scored several ways. Any difference between the ways is
theirs, not a seed's luck, as long as scoring changes nothing the training reads next."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mnist_lite import steps
from mnist_lite.data import TensorLoader, make_loaders
from mnist_lite.device import DTYPES, device_name
from mnist_lite.engine import make_optimizer, train_epoch
from mnist_lite.steps import Recipe

DTYPE = "float32"  # the forward pass in training, as in step 5's final runs


def train_and_score(
    seed: int,
    score: Callable[[torch.nn.Module, TensorLoader, TensorLoader], dict],
    eval_split: str = "validation",
    train_limit: int | None = None,
    log: Callable[[dict], None] | None = None,
    recipe: Recipe | None = None,
) -> dict:
    """Train ``recipe`` (round 4's recipe of step 5 if none) with ``seed`` on the training images
    of ``eval_split`` and after every epoch add ``score(model, train, scored)`` to the epoch's row
    of the history (``scored`` is the loader of the split's evaluation images), passing the row to
    ``log`` if given.

    The loop is ``fit``'s for a recipe that keeps no average of its weights (which is what
    ``fit`` would evaluate instead). Returns the fields every paired record has.
    """
    # scored by the tool's own ways alone; looked up when called so that a test can shorten it
    recipe = recipe or steps.ROUND4_PLAIN
    device = torch.device("cpu")
    torch.manual_seed(seed)  # then the loaders, the model and the optimiser, in fit's order
    train, scored = make_loaders(
        "fast", recipe.batch_size, device, recipe.augment, train_limit=train_limit, eval_split=eval_split
    )
    model = recipe.model().to(device)
    optimizer, scheduler = make_optimizer(recipe, model, len(train))
    history = []
    for epoch in range(1, recipe.epochs + 1):
        train_epoch(
            model,
            train,
            optimizer,
            scheduler,
            dtype=DTYPES[DTYPE],
            label_smoothing=recipe.label_smoothing,
            epoch=epoch,
            quiet=True,
        )
        history.append({"epoch": epoch, **score(model, train, scored)})
        if log:
            log(history[-1])
    return {
        "seed": seed,
        "recipe": recipe.as_dict(),
        "train_limit": train_limit,
        "eval_split": eval_split,
        "dtype": DTYPE,
        "device_name": device_name(device),  # the CPU, its vector instructions and threads
        "torch_version": torch.__version__,
        "history": history,
    }
