"""Progress bars where someone watches them, plain iteration where nobody does.

In a notebook a tqdm bar is a widget. A headless execution (nbclient, nbconvert) has no frontend
to draw it, so the saved notebook keeps the widget's text fallback frozen at its first frame,
"0%| | 0/469", one per epoch, and that is what GitHub shows. A kernel cannot tell whether a
frontend is watching, so a headless run says so: ``MNIST_LITE_PROGRESS=0`` (what ``reproduce``
sets) or a smoke run, ``MNIST_LITE_SMOKE=1`` (what CI and the README's ``nbconvert`` command
run). Those runs keep the per-epoch log lines alone; Jupyter, Colab and terminals keep their bars.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

PROGRESS = "MNIST_LITE_PROGRESS"  # 0: no bars
SMOKE = "MNIST_LITE_SMOKE"  # set: a short run on part of the data, never watched


def switched_on(name: str) -> bool:
    """Whether the environment variable ``name`` is set to anything but empty or 0."""
    return os.environ.get(name, "") not in ("", "0")


def progress(iterable, **tqdm_kwargs):
    """``iterable`` behind a tqdm bar, or bare in a headless run (see above).

    The bar is removed when it completes (``leave=False`` unless given): the epoch's log line
    that follows it says the same, and fifteen finished bars would bury those lines.
    """
    if os.environ.get(PROGRESS) == "0" or switched_on(SMOKE):
        return iterable
    return tqdm(iterable, **{"leave": False, **tqdm_kwargs})
