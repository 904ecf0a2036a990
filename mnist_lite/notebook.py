"""What the step notebooks call: their parameters, the run, and the Result they print.

Importing it inside IPython makes an :class:`MnistLiteError` show as its one-line message
instead of a traceback from deep inside the package.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from mnist_lite.engine import Run, fit
from mnist_lite.errors import MnistLiteError
from mnist_lite.results import RESULTS, History
from mnist_lite.steps import STEPS, TARGET_ACCURACY

SMOKE = {"EPOCHS": 1, "TRAIN_LIMIT": 2000, "TEST_LIMIT": 1000}  # MNIST_LITE_SMOKE=1: about a minute for all five


def smoke() -> bool:
    return os.environ.get("MNIST_LITE_SMOKE", "") not in ("", "0")


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


def train(step: int, epochs=None, seed=1, device="auto", train_limit=None, test_limit=None) -> Run:
    """Run ``step``'s recipe. Only the full, default run records into ``results/stepN``; a smoke
    or otherwise modified run writes to a temporary folder, so it can never overwrite them."""
    recipe = STEPS[step]
    recorded = epochs in (None, recipe.epochs) and seed == 1 and train_limit is None and test_limit is None
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=epochs)
    out = RESULTS / f"step{step}" if recorded else Path(tempfile.mkdtemp(prefix=f"mnist-lite-step{step}-"))
    print(f"writing to {out}")
    return fit(recipe, seed=seed, device=device, train_limit=train_limit, test_limit=test_limit, out=out)


def format_result(result: dict) -> str:
    """The Result block: every number computed from the run's own history."""
    history = History(result["history"])
    best = max(history.epochs, key=lambda row: row["test_acc"])
    above = [str(epoch) for epoch in history.epochs_at_or_above(TARGET_ACCURACY)]
    last = ", ".join(f"{acc:.2f}" for acc in result["last5_test_acc"])
    limits = "" if result["train_limit"] is None else f" (train limit {result['train_limit']}, test limit {result['test_limit']})"
    return "\n".join(
        [
            f"step {result['step']}: {result['model']}, {result['params']:,} parameters",
            f"epochs run:                      {len(history)} of {result['epochs']}{limits}",
            f"best train accuracy:             {result['best_train_acc']:.2f}%",
            f"best test accuracy:              {best['test_acc']:.2f}% (epoch {best['epoch']})",
            f"test accuracy, last {len(result['last5_test_acc'])} epochs:    {last}",
            f"minimum of the last epochs:      {result['last5_min_test_acc']:.2f}%",
            f"epochs at or above {TARGET_ACCURACY}%:       {', '.join(above) or 'none'}",
            f"training time:                   {result['train_seconds']:.0f} s on {result['device']} "
            f"({result['device_name']})",
        ]
    )


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
