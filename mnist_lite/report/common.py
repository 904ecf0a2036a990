"""What the report reads under ``results/``: the names of its files and folders, the schemas
that check each file, and the small helpers every section shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mnist_lite.paths import (
    DESIGN,
    DESIGN_GPU,
    DESIGN_SPEED,
    DESIGN_XEON,
    FRONTIER_SPEED,
    ONE_EPOCH,
    SEED_SWEEPS,
)
from mnist_lite.schema import (
    COUNT,
    FLAG,
    MAYBE_COUNT,
    MAYBE_TEXT,
    NUMBER,
    POSITIVE,
    TEXT,
    ListOf,
    Schema,
    Value,
    read_json,
)
from mnist_lite.steps import OPTIMIZERS, STEPS

# --- what the report reads, relative to the results folder: each name spelled here once
STEP_RUN = "step{step}"  # the recorded run of each step: STEP_RUN/RESULT
RESULT = "result.json"
# `seeds --step 5`: SEED_SWEEP/seedS/RESULT and SEED_SWEEP/SWEEP_SUMMARY
SEED_SWEEP = SEED_SWEEPS.format(step=5)
OTHER_PRECISION_SWEEP = SEED_SWEEP + "_{dtype}"  # the same, `--dtype DTYPE --out results/step5_seeds_DTYPE`
SWEEP_SUMMARY = "summary.json"
PREVIOUS_SWEEP = "frontier/previous_float32"  # DESIGN_BASELINE's seed sweep on the test set
LEGACY_EXPERIMENTS = "experiments"  # the designs tried before the design search, chosen on the test set
BENCH = "bench.json"  # `bench`
PERF_TRIALS = "perf_trials.json"  # tools/perf_trials.py
REPRODUCE = "reproduce.json"  # `reproduce`
REPORTED = (
    *(STEP_RUN.format(step=step) for step in STEPS),
    SEED_SWEEP,
    DESIGN,
    DESIGN_GPU,
    DESIGN_XEON,
    DESIGN_SPEED,
    FRONTIER_SPEED,
    LEGACY_EXPERIMENTS,
    ONE_EPOCH,
    BENCH,
    PERF_TRIALS,
    REPRODUCE,
)
# the figures the report draws, relative to the repository
SERIES_FIGURE = "docs/figures/series.png"
SEEDS_FIGURE = "docs/figures/seeds.png"
DESIGN_FIGURE = "docs/figures/design_search.png"
TEST_FRONTIER_FIGURE = "docs/figures/test_frontier.png"


HISTORY_ROW = {"epoch": COUNT, "train_acc": NUMBER, "test_acc": NUMBER}
RUN = {  # what the sections read of a result.json
    "params": COUNT,
    "seed": COUNT,
    "epochs": COUNT,
    "device_name": TEXT,
    "torch_version": TEXT,
    "dtype?": TEXT,
    "eval_split?": TEXT,
    "train_limit": MAYBE_COUNT,
    "test_limit": MAYBE_COUNT,
    "error": MAYBE_TEXT,
    "interrupted": FLAG,
    "history": ListOf(HISTORY_ROW),
    "best_train_acc": NUMBER,
    "best_test_acc": NUMBER,
    "final_test_acc": NUMBER,
    "last5_test_acc": ListOf(NUMBER),
    "last5_min_test_acc": NUMBER,
    "train_seconds": NUMBER,
}
RUN_FILE = Schema("result file", RUN, "train it again")
ONE_EPOCH_RUN = Schema(
    "result file",
    {**RUN, "recipe": {"batch_size": POSITIVE, "lr": NUMBER}},
    "run python tools/one_epoch.py again",
)
LITE_RECIPE = {
    "model": TEXT,
    "epochs": COUNT,
    "batch_size": COUNT,
    "lr": NUMBER,
    "momentum": NUMBER,
    "weight_decay": NUMBER,
    # recorded only where it is not SGD (``Recipe.as_dict``)
    "optimizer?": Value("nesterov or adam", lambda v: v in OPTIMIZERS[1:]),
    "schedule": TEXT,
    "milestones": ListOf(COUNT),
    "warmup_epochs?": COUNT,
    "rotation_degrees": NUMBER,
    "translate": NUMBER,
    "scale?": NUMBER,
    "elastic_alpha?": NUMBER,
    "elastic_sigma?": NUMBER,
    "clean_epochs?": COUNT,
    "label_smoothing": NUMBER,
    "ema_decay?": NUMBER,
    "architecture": {
        "full_resolution": ListOf(COUNT, 1),
        "padding": COUNT,
        "transition": COUNT,
        "low_resolution": ListOf(COUNT, 1),
        "second_pool?": COUNT,
        "dilated?": COUNT,
        "activation?": TEXT,
        "separable?": FLAG,
        "dropout": NUMBER,
    },
}
RECIPE_FIELDS_ADDED = {"ema_decay": 0.0}  # fields newer than some recorded recipes, at the value those had
DESIGN_RUN = Schema(
    "design run",
    {
        **RUN,
        "recipe": LITE_RECIPE,
        "variant": TEXT,
        "changes": ListOf(TEXT),
        "multiply_adds": COUNT,
        "round?": NUMBER,
    },
    "run python tools/design.py for it again",
)
DESIGN_SPEED_FILE = Schema(
    "design timing file",
    {
        "device_name": TEXT,
        "torch_version": TEXT,
        "dtype": TEXT,
        "variants": {str: {"median_seconds_per_epoch": NUMBER}},
    },
    "run python tools/design.py --time again",
)
# the same run for frontier points, one per machine, whose table also shows each repeat's range and
# the net's size
FRONTIER_SPEED_FILE = Schema(
    "frontier timing file",
    ListOf(
        {
            **DESIGN_SPEED_FILE.shape,
            "images_timed": COUNT,
            "repeats": COUNT,
            "variants": {
                str: {
                    "params": COUNT,
                    "multiply_adds": COUNT,
                    "seconds_per_epoch": ListOf(NUMBER, 1),
                    "median_seconds_per_epoch": NUMBER,
                }
            },
        },
        1,
    ),
    "run python tools/design.py --time NAME NAME again",
)
LEGACY_RUN = Schema(
    "experiment file",
    {
        "variant": {"name": TEXT, "architecture": TEXT, "dropout": TEXT, "rotation_degrees": NUMBER},
        "recipe": {"schedule": TEXT, "lr": NUMBER, "batch_size": COUNT, "milestones?": ListOf(COUNT)},
        "params": COUNT,
        "seed": COUNT,
        "best_train_acc": NUMBER,
        "best_test_acc": NUMBER,
        "last5_test_acc": ListOf(NUMBER),
        "last5_min_test_acc": NUMBER,
    },
)
SWEEP_FILE = Schema(
    "seed-sweep summary",
    {
        "step": COUNT,
        "model": TEXT,
        "params": COUNT,
        "epochs": COUNT,
        "dtype": TEXT,
        "eval_split?": TEXT,
        "device_name": TEXT,
        "seeds": ListOf(
            {
                "seed": COUNT,
                "best_test_acc": NUMBER,
                "final_test_acc": NUMBER,
                "last5_test_acc": ListOf(NUMBER, 1),
                "last5_min_test_acc": NUMBER,
                "last5_min_plain_test_acc?": NUMBER,
            },
            1,
        ),
        "final_test_acc_mean": NUMBER,
        "final_test_acc_std": NUMBER,
        "median_last5_min_test_acc": NUMBER,
        "worst_last5_min_test_acc": NUMBER,
        "seeds_holding": COUNT,
        "hold_confidence": NUMBER,
        "hold_probability_lower_bound": NUMBER,
        # runs scored with test-time shifts (results.seed_summary)
        "test_time_shift?": COUNT,
        "seeds_holding_plain?": COUNT,
        "median_last5_min_plain_test_acc?": NUMBER,
        "worst_last5_min_plain_test_acc?": NUMBER,
    },
    "run the same seeds command again: it skips the finished seeds and writes the summary anew",
)
BENCH_FILE = Schema(
    "benchmark file",
    ListOf(
        {
            "step": COUNT,
            "device": TEXT,
            "device_name": TEXT,
            "train_images": COUNT,
            "repeats": COUNT,
            "torch_version": TEXT,
            "date": TEXT,
            "setups": {
                str: {
                    "model": TEXT,
                    "params": COUNT,
                    "batch_size": COUNT,
                    "loader": TEXT,
                    "dtype": TEXT,
                    "median_seconds": NUMBER,
                    "images_per_second": NUMBER,
                }
            },
            "scoring?": {  # a recipe scored with test-time shifts (bench._time_scoring)
                "test_images": COUNT,
                "test_time_shift": COUNT,
                "median_plain_seconds": NUMBER,
                "median_shifted_seconds": NUMBER,
            },
        }
    ),
    "run python -m mnist_lite bench again",
)
TRIALS_FILE = Schema(
    "speed-trials file",
    {
        "device_name": TEXT,
        "cpu_flags": ListOf(TEXT),
        "model": TEXT,
        "batch_size": COUNT,
        "batches_timed": COUNT,
        "repeats": COUNT,
        "flop_per_epoch": COUNT,
        "default_dtype": TEXT,
        "default_gflops": POSITIVE,
        "matmul_peak_gflops": {str: POSITIVE},
        "trials": {
            str: {
                "what": TEXT,
                "median_seconds_per_epoch": NUMBER,
                "vs_default": NUMBER,
                "warmup_seconds": NUMBER,
            }
        },
        "profile": {
            "total_seconds_per_epoch": POSITIVE,
            "convolution_seconds_per_epoch": NUMBER,
            "top_ops": ListOf({"op": TEXT, "seconds_per_epoch": NUMBER}),
        },
    },
    "run python tools/perf_trials.py again",
)
REPRODUCE_FILE = Schema(
    "reproduction record",
    {
        "notebooks": ListOf({"step": COUNT, "seconds": NUMBER, "device_name": TEXT}),
        "total_seconds": NUMBER,
    },
    "run python -m mnist_lite reproduce again",
)


# REPLICATES/X, or REPLICATES_LABEL/X for each further machine (replicate_avx2/X): the sweep
# results/X trained again by the same command on another machine; under a folder of earlier
# sweeps the same (round4_step5/replicate/step5_seeds trains round4_step5/step5_seeds again)
REPLICATES = "replicate"
# step 5's sweeps and their replicates from round 4 to round 18 (``steps.ROUND4_STEP5``)
ROUND4 = "round4_step5"


def replicated(folder: str) -> str | None:
    """The sweep that ``folder`` (a path under results/) trains again, if it is a replicate."""
    parts = folder.split("/")
    for i, part in enumerate(parts[:-1]):
        if part == REPLICATES or (part.startswith(f"{REPLICATES}_") and len(part) > len(REPLICATES) + 1):
            return "/".join(parts[:i] + parts[i + 1 :])
    return None


# every step's sweep (step 5's and any earlier step's), the designs step 5 was compared with, the
# sweeps of earlier step-5 recipes (before the design search, previous_step5/; before test-time
# shifts, step5_plain/; from round 4 to round 18, round4_step5/), and the replicates, a frontier
# point's among them (replicate_avx2/frontier/X trains frontier/X again)
TEST_SWEEPS = (
    SEED_SWEEPS.format(step="*"),
    OTHER_PRECISION_SWEEP.format(dtype="*"),
    "frontier/*",
    "previous_step5/*",
    "step5_plain/*",
    f"{ROUND4}/*",
    *(
        f"{prefix}{replicates}/{sweep}"
        for prefix, sweep in (("", "*"), (f"{ROUND4}/", "*"), ("", "frontier/*"))
        for replicates in (REPLICATES, f"{REPLICATES}_*")
    ),
)
TEST_SWEEP_FILE = Schema(
    "seed-sweep summary",
    {
        "model": TEXT,
        "params": COUNT,
        "epochs": COUNT,
        "device_name": TEXT,
        "dtype?": TEXT,
        "test_time_shift?": COUNT,
        "seeds": ListOf(
            {
                "seed": COUNT,
                "last5_min_test_acc": NUMBER,
                "final_test_acc": NUMBER,
                "last5_min_plain_test_acc?": NUMBER,  # scored with test-time shifts: each image alone
            },
            1,
        ),
    },
    "run the seeds command that made it again",
)


SWEEP_RUN_TORCH = Schema("seed run of a sweep", {"torch_version": TEXT}, "train it again")


SWEEP_RUN_RECIPE = Schema(
    "seed run of a sweep", {"recipe": {str: Value("a recipe field", lambda v: True)}}, "train it again"
)


def unfit_reason(run: dict, split: str) -> str | None:
    """Why ``run`` cannot stand for its recipe (it did not finish, trained or was scored on part
    of the data, or was scored on another split than ``split``), or None when it can."""
    scored_on = run.get("eval_split", "test")  # runs from before the validation split: on the test set
    if scored_on != split:
        return f"scored on the {scored_on} split, not the {split} split"
    if run["error"] or run["interrupted"]:
        return "it stopped early"
    if run["train_limit"] is not None or run["test_limit"] is not None:
        return "trained or scored on part of the data"
    if len(run["history"]) != run["epochs"]:
        return f"{len(run['history'])} of {run['epochs']} epochs"
    return None


def missing_note(what: str, command: str) -> str:
    return f"_No {what} recorded yet: run `{command}`._"


def percents(accuracies: list[float]) -> str:
    return ", ".join(f"{acc:.2f}" for acc in accuracies)


def over_runs(value: float) -> str:
    """A median or mean over runs of accuracies recorded to the hundredth, in percent without the sign:
    two decimals, or three where it lies halfway between two hundredths (the median of an even
    number of runs often does). Rounded, which way float noise tips it would differ from one
    computation of the same number to another, and could carry it up to a bar it misses."""
    value = round(value, 3)
    return f"{value:.3f}" if round(value * 1000) % 10 == 5 else f"{value:.2f}"


def image_in_docs(alt: str, figure: str) -> str:
    """The Markdown image of ``figure`` (relative to the repository) for a document in docs/."""
    return f"![{alt}]({Path(figure).relative_to('docs')})"


def section(load: Callable[[Path], object], show: Callable[[object], str]) -> Callable[[Path], str]:
    """A generated section: ``show`` (pure: data in, text out) of what ``load`` reads from results."""
    return lambda results: show(load(results))


def reader(name: str, schema: Schema) -> Callable[[Path], object]:
    """The loader of one file, ``name`` in the results folder: its checked JSON, or None if it is absent."""
    return lambda results: read_json(results / name, schema, missing_ok=True)
