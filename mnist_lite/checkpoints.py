"""Training checkpoints: the one place that saves, loads and validates them.

A checkpoint holds only tensors and plain values (numbers, strings, lists, dicts), so it loads
with ``torch.load(weights_only=True)``: unpickling cannot construct arbitrary objects, and a
crafted file cannot run code. See SECURITY.md.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mnist_lite.errors import MnistLiteError
from mnist_lite.results import save_torch

FORMAT = "mnist-lite-checkpoint-2"  # 2: the recipe records its architecture, the settings their own dict
# key -> the type its value must have; what ``fit`` writes, and all that a resume reads
FIELDS = {
    "format": str,
    "recipe": dict,
    "settings": dict,
    "device": str,
    "model": dict,
    "averaged": (dict, type(None)),  # the weight average, for a recipe with ema_decay
    "optimizer": dict,
    "scheduler": (dict, type(None)),
    "rng": torch.Tensor,
    "cuda_rng": (torch.Tensor, type(None)),
    "history": list,
}


HISTORY_ROW = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "lr",
    "seconds",
)  # engine.run_epoch's


def save_checkpoint(path, **fields) -> None:
    """Write a checkpoint of exactly ``FIELDS`` (``format`` is added), atomically."""
    assert set(fields) == set(FIELDS) - {"format"}, sorted(set(fields) ^ (set(FIELDS) - {"format"}))
    save_torch(path, {"format": FORMAT, **fields})


def load_state(path) -> object:
    """Whatever ``path`` holds, loaded the safe way; a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise MnistLiteError(f"{path}: file not found" + (" (a folder)" if path.is_dir() else ""))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load raises many kinds for a bad or hostile file
        reason = (
            "it holds objects other than tensors and plain values"
            if "weights_only" in str(error)
            else type(error).__name__
        )
        raise MnistLiteError(f"{path}: not a PyTorch checkpoint this project can load ({reason})") from None


def load_checkpoint(path) -> dict:
    """A training checkpoint written by ``fit``, with every field of the right type."""
    checkpoint = load_state(path)
    if not isinstance(checkpoint, dict) or not str(checkpoint.get("format", "")).startswith(
        "mnist-lite-checkpoint"
    ):
        raise MnistLiteError(f"{path}: not an mnist-lite training checkpoint")
    if checkpoint["format"] != FORMAT:
        raise MnistLiteError(
            f"{path}: a checkpoint of another mnist-lite version ({checkpoint['format']}; this one reads "
            f"{FORMAT}); train afresh"
        )
    for key, kind in FIELDS.items():
        if not isinstance(checkpoint.get(key), kind):
            raise MnistLiteError(
                f"{path}: a damaged checkpoint (its {key!r} is missing or malformed); train afresh"
            )
    if not all(isinstance(row, dict) and set(HISTORY_ROW) <= set(row) for row in checkpoint["history"]):
        raise MnistLiteError(
            f"{path}: a damaged checkpoint (its 'history' is missing or malformed); train afresh"
        )
    return checkpoint


def resumable(settings: dict) -> bool:
    """Whether a run with these settings (a checkpoint's, or ``Settings`` as a dict) can be resumed
    exactly: not with ``--loader torchvision``, whose DataLoader workers take their seeds from the
    global RNG when first iterated, so a resumed process would see other batches than the
    uninterrupted run."""
    return settings.get("loader") != "torchvision"


def is_unfinished(path) -> bool:
    """Whether ``path`` is a checkpoint of a run that can be resumed and has epochs left: a fresh
    run must not overwrite it. A file this version cannot resume, or a run that cannot be resumed,
    is not such a run."""
    if not Path(path).exists():
        return False
    try:
        checkpoint = load_checkpoint(path)
    except MnistLiteError:
        return False
    epochs_left = len(checkpoint["history"]) < checkpoint["recipe"].get("epochs", 0)
    return epochs_left and resumable(checkpoint["settings"])


def kept_weights(checkpoint: dict) -> dict:
    """The weights a run keeps and evaluates: the average's where the recipe keeps one (its
    state_dict is ``AveragedModel``'s: ``module.``-prefixed, plus a counter), else the model's."""
    if checkpoint["averaged"] is None:
        return checkpoint["model"]
    prefix = "module."
    return {
        key[len(prefix) :]: value for key, value in checkpoint["averaged"].items() if key.startswith(prefix)
    }
