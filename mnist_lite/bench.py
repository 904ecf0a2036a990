"""``bench``: seconds per training epoch of the default against the classic pipeline and the
bfloat16 option, interleaved.

The setups, each a recipe, an input pipeline and a precision:

* ``classic``: the step's model with the classic pipeline (``torchvision`` datasets, PIL
  transforms, worker processes) in float32: what the fast pipeline is measured against;
* ``default``: the step's recipe with every default: the fast pipeline, float32;
* ``bfloat16``: the same with ``--dtype bfloat16`` (autocast), where the device has native
  bfloat16 arithmetic; left out elsewhere;
* ``previous_step5`` (step 5 only): step 5's recipe before the design search
  (``steps.DESIGN_BASELINE``), fast pipeline, float32: what "half the time" is measured against;
* ``no_augmentation`` (a recipe that augments): the default without its augmentation, the least
  that any pipeline can cost this model, so the classic pipeline's time over it is the most that
  a faster pipeline could gain against the classic one.

Each trains from seed 0's initial weights with the same ``train_epoch``. Epochs alternate
(classic, default, bfloat16, previous_step5, no_augmentation, classic, ...) after one warm-up
epoch of each, so that a machine slowing down or speeding up affects all alike.

For a recipe scored with test-time shifts (step 5), the test set is then scored with the
default's model, with the shifts and without them, interleaved: what the shifts add to an epoch
beside its training.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from mnist_lite.config import Augment
from mnist_lite.data import make_loaders
from mnist_lite.device import DTYPES, device_name, has_native_bfloat16, pick_device
from mnist_lite.engine import evaluate, make_optimizer, train_epoch
from mnist_lite.models import count_parameters
from mnist_lite.results import read_machine_runs, write_machine_run
from mnist_lite.steps import DESIGN_BASELINE, Recipe


@dataclass(frozen=True)
class Setup:
    name: str
    recipe: Recipe
    loader: str
    dtype: str  # resolved: bfloat16 or float32


def interleaved(
    time_once: Callable[[str], float], names: Iterable[str], repeats: int, log=None
) -> dict[str, list[float]]:
    """``repeats`` timings of ``time_once(name)`` for each name, the names taking turns after one
    untimed warm-up each, so that noise drifting over the run falls on all of them alike; ``log``,
    if given, hears ``(repeat, name, seconds)`` after each."""
    names = list(names)
    for name in names:
        time_once(name)
    seconds = {name: [] for name in names}
    for repeat in range(1, repeats + 1):
        for name in names:
            seconds[name].append(time_once(name))
            if log:
                log(repeat, name, seconds[name][-1])
    return seconds


def setups(recipe: Recipe, device: torch.device) -> list[Setup]:
    chosen = [Setup("classic", recipe, "torchvision", "float32"), Setup("default", recipe, "fast", "float32")]
    if has_native_bfloat16(device):
        chosen.append(Setup("bfloat16", recipe, "fast", "bfloat16"))
    if recipe.step == DESIGN_BASELINE.step and recipe != DESIGN_BASELINE:
        chosen.append(Setup("previous_step5", DESIGN_BASELINE, "fast", "float32"))
    if recipe.augment:
        chosen.append(
            Setup("no_augmentation", dataclasses.replace(recipe, augment=Augment()), "fast", "float32")
        )
    return chosen


OUT_FIX = "move it away or choose another --out"  # what to do about an --out the benchmark cannot add to


def _timed(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds that ``work()`` took; on a GPU, with the work queued before it and by it finished
    inside the timing, not after it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _time_scoring(recipe: Recipe, model, device, repeats: int, data_dir, limit) -> dict | None:
    """For a recipe scored with test-time shifts: seconds to score the test set (its first
    ``limit`` images) with the shifts and each image alone, interleaved after a warm-up of each,
    with the default's model as trained by the benchmark. None for a recipe without shifts."""
    if not recipe.test_time_shift:
        return None
    _, test_loader = make_loaders(
        "fast", recipe.batch_size, device, folder=data_dir, train_limit=1, test_limit=limit
    )
    ways = {"plain": 0, "shifted": recipe.test_time_shift}

    seconds = interleaved(
        lambda way: _timed(device, lambda: evaluate(model, test_loader, ways[way])), ways, repeats
    )
    print(", ".join(f"scoring {way}: {statistics.median(s):.2f} s" for way, s in seconds.items()), flush=True)
    return {
        "test_images": len(test_loader.labels),
        "test_time_shift": recipe.test_time_shift,
        **{f"{way}_seconds": [round(x, 3) for x in s] for way, s in seconds.items()},
        **{f"median_{way}_seconds": round(statistics.median(s), 3) for way, s in seconds.items()},
    }


