"""Shared fixtures: the repository root, copies of the real MNIST files and a real CLI subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# One intra-op thread unless the caller says otherwise: on a small machine that is busy with other
# work, OpenMP's spinning threads make a 2-thread torch ~20x slower than a 1-thread one. Set before
# torch is imported so that every subprocess (CLI, notebook kernels) inherits it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _no_data_override(monkeypatch):
    """Tests read the repository's data/ unless they point elsewhere themselves."""
    monkeypatch.delenv("MNIST_LITE_DATA", raising=False)


@pytest.fixture
def data_copy(tmp_path):
    """``data_copy(names=None, folder="data")``: a fresh folder holding copies of the shipped
    ``.gz`` files (all four, or those named), to break one of them in a test."""

    def make(names=None, folder="data") -> Path:
        target = tmp_path / folder
        target.mkdir()
        for path in sorted(DATA.glob("*.gz")):
            if names is None or path.name in names:
                shutil.copy(path, target / path.name)
        return target

    return make


def _run_cli(*args, cwd, timeout=300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MNIST_LITE_DATA"}
    return subprocess.run(
        [sys.executable, "-m", "mnist_lite", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def run_cli(tmp_path_factory):
    """``run_cli(*args, cwd=None, timeout=300)``: ``python -m mnist_lite ARGS`` as a real subprocess
    (in a scratch folder unless ``cwd`` is given), returning the ``CompletedProcess``."""
    scratch = tmp_path_factory.mktemp("cwd")

    def run(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
        return _run_cli(*args, cwd=cwd or scratch, timeout=timeout)

    return run
