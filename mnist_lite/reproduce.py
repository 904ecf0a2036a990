"""``reproduce``: execute the step notebooks in place with full runs and record them, then
regenerate the README's sections and ``architecture.png``.

Recording is this command's explicit choice: its kernels run with ``MNIST_LITE_RECORD=1``, the
one setting under which ``notebook.train`` writes into ``results/stepN``, and with
``MNIST_LITE_PROGRESS=0``, so that the committed notebooks hold the per-epoch lines rather than
progress bars frozen at 0%. The notebooks' parameters that the caller's environment may set
(``MNIST_LITE_SMOKE``, ``MNIST_LITE_EPOCHS``, ...) are kept from the kernels: every run is full.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mnist_lite.device import device_name, pick_device
from mnist_lite.errors import MnistLiteError
from mnist_lite.notebook import PARAMETERS, RECORD
from mnist_lite.paths import PACKAGE, in_checkout
from mnist_lite.plots import draw_architecture
from mnist_lite.progress import PROGRESS, SMOKE
from mnist_lite.report import update_docs
from mnist_lite.results import ensure_writable, write_atomic, write_json
from mnist_lite.steps import STEPS

HEADLESS = {RECORD: "1", PROGRESS: "0"}
OVERRIDES = {SMOKE, *(f"MNIST_LITE_{name}" for name in PARAMETERS)}  # what would make a run other than full


def kernel_environment() -> dict[str, str]:
    """This process's environment for the notebooks' kernels, less the overrides, plus ``HEADLESS``."""
    return {name: value for name, value in os.environ.items() if name not in OVERRIDES} | HEADLESS


def read_timings(record: Path) -> dict[int, dict]:
    """The timings already recorded, by step; read before any notebook runs, so that a damaged
    record stops the command before hours of training rather than after."""
    if not record.exists():
        return {}
    try:
        return {int(entry["step"]): entry for entry in json.loads(record.read_text())["notebooks"]}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        problem = type(error).__name__
        raise MnistLiteError(f"{record}: not a reproduction record ({problem}); move it away") from None


def failure(notebook, error: CellExecutionError) -> str:
    """Where and why an executed ``notebook`` failed: "cell N: <its error line>", N counting every
    cell from 1. The line is the package's own one-line message, as the notebook shows it (see
    ``notebook._one_line``), else the exception's name and the first line of its message."""
    for number, cell in enumerate(notebook.cells, start=1):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                shown = output.traceback[0] if len(output.traceback) == 1 else ""
                line = shown if shown.startswith("error: ") else f"{output.ename}: {output.evalue}"
                return f"cell {number}: {line.strip().splitlines()[0]}"
    return f"a cell: {error.ename}: {error.evalue}"


def source_digest() -> str:
    """A digest of the package's files, its code and data (``SHA256SUMS``), each with the time it was
    last written. Each notebook's kernel imports the package when it starts, so an edit made while
    the series runs would give its notebooks different code; the times catch an edit that was
    reverted before the check, while a kernel may have imported it."""
    digest = hashlib.sha256()
    # not an editor's swap file, nor Emacs's lock file (.#engine.py, a link to nowhere)
    files = [path for path in PACKAGE.rglob("*.py") if path.is_file()] + [PACKAGE / "SHA256SUMS"]
    for path in sorted(files):
        name, written = path.relative_to(PACKAGE).as_posix(), path.stat().st_mtime_ns
        digest.update(f"{name}\0{written}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def execute(path: Path):
    """The notebook at ``path``, executed headless in its folder; the file itself is not written,
    and a failing cell is one ``MnistLiteError`` naming the notebook, the cell and its error."""
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("widgets", None)  # an earlier run's widget state; nbclient adds it back only if any
    folder = {"metadata": {"path": path.parent}}  # the kernel's working directory, as in Jupyter
    client = NotebookClient(notebook, timeout=None, kernel_name="python3", resources=folder)
    try:
        client.execute(env=kernel_environment())
    except CellExecutionError as error:
        raise MnistLiteError(f"{path}: {failure(notebook, error)}") from None
    return notebook


def reproduce(steps: Iterable[int] = STEPS) -> None:
    """Execute the step notebooks in place (full runs, recorded), timing each into
    ``results/reproduce.json``; then the README's sections and ``architecture.png``.

    A notebook that fails leaves its file and ``reproduce.json`` as they were, and stops the
    command; the notebooks executed before it stay executed. So does a notebook that finishes
    after the package's files have changed since the command started: its kernel may have run
    other code than the notebooks before it, so the whole series is to be run again (the kernel
    has already recorded its run in ``results/stepN``).
    """
    repo, record = in_checkout("."), in_checkout("results/reproduce.json")
    ensure_writable(record.parent)  # refused now, not after the notebooks have run
    timings = read_timings(record)
    machine = {
        "device_name": device_name(pick_device()),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    code, steps = source_digest(), list(steps)
    for step in steps:
        path = repo / STEPS[step].notebook
        print(f"executing {STEPS[step].notebook} ...", flush=True)
        start = time.perf_counter()
        notebook = execute(path)
        if source_digest() != code:
            raise MnistLiteError(
                f"{path}: {PACKAGE.name}/ changed while the series ran, so this notebook may have run other "
                f"code than those before it; it was not written (results/step{step} holds its run): once "
                f"the edit is done, run reproduce --steps {' '.join(map(str, steps))} again"
            )
        write_atomic(path, nbformat.writes(notebook).encode())
        timings[step] = {"step": step, "seconds": round(time.perf_counter() - start, 1), **machine}
        notebooks = [timings[s] for s in sorted(timings)]
        total = round(sum(t["seconds"] for t in notebooks), 1)
        write_json(record, {"notebooks": notebooks, "total_seconds": total})
    update_docs()
    draw_architecture(STEPS[5].model(), repo / "architecture.png")
    print("notebooks executed; README and architecture.png regenerated")
