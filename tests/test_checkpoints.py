"""Checkpoints load the safe way: a crafted file is refused before its payload can run."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from conftest import assert_clean_error

from mnist_lite import checkpoints
from mnist_lite.engine import fit
from mnist_lite.errors import MnistLiteError
from mnist_lite.steps import STEPS


class Payload:
    """Unpickling this creates ``marker``: the stand-in for any code a hostile file would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def crafted_checkpoint(path: Path, marker: Path) -> None:
    """A file that looks like a checkpoint (the format tag, plausible keys) and carries a payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"format": checkpoints.FORMAT, "recipe": STEPS[5].as_dict(), "history": [], "model": Payload(marker)},
        path,
    )


def test_the_payload_is_real(tmp_path):
    """Without the restriction the payload runs: the refusal below is what stops it."""
    marker = tmp_path / "ran"
    crafted_checkpoint(tmp_path / "checkpoint.pt", marker)
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("command", ["resume", "seeds"])
def test_a_crafted_checkpoint_is_refused_and_its_payload_never_runs(command, run_cli, tmp_path):
    marker = tmp_path / "ran"
    if command == "resume":
        crafted_checkpoint(tmp_path / "run" / "checkpoint.pt", marker)
        proc = run_cli("train", "--resume", tmp_path / "run")
    else:
        crafted_checkpoint(tmp_path / "sweep" / "seed1" / "checkpoint.pt", marker)
        proc = run_cli("seeds", "--seeds", "1", "--out", tmp_path / "sweep")
    assert_clean_error(proc, 1, "checkpoint.pt", "not a PyTorch checkpoint this project can load")
    assert not marker.exists()


@pytest.fixture
def trained(tmp_path):
    """A folder holding what one short epoch of ``fit`` writes."""
    fit(
        dataclasses.replace(STEPS[5], epochs=1),
        train_limit=256,
        test_limit=100,
        device="cpu",
        out=tmp_path,
        quiet=True,
        log=lambda line: None,
    )
    return tmp_path


def test_what_fit_saves_loads_with_weights_only(trained):
    tmp_path = trained
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert set(checkpoint) == set(checkpoints.FIELDS)
    assert checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")["settings"]["seed"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("recipe"), "its 'recipe' is missing or malformed"),
        (lambda c: c.update(history="not a list"), "its 'history' is missing or malformed"),
        (
            lambda c: c.update(format="mnist-lite-checkpoint-1"),
            "a checkpoint of another mnist-lite version (mnist-lite-checkpoint-1; this one reads "
            "mnist-lite-checkpoint-2); train afresh",
        ),
        (  # a newer version's file is not called older
            lambda c: c.update(format="mnist-lite-checkpoint-3"),
            "a checkpoint of another mnist-lite version (mnist-lite-checkpoint-3;",
        ),
        (lambda c: c.update(format="something else"), "not an mnist-lite training checkpoint"),
    ],
)
def test_a_damaged_checkpoint_is_one_error(trained, change, message):
    tmp_path = trained
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.raises(MnistLiteError, match=re.escape(message)):
        checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")