def summary_text(rows: dict[str, dict], images: int) -> str:
    """The benchmark's table for the console, every figure from a setup's median seconds (the
    recorded images per second and ``vs_default`` are rounded, and rounding them again could tip
    a figure)."""
    default = rows["default"]["median_seconds"]
    lines = [f"{'setup':<15} {'loader':<12} {'dtype':<9} {'s/epoch':>8} {'images/s':>10}"]
    for name, row in rows.items():
        lines.append(
            f"{name:<15} {row['loader']:<12} {row['dtype']:<9} {row['median_seconds']:8.2f} "
            f"{images / row['median_seconds']:10,.0f}"
        )
    lines.append(
        ", ".join(
            f"{name} takes {row['median_seconds'] / default:.2f}x the default's time"
            for name, row in rows.items()
            if name != "default"
        )
    )
    return "\n".join(lines)


def bench(
    recipe: Recipe, device="auto", repeats: int = 3, out: Path | None = None, data_dir=None, train_limit=None
) -> dict:
    device = pick_device(device)
    previous_runs = read_machine_runs(out, "benchmark", OUT_FIX) if out is not None else []
    prepared = {}
    for setup in setups(recipe, device):
        torch.manual_seed(0)
        model = setup.recipe.model().to(device)
        loader, _ = make_loaders(
            setup.loader,
            setup.recipe.batch_size,
            device,
            setup.recipe.augment,
            data_dir,
            train_limit,
            test_limit=1,
        )
        optimizer, scheduler = make_optimizer(setup.recipe, model, len(loader))
        prepared[setup.name] = (setup, model, loader, optimizer, scheduler)
    images = len(prepared["default"][2].labels)

    def epoch(name: str) -> float:
        setup, model, loader, optimizer, scheduler = prepared[name]
        options = dict(dtype=DTYPES[setup.dtype], quiet=True)
        return _timed(device, lambda: train_epoch(model, loader, optimizer, scheduler, **options))

    print(
        f"bench: step {recipe.step} on {device_name(device)}, a warm-up epoch of each setup ...", flush=True
    )
    seconds = interleaved(
        epoch,
        prepared,
        repeats,
        log=lambda repeat, name, s: print(f"  repeat {repeat}: {name:<15} {s:6.2f} s", flush=True),
    )

    rows = {}
    scoring = _time_scoring(recipe, prepared["default"][1], device, repeats, data_dir, train_limit)
    for name, (setup, model, *_) in prepared.items():
        median = round(statistics.median(seconds[name]), 3)  # every figure from the recorded median
        rows[name] = {
            "model": setup.recipe.model.name,
            "architecture": setup.recipe.as_dict()["architecture"],
            "params": count_parameters(model),
            "batch_size": setup.recipe.batch_size,
            "augment": dataclasses.asdict(setup.recipe.augment),
            "loader": setup.loader,
            "dtype": setup.dtype,
            "seconds": [round(s, 3) for s in seconds[name]],
            "median_seconds": median,
            "images_per_second": round(images / median, 1),
        }
    result = {
        "step": recipe.step,
        "device": device.type,
        "device_name": device_name(device),
        "train_images": images,
        "repeats": repeats,
        "setups": rows,
        # how many times the default's time each setup takes: classic > 1 is the fast pipeline's gain
        "vs_default": {
            name: round(row["median_seconds"] / rows["default"]["median_seconds"], 3)
            for name, row in rows.items()
        },
        "torch_version": torch.__version__,
        "date": datetime.date.today().isoformat(),
        **({"scoring": scoring} if scoring else {}),
    }
    print(summary_text(rows, images))
    if out is not None:
        write_machine_run(out, previous_runs, result)
    return result
