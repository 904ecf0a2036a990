"""What the step notebooks call: their parameters, the run, and the Result they print.

A reader's run never touches the record: only ``reproduce`` (which sets ``MNIST_LITE_RECORD=1``
for the notebooks it executes) writes a full, default run into ``results/stepN``. Importing
this module inside IPython makes an :class:`MnistLiteError` show as its one-line message
instead of a traceback from deep inside the package.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from mnist_lite import progress
from mnist_lite.engine import Run, fit
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import RESULTS
from mnist_lite.results import SECONDS_LABEL, History, load_result
from mnist_lite.steps import STEPS, TARGET_ACCURACY

# the parameters cell's, each read by env(); MNIST_LITE_SMOKE=1 sets SMOKE's (about a minute for all five)
PARAMETERS = ("EPOCHS", "SEED", "DEVICE", "TRAIN_LIMIT", "TEST_LIMIT")
SMOKE = {"EPOCHS": 1, "TRAIN_LIMIT": 2000, "TEST_LIMIT": 1000}
RECORD = "MNIST_LITE_RECORD"  # set to 1 by `reproduce` alone
WHY_RUNS_DIFFER = (
    "A run differs from the recorded one where the arithmetic differs: on a GPU (other kernels, and "
    "cuDNN picks algorithms that are not deterministic), on another CPU or in another precision. There "
    "the same seed gives another run: on a second CPU, step 5's seeds kept only part of their outcome "
    '(docs/experiments.md, "The same sweep on another CPU"). The README\'s robustness section shows how '
    "much seeds vary."
)


def smoke() -> bool:
    """Whether this is a smoke run (``MNIST_LITE_SMOKE=1``), which also turns the progress bars off."""
    return progress.switched_on(progress.SMOKE)


def env(name: str, default=None):
    """Parameter ``name`` from ``$MNIST_LITE_<name>``, else its smoke value in smoke mode, else ``default``.

    A value from the environment takes the type of the default (int when the default is None).
    """
    text = os.environ.get(f"MNIST_LITE_{name}")
    if text is None:
        return SMOKE.get(name, default) if smoke() else default
    if isinstance(default, str):
        return text
    lowest = 0 if name == "SEED" else 1
    if not text.strip().isdigit() or int(text) < lowest:
        raise MnistLiteError(f"MNIST_LITE_{name}={text!r}: expected a whole number of at least {lowest}")
    return int(text)


def show_recipe(step: int) -> None:
    """The model config the step builds, and the rest of its recipe as plain values."""
    recipe = STEPS[step]
    print(f"model            {recipe.model}")
    for name, value in recipe.as_dict().items():
        if name not in ("step", "name", "model", "architecture"):
            print(f"{name:<16} {value}")


def train(step: int, epochs=None, seed=1, device="auto", train_limit=None, test_limit=None) -> Run:
    """Run ``step``'s recipe and keep its files in a fresh temporary folder of its own.

    Running a notebook never replaces the record: only a full default run (the recipe's epochs,
    seed 1, all the data) executed by ``reproduce``, which sets ``MNIST_LITE_RECORD=1``, is
    written into ``results/stepN``. Any other run goes to a new folder under the system's
    temporary directory, whose name is printed: always writable, in Colab too, and never holding
    an earlier run that ``fit`` would refuse to start over.
    """
    recipe = STEPS[step]
    default = epochs in (None, recipe.epochs) and seed == 1 and train_limit is None and test_limit is None
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=epochs)
    if default and os.environ.get(RECORD) == "1" and RESULTS is not None:
        out = RESULTS / f"step{step}"
        print(f"recording the run into results/step{step}")
    else:
        out = Path(tempfile.mkdtemp(prefix=f"mnist-lite-step{step}-"))
        print(f"writing to {out}; the recorded run in results/step{step} stays as it is")
    return fit(recipe, seed=seed, device=device, train_limit=train_limit, test_limit=test_limit, out=out)


def recorded_result(step: int) -> dict | None:
    """The recorded run of ``step``, if this checkout has one."""
    path = RESULTS / f"step{step}" / "result.json" if RESULTS is not None else None
    return load_result(path) if path is not None and path.is_file() else None


def _scored_with_shifts(result: dict) -> bool:
    """Whether a run was scored with test-time shifts (step 5): its rows also keep the images alone."""
    return "plain_test_acc" in result["history"][-1]


def _summary_rows(result: dict, without_shifts: bool) -> list[tuple[str, str]]:
    """The Result's rows; with ``without_shifts``, also the last epochs scored without test-time
    shifts ("-" for a run that had none)."""
    history = History(result["history"])
    best = max(history.epochs, key=lambda row: row["test_acc"])
    above = [str(epoch) for epoch in history.epochs_at_or_above(TARGET_ACCURACY)]
    last = result["last5_test_acc"]
    limited = result["train_limit"] is not None
    limits = f" (limits {result['train_limit']}/{result['test_limit']})" if limited else ""
    alone = history.last("plain_test_acc") if _scored_with_shifts(result) else []
    return [
        ("parameters", f"{result['params']:,}"),
        ("epochs run", f"{len(history)} of {result['epochs']}{limits}"),
        ("best train accuracy", f"{result['best_train_acc']:.2f}%"),
        ("best test accuracy", f"{best['test_acc']:.2f}% (epoch {best['epoch']})"),
        (f"test accuracy, last {len(last)}", ", ".join(f"{a:.2f}" for a in last)),
        ("minimum of the last epochs", f"{result['last5_min_test_acc']:.2f}%"),
        *(
            [(f"without the shifts, last {len(last)}", ", ".join(f"{a:.2f}" for a in alone) or "-")]
            if without_shifts
            else []
        ),
        (f"epochs at or above {TARGET_ACCURACY}%", ", ".join(above) or "none"),
        (SECONDS_LABEL, f"{result['train_seconds']:.0f} s"),
        ("trained on", f"{result['device_name']}, {result.get('dtype', 'float32')}"),  # older runs: float32
    ]


def format_result(result: dict, recorded: dict | None = None) -> str:
    """The Result block: every number from the run's own record (its history, and the summary
    ``History`` computes from it) and, for a run that is not the recorded one, the recorded run's
    beside it."""
    title = f"step {result['step']}: {result['model']}"
    runs = (
        [result] if recorded is None or recorded.get("history") == result["history"] else [result, recorded]
    )
    without_shifts = any(_scored_with_shifts(run) for run in runs)
    rows = [_summary_rows(run, without_shifts) for run in runs]
    width = max(len(name) for run_rows in rows for name, _ in run_rows) + 2
    if len(runs) == 1:
        return "\n".join([title, *(f"{name + ':':<{width}}{value}" for name, value in rows[0])])
    column = max(len(value) for _, value in rows[0]) + 2
    lines = [title, f"{'':<{width}}{'this run':<{column}}recorded (results/step{recorded['step']})"]
    for (name, mine), (_, theirs) in zip(*rows, strict=True):
        lines.append(f"{name + ':':<{width}}{mine:<{column}}{theirs}")
    return "\n".join([*lines, "", WHY_RUNS_DIFFER])


def _one_line(shell, etype, value, tb, tb_offset=None) -> list[str]:
    """Show ``error: <message>`` as the cell's error, in place of the traceback.

    IPython's ``run_code`` ignores what a custom handler returns, so the handler shows it: through
    ``_showtraceback``, which the kernel turns into the cell's error output and execute reply.
    """
    lines = [f"error: {value}"]
    shell._showtraceback(etype, value, lines)
    return lines


try:  # inside IPython: one line for our errors, as on the command line
    get_ipython().set_custom_exc((MnistLiteError,), _one_line)  # type: ignore[name-defined]  # noqa: F821
except NameError:
    pass
