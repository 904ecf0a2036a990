"""``bench``: seconds per training epoch of the fast pipeline against the classic torchvision one.

Both train the same model (same initial weights, same recipe, augmentation included) with the
same ``train_epoch``; only the input pipeline differs. Epochs alternate A B A B after a warm-up
so that a machine slowing down or speeding up affects both alike.
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
from pathlib import Path

import torch

from mnist_lite.data import make_loaders
from mnist_lite.engine import device_name, make_optimizer, pick_device, train_epoch
from mnist_lite.results import write_json
from mnist_lite.steps import Recipe

PIPELINES = ("torchvision", "fast")  # baseline first


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(recipe: Recipe, device="auto", repeats: int = 3, out: Path | None = None, data_dir=None, train_limit=None) -> dict:
    device = pick_device(device)
    torch.manual_seed(0)
    initial = recipe.model().state_dict()
    setups = {}
    for name in PIPELINES:
        loader, _ = make_loaders(name, recipe.batch_size, device, recipe.augment, data_dir, train_limit, test_limit=1)
        model = recipe.model().to(device)
        model.load_state_dict(initial)
        optimizer, scheduler = make_optimizer(recipe, model, len(loader))
        setups[name] = (model, loader, optimizer, scheduler)
    images = len(setups["fast"][1].labels)

    def epoch(name: str) -> float:
        model, loader, optimizer, scheduler = setups[name]
        _sync(device)
        start = time.perf_counter()
        train_epoch(model, loader, optimizer, scheduler, quiet=True)
        _sync(device)
        return time.perf_counter() - start

    print(f"bench: step {recipe.step} on {device_name(device)}, warm-up epoch of each pipeline ...", flush=True)
    for name in PIPELINES:
        epoch(name)
    seconds = {name: [] for name in PIPELINES}
    for repeat in range(1, repeats + 1):
        for name in PIPELINES:
            seconds[name].append(epoch(name))
            print(f"  repeat {repeat}: {name:<11} {seconds[name][-1]:6.2f} s", flush=True)

    medians = {name: round(statistics.median(times), 3) for name, times in seconds.items()}
    pipelines = {  # every figure from the recorded median, so the file agrees with itself
        name: {
            "seconds": [round(s, 3) for s in seconds[name]],
            "median_seconds": median,
            "images_per_second": round(images / median, 1),
        }
        for name, median in medians.items()
    }
    result = {
        "step": recipe.step,
        "model": recipe.model.__name__,
        "device": device.type,
        "device_name": device_name(device),
        "batch_size": recipe.batch_size,
        "train_images": images,
        "repeats": repeats,
        "pipelines": pipelines,
        "speedup": round(pipelines["torchvision"]["median_seconds"] / pipelines["fast"]["median_seconds"], 2),
        "torch_version": torch.__version__,
        "date": datetime.date.today().isoformat(),
    }
    print(f"{'pipeline':<12} {'s/epoch':>8} {'images/s':>10}")
    for name, row in pipelines.items():
        print(f"{name:<12} {row['median_seconds']:8.2f} {row['images_per_second']:10,.0f}")
    print(f"fast is {result['speedup']:.2f}x the torchvision pipeline on {result['device_name']}")
    if out is not None:
        # one entry per machine: a GPU run is recorded beside the CPU one, not over it
        runs = json.loads(out.read_text()) if out.exists() else []
        runs = [r for r in runs if r["device_name"] != result["device_name"]] + [result]
        write_json(out, runs)
    return result
