"""Time candidate speed-ups of a step-5 training step; record them in results/perf_trials.json.

    python tools/perf_trials.py [--batches 100] [--repeats 3] [--trials NAME ...]

Each trial trains step 5's model with its recipe's optimiser and schedule on the fast pipeline
(augmentation included) for ``--batches`` batches after a warm-up, ``--repeats`` times with the
trials interleaved, and reports the median as seconds per 60,000-image epoch. The warm-up starts
from an empty ``torch.compile`` cache, shared by the trials of one run. The file also records a
torch.profiler breakdown of the ``default`` trial and the CPU's vector flags. It is rewritten
whole, with the trials of this run only. docs/performance.md explains the trials and the decisions.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mnist_lite.cli import positive_int
from mnist_lite.data import TensorLoader, load_mnist
from mnist_lite.engine import autocast, device_name, make_optimizer
from mnist_lite.results import RESULTS, write_json
from mnist_lite.steps import STEPS

RECIPE = STEPS[5]


def elementwise_dropout(model: nn.Module) -> nn.Module:
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Dropout2d):
                setattr(parent, name, nn.Dropout(child.p))
    return model


TRIALS = {
    # name: (what changes, how the model is prepared, forward-pass dtype, sync every batch, sgd foreach);
    # "no_mkldnn" is handled in run(): it switches oneDNN off around the step
    "default": ("the fast pipeline as shipped", lambda m: m, torch.float32, False, None),
    "channels_last": ("model and batches in channels-last memory format",
                      lambda m: m.to(memory_format=torch.channels_last), torch.float32, False, None),
    "sgd_foreach": ("SGD's multi-tensor (foreach) update", lambda m: m, torch.float32, False, True),
    "bfloat16": ("bfloat16 autocast", lambda m: m, torch.bfloat16, False, None),
    "item_per_batch": ("loss.item() after every batch (a host sync per batch)", lambda m: m, torch.float32, True, None),
    "elementwise_dropout": ("nn.Dropout instead of nn.Dropout2d, same rate", elementwise_dropout, torch.float32, False,
                            None),
    "no_augmentation": ("augmentation switched off (its cost)", lambda m: m, torch.float32, False, None),
    "no_mkldnn": ("oneDNN off: PyTorch's own im2col + GEMM convolutions", lambda m: m, torch.float32, False, None),
    "compiled": ("torch.compile(model), compile time excluded", torch.compile, torch.float32, False, None),
    "compiled_bfloat16": ("torch.compile(model) and bfloat16 autocast", torch.compile, torch.bfloat16, False, None),
}


def profile_default(run, batches: int, batches_per_epoch: int, top: int = 10) -> dict:
    """Where the default trial's time goes: torch.profiler's self time per operator, scaled to
    seconds per epoch like the trials (the profiler's own overhead included)."""
    from torch.profiler import profile

    scale = batches_per_epoch / batches / 1e6  # microseconds over the batches -> s per epoch
    with profile() as prof:
        run("default", batches)
    ops = sorted(prof.key_averages(), key=lambda op: op.self_cpu_time_total, reverse=True)
    return {
        "total_seconds_per_epoch": round(sum(op.self_cpu_time_total for op in ops) * scale, 2),
        "convolution_seconds_per_epoch": round(
            sum(op.self_cpu_time_total for op in ops if "convolution" in op.key) * scale, 2
        ),
        "top_ops": [{"op": op.key, "seconds_per_epoch": round(op.self_cpu_time_total * scale, 2)} for op in ops[:top]],
    }


def cpu_flags(wanted=("avx2", "avx512f", "avx512_bf16", "amx_bf16")) -> list[str]:
    """Which of the vector extensions that matter for float32 and bfloat16 this CPU has (Linux)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return [flag for flag in wanted if flag in line.split()]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=positive_int, default=100, help="timed batches per trial and repeat")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--trials", nargs="+", default=list(TRIALS), choices=list(TRIALS), help="default always runs")
    args = parser.parse_args()
    args.trials = ["default"] + [name for name in args.trials if name != "default"]  # what the others compare to
    # an empty compile cache, so that the first compiled trial's warm-up is the compilation a reader waits for
    compile_cache = tempfile.TemporaryDirectory(prefix="perf-trials-inductor-")  # removed at exit
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = compile_cache.name

    device = torch.device("cpu")
    images, labels = load_mnist("train")
    batches_per_epoch = -(-len(labels) // RECIPE.batch_size)
    args.batches = min(args.batches, batches_per_epoch)
    setups = {}
    for name in args.trials:
        _, prepare, dtype, sync, foreach = TRIALS[name]
        torch.manual_seed(0)
        model = prepare(RECIPE.model())
        optimizer, scheduler = make_optimizer(RECIPE, model, batches_per_epoch)  # the recipe's, as shipped
        for group in optimizer.param_groups:
            group["foreach"] = foreach
        augment = RECIPE.augment if name != "no_augmentation" else type(RECIPE.augment)()
        loader = TensorLoader(images, labels, RECIPE.batch_size, device, shuffle=True, augment=augment)
        setups[name] = (model, optimizer, scheduler, loader, dtype, sync, name == "channels_last")

    def run(name: str, batches: int) -> float:
        model, optimizer, scheduler, loader, dtype, sync, channels_last = setups[name]
        model.train()
        with torch.backends.mkldnn.flags(enabled=name != "no_mkldnn"):
            start = time.perf_counter()
            for x, y in itertools.islice(loader, batches):
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, dtype):
                    loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if sync:
                    loss.item()
            return (time.perf_counter() - start) / batches * batches_per_epoch

    warmup = {}
    for name in args.trials:  # the first call of a compiled model compiles it
        start = time.perf_counter()
        run(name, 10)
        warmup[name] = round(time.perf_counter() - start, 2)
    seconds = {name: [] for name in args.trials}
    for repeat in range(args.repeats):
        for name in args.trials:
            seconds[name].append(run(name, args.batches))
            print(f"repeat {repeat + 1}: {name:<20} {seconds[name][-1]:6.2f} s/epoch", flush=True)
    profile = profile_default(run, args.batches, batches_per_epoch)
    default = statistics.median(seconds["default"])
    trials = {
        name: {
            "what": TRIALS[name][0],
            "seconds_per_epoch": [round(s, 2) for s in times],
            "median_seconds_per_epoch": round(statistics.median(times), 2),
            "vs_default": round(statistics.median(times) / default, 3),
            "warmup_seconds": warmup[name],
        }
        for name, times in seconds.items()
    }
    write_json(
        RESULTS / "perf_trials.json",
        {
            "device_name": device_name(device),
            "cpu_flags": cpu_flags(),
            "model": RECIPE.model.__name__,
            "batch_size": RECIPE.batch_size,
            "batches_timed": args.batches,
            "repeats": args.repeats,
            "torch_version": torch.__version__,
            "trials": trials,
            "profile": profile,
        },
    )
    for name, row in trials.items():
        print(f"{name:<20} {row['median_seconds_per_epoch']:6.2f} s/epoch  x{row['vs_default']}")


if __name__ == "__main__":
    main()
