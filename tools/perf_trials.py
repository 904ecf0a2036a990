"""Time candidate speed-ups of a step-5 training step; record them in results/perf_trials.json.

    python tools/perf_trials.py [--batches 100] [--repeats 3] [--trials NAME ...]

Each trial trains step 5's model with its recipe's optimiser and schedule on the fast pipeline
(augmentation included) for ``--batches`` batches after a warm-up, ``--repeats`` times with the
trials interleaved, and reports the median as seconds per 60,000-image epoch. The warm-up starts
from an empty ``torch.compile`` cache, shared by the trials of one run. The file also records a
torch.profiler breakdown of the ``default`` trial, the CPU's vector flags, and this CPU's
practical peak: the GFLOP/s of a large matrix product in float32 and in bfloat16, against which
the default's achieved GFLOP/s is set. It is rewritten whole, with the trials of this run only.
docs/performance.md explains the trials and the decisions.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_lite.cli import positive_int, run_cleanly
from mnist_lite.config import Augment
from mnist_lite.data import TensorLoader, load_mnist
from mnist_lite.device import DTYPES, autocast, cpu_flags, device_name
from mnist_lite.engine import make_optimizer
from mnist_lite.models import multiply_adds
from mnist_lite.paths import RESULTS
from mnist_lite.results import write_json
from mnist_lite.steps import STEPS

RECIPE = STEPS[5]
DEVICE = torch.device("cpu")
DEFAULT_DTYPE = "float32"  # what train and seeds use unless told otherwise


def unchanged(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class Trial:
    what: str
    prepare: Callable[[nn.Module], nn.Module] = unchanged
    dtype: str = DEFAULT_DTYPE
    augment: bool = True
    channels_last: bool = False
    mkldnn: bool = True


TRIALS = {
    "default": Trial("as shipped: the fast pipeline, float32"),
    "bfloat16": Trial("bfloat16 autocast (--dtype bfloat16)", dtype="bfloat16"),
    "channels_last": Trial("model and batches in channels-last memory format", channels_last=True),
    "no_augmentation": Trial("augmentation switched off (its cost)", augment=False),
    "no_mkldnn": Trial("oneDNN off: PyTorch's own im2col + GEMM convolutions", mkldnn=False),
    "compiled": Trial("torch.compile(model), compile time excluded", prepare=torch.compile),
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
        "top_ops": [
            {"op": op.key, "seconds_per_epoch": round(op.self_cpu_time_total * scale, 2)} for op in ops[:top]
        ],
    }


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """This CPU's practical peak: the best GFLOP/s of a ``size``-square matrix product."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return round(2 * size**3 / best / 1e9, 1)


def vector_flags(wanted=("avx2", "avx512f", "avx512_bf16", "amx_bf16")) -> list[str]:
    """Which of the vector extensions that matter for float32 and bfloat16 this CPU has."""
    return [flag for flag in wanted if flag in cpu_flags()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches", type=positive_int, default=100, help="timed batches per trial and repeat"
    )
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument(
        "--trials", nargs="+", default=list(TRIALS), choices=list(TRIALS), help="default always runs"
    )
    args = parser.parse_args()
    names = ["default"] + [name for name in args.trials if name != "default"]  # what the others compare to
    # an empty compile cache, so that the first compiled trial's warm-up is the compilation a reader waits for
    compile_cache = tempfile.TemporaryDirectory(prefix="perf-trials-inductor-")  # removed at exit
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = compile_cache.name

    images, labels = load_mnist("train")
    batches_per_epoch = -(-len(labels) // RECIPE.batch_size)
    batches = min(args.batches, batches_per_epoch)
    setups = {}
    for name in names:
        trial = TRIALS[name]
        torch.manual_seed(0)
        model = trial.prepare(RECIPE.model())
        optimizer, scheduler = make_optimizer(RECIPE, model, batches_per_epoch)  # the recipe's, as shipped
        augment = RECIPE.augment if trial.augment else Augment()
        loader = TensorLoader(images, labels, RECIPE.batch_size, DEVICE, shuffle=True, augment=augment)
        setups[name] = (model, optimizer, scheduler, loader)

    def run(name: str, batches: int) -> float:
        trial, (model, optimizer, scheduler, loader) = TRIALS[name], setups[name]
        model.train()
        with torch.backends.mkldnn.flags(enabled=trial.mkldnn):
            start = time.perf_counter()
            for x, y in itertools.islice(loader, batches):
                if trial.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(DEVICE, DTYPES[trial.dtype]):
                    loss = F.cross_entropy(model(x), y, label_smoothing=RECIPE.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
            return (time.perf_counter() - start) / batches * batches_per_epoch

    warmup = {}
    for name in names:  # the first call of a compiled model compiles it
        start = time.perf_counter()
        run(name, 10)
        warmup[name] = round(time.perf_counter() - start, 2)
    seconds = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            seconds[name].append(run(name, batches))
            print(f"repeat {repeat + 1}: {name:<16} {seconds[name][-1]:6.2f} s/epoch", flush=True)
    profile = profile_default(run, batches, batches_per_epoch)
    default = statistics.median(seconds["default"])
    trials = {
        name: {
            "what": TRIALS[name].what,
            "seconds_per_epoch": [round(s, 2) for s in times],
            "median_seconds_per_epoch": round(statistics.median(times), 2),
            "vs_default": round(statistics.median(times) / default, 3),
            "warmup_seconds": warmup[name],
        }
        for name, times in seconds.items()
    }
    # a training step costs about three forward passes (forward, and the backward pass's two products)
    flop_per_epoch = 3 * 2 * multiply_adds(RECIPE.model()) * len(labels)
    write_json(
        RESULTS / "perf_trials.json",
        {
            "device_name": device_name(DEVICE),
            "cpu_flags": vector_flags(),
            "model": RECIPE.model.name,
            "architecture": dataclasses.asdict(RECIPE.model),
            "batch_size": RECIPE.batch_size,
            "batches_timed": batches,
            "repeats": args.repeats,
            "torch_version": torch.__version__,
            "trials": trials,
            "profile": profile,
            "flop_per_epoch": flop_per_epoch,
            "default_dtype": DEFAULT_DTYPE,
            "default_gflops": round(flop_per_epoch / default / 1e9, 2),
            "matmul_peak_gflops": {name: matmul_gflops(dtype) for name, dtype in DTYPES.items()},
        },
    )
    for name, row in trials.items():
        print(f"{name:<16} {row['median_seconds_per_epoch']:6.2f} s/epoch  x{row['vs_default']}")


if __name__ == "__main__":
    sys.exit(run_cleanly(main))
