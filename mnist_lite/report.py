"""The generated sections of README.md and docs/, and the figures they show, from ``results/`` alone.

Each section sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``;
``update_docs`` rewrites what is between them and leaves the hand-written rest alone. A section
is a loader, which reads and checks its files under ``results/``, and a pure renderer (data in,
text out); a figure likewise is a loader and a drawing function of ``mnist_lite.plots``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_lite import plots
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import (
    DESIGN,
    DESIGN_GPU,
    DESIGN_XEON,
    ONE_EPOCH,
    PRECISE_BN,
    REPO,
    REPOSITORY,
    RESULTS,
    SEED_SWEEPS,
    TTA,
    TTA_TEST,
)
from mnist_lite.results import History, holds_target, write_atomic
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
from mnist_lite.steps import (
    DESIGN_BASELINE,
    LAST_EPOCHS,
    OPTIMIZERS,
    PARAM_BUDGET,
    STEP5_PLAIN,
    STEPS,
    TARGET_ACCURACY,
    shifted_views,
)

# --- what the report reads, relative to the results folder: spelled here once, for its writers to import
STEP_RUN = "step{step}"  # the recorded run of each step: STEP_RUN/RESULT
RESULT = "result.json"
# `seeds --step 5`: SEED_SWEEP/seedS/RESULT and SEED_SWEEP/SWEEP_SUMMARY
SEED_SWEEP = SEED_SWEEPS.format(step=5)
OTHER_PRECISION_SWEEP = SEED_SWEEP + "_{dtype}"  # the same, `--dtype DTYPE --out results/step5_seeds_DTYPE`
SWEEP_SUMMARY = "summary.json"
PREVIOUS_SWEEP = "frontier/previous_float32"  # DESIGN_BASELINE's seed sweep on the test set
DESIGN_SPEED = "design_speed.json"  # tools/design.py --time
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
    LEGACY_EXPERIMENTS,
    ONE_EPOCH,
    BENCH,
    PERF_TRIALS,
    REPRODUCE,
)
# the figures the report draws, relative to the repository
SERIES_FIGURE = "docs/figures/series.png"
SEEDS_FIGURE = "docs/figures/seeds.png"
FRONTIER_FIGURE = "docs/figures/frontier.png"
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
    "rotation_degrees": NUMBER,
    "translate": NUMBER,
    "scale?": NUMBER,
    "label_smoothing": NUMBER,
    "ema_decay?": NUMBER,
    "architecture": {
        "full_resolution": ListOf(COUNT, 1),
        "padding": COUNT,
        "transition": COUNT,
        "low_resolution": ListOf(COUNT, 1),
        "second_pool?": COUNT,
        "dilated?": COUNT,
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
            "vs_default": {str: NUMBER},
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


def _unfit(run: dict, split: str) -> str | None:
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


def _missing(what: str, command: str) -> str:
    return f"_No {what} recorded yet: run `{command}`._"


def _percents(accuracies: list[float]) -> str:
    return ", ".join(f"{acc:.2f}" for acc in accuracies)


def _over_runs(value: float) -> str:
    """A median or mean over runs of accuracies recorded to the hundredth, in percent without the sign:
    two decimals, or three where it lies halfway between two hundredths (the median of an even
    number of runs often does). Rounded, which way float noise tips it would differ from one
    computation of the same number to another, and could carry it up to a bar it misses."""
    value = round(value, 3)
    return f"{value:.3f}" if round(value * 1000) % 10 == 5 else f"{value:.2f}"


# --- the steps and the picture of the series ----------------------------------------------------------------


def load_steps(results: Path) -> dict[int, dict]:
    """The recorded run of each step that has one; a run that is not a complete full run on the
    test set (a design run on the validation split included) is refused."""
    runs = {}
    for step in STEPS:
        path = results / STEP_RUN.format(step=step) / RESULT
        run = read_json(path, RUN_FILE, missing_ok=True)
        if run is None:
            continue
        problem = _unfit(run, "test")
        if problem:
            raise MnistLiteError(
                f"{path}: not a complete full run ({problem}); train step {step} again before the report"
            )
        runs[step] = run
    return runs


COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_link(notebook: str) -> str:
    """A badge that opens ``notebook`` of the repository's main branch in Colab."""
    where = REPOSITORY.removeprefix("https://github.com/")
    return f"[![Open In Colab]({COLAB_BADGE})](https://colab.research.google.com/github/{where}/blob/main/{notebook})"


def _steps_named(steps: list[int]) -> str:
    """``step 5``, ``steps 1-4`` or ``steps 1, 3``."""
    if len(steps) == 1:
        return f"step {steps[0]}"
    if steps == list(range(steps[0], steps[-1] + 1)):
        return f"steps {steps[0]}-{steps[-1]}"
    return "steps " + ", ".join(map(str, steps))


def steps_table(runs: dict[int, dict]) -> str:
    lines = [
        "| Step | Target | Parameters | Best train | Best test | Min of last 5 | "
        f"Epochs ≥ {TARGET_ACCURACY}% | Time to train and score | Notebook |",
        "|---:|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for step, recipe in STEPS.items():
        notebook = f"[{Path(recipe.notebook).name}]({recipe.notebook}) {colab_link(recipe.notebook)}"
        if step not in runs:
            lines.append(f"| {step} | {recipe.target} | | | | | | not run yet | {notebook} |")
            continue
        r = runs[step]
        above = [str(epoch) for epoch in History(r["history"]).epochs_at_or_above(TARGET_ACCURACY)]
        budget = "" if step == 1 or r["params"] < PARAM_BUDGET else " ⚠"
        lines.append(
            f"| {step} | {recipe.target} | {r['params']:,}{budget} | {r['best_train_acc']:.2f}% | "
            f"{r['best_test_acc']:.2f}% | {r['last5_min_test_acc']:.2f}% | {', '.join(above) or 'none'} | "
            f"{r['train_seconds'] / 60:.1f} min | {notebook} |"
        )
    if runs:
        first = next(iter(runs.values()))
        machines: dict[tuple, list[int]] = {}  # where each run was made -> its steps
        for step, r in runs.items():
            machines.setdefault((r["device_name"], r["torch_version"], r.get("dtype", "float32")), []).append(
                step
            )
        where = "; ".join(
            (f"{_steps_named(steps)} " if len(machines) > 1 else "")
            + f"on {name}, torch {torch}, {dtype} forward pass"
            for (name, torch, dtype), steps in sorted(machines.items(), key=lambda item: item[1])
        )
        lines += ["", f"Each row is one run with seed {first['seed']}, {first['epochs']} epochs, {where}."]
    return "\n".join(lines)


def series_text(runs: dict[int, dict]) -> str:
    if not runs:
        return _missing("step run", "python -m mnist_lite train --step N")
    low, high = plots.SERIES_RANGE
    return (
        f"![Test and train accuracy per epoch of every step]({SERIES_FIGURE})\n\n"
        f"Test accuracy (solid) and training accuracy (dashed) per epoch of each step's run above, on a "
        f"scale zoomed to {low:g}–{high:g}%: a point beyond it is drawn on the edge and listed under the "
        f"chart."
    )


def series_figure(runs: dict[int, dict]):
    labels = {step: f"step {step}: {STEPS[step].title.split(':')[0]}" for step in runs}
    return plots.plot_series({labels[step]: r["history"] for step, r in runs.items()})


# --- robustness: the seed sweeps ----------------------------------------------------------------------------


def load_sweeps(results: Path) -> list[tuple[str, dict]]:
    """(folder, summary) of the seed sweep, then of the same sweep in the other precision, of
    those recorded; a sweep scored on the validation split is refused."""
    others = sorted(results.glob(OTHER_PRECISION_SWEEP.format(dtype="*") + "/" + SWEEP_SUMMARY))
    if len(others) > 1:
        raise MnistLiteError(f"{', '.join(map(str, others))}: more than one other-precision sweep; keep one")
    sweeps = []
    for path in [results / SEED_SWEEP / SWEEP_SUMMARY, *others]:
        summary = read_json(path, SWEEP_FILE, missing_ok=True)
        if summary is None:
            continue
        if summary.get("eval_split", "test") != "test":
            raise MnistLiteError(
                f"{path}: a sweep scored on the {summary['eval_split']} split; "
                f"the robustness section shows test runs only"
            )
        if path.parent.name not in (SEED_SWEEP, OTHER_PRECISION_SWEEP.format(dtype=summary["dtype"])):
            raise MnistLiteError(f"{path}: a {summary['dtype']} sweep in the folder of another precision")
        _refuse_shifted_without_plain(path, summary)
        sweeps.append((path.parent.name, summary))
    if len({summary["dtype"] for _, summary in sweeps}) < len(sweeps):
        raise MnistLiteError(
            f"{results / SEED_SWEEP} and {others[0].parent}: both sweeps in {sweeps[0][1]['dtype']}"
        )
    return sweeps


PLAIN_SUMMARY = ("seeds_holding_plain", "median_last5_min_plain_test_acc", "worst_last5_min_plain_test_acc")


def _refuse_shifted_without_plain(path: Path, summary: dict) -> None:
    """A sweep scored with test-time shifts is shown beside its scores without them: refuse, in
    one line, one that lacks them over the seeds or for any seed (made before they were kept)."""
    if summary.get("test_time_shift") and (
        any(field not in summary for field in PLAIN_SUMMARY)
        or any("last5_min_plain_test_acc" not in row for row in summary["seeds"])
    ):
        raise MnistLiteError(
            f"{path}: scored with test-time shifts, but without its scores without them "
            "(last5_min_plain_test_acc); run the seeds command that made it again"
        )


def _seed_list(seeds: list[int]) -> str:
    """``--seeds`` as the seeds command takes it: ``1-20`` for a run of numbers."""
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def sweep_text(folder: str, s: dict) -> str:
    """One seed sweep: the command that made it, a row per seed, and what they say together; for
    a sweep scored with test-time shifts, also what the same runs score without them."""
    out = "" if folder == SEED_SWEEP else f" --out results/{folder}"
    seeds = _seed_list([row["seed"] for row in s["seeds"]])
    command = f"python -m mnist_lite seeds --step {s['step']} --seeds {seeds} --dtype {s['dtype']}{out}"
    shift = s.get("test_time_shift", 0)
    scored = (
        f", each test image scored by the mean probabilities over {shifted_views(shift)}" if shift else ""
    )
    plain_header = ("| Min of last 5 without the shifts ", "---:|") if shift else ("", "")
    lines = [
        f"Step {s['step']} ({s['model']}, {s['params']:,} parameters, {s['epochs']} epochs, {s['dtype']} "
        f"forward pass{scored}) trained once per seed on {s['device_name']} by `{command}`:",
        "",
        "| Seed | Best test | Final test | Test accuracy, last 5 epochs | Min of last 5 | "
        f"All last 5 ≥ {TARGET_ACCURACY}% {plain_header[0]}|",
        "|---:|---:|---:|---|---:|:---:|" + plain_header[1],
    ]
    for row in s["seeds"]:
        plain = f" {row['last5_min_plain_test_acc']:.2f}% |" if shift else ""
        lines.append(
            f"| {row['seed']} | {row['best_test_acc']:.2f}% | {row['final_test_acc']:.2f}% | "
            f"{_percents(row['last5_test_acc'])} | {row['last5_min_test_acc']:.2f}% | "
            f"{'yes' if holds_target(row) else '**no**'} |{plain}"
        )
    n = len(s["seeds"])
    final, median = _over_runs(s["final_test_acc_mean"]), _over_runs(s["median_last5_min_test_acc"])
    lines += [
        "",
        f"**{s['seeds_holding']} of {n} seeds** hold {TARGET_ACCURACY}% in every one of the last five "
        f"epochs, so a fresh seed holds it with a probability of at least "
        f"**{100 * s['hold_probability_lower_bound']:.1f}%** (exact one-sided "
        f"{100 * s['hold_confidence']:g}% lower confidence bound, Clopper–Pearson). Final test accuracy: "
        f"**{final} ± {s['final_test_acc_std']:.2f}%** (mean ± sample std over {n} seeds); minimum of the "
        f"last five epochs: median **{median}%**, worst "
        f"**{s['worst_last5_min_test_acc']:.2f}%**."
        + (
            f" The same runs scored without the shifts, each image as it is: {s['seeds_holding_plain']} of "
            f"{n} seeds hold, median minimum {_over_runs(s['median_last5_min_plain_test_acc'])}%, worst "
            f"{s['worst_last5_min_plain_test_acc']:.2f}%."
            if shift
            else ""
        ),
    ]
    return "\n".join(lines)


def robustness_text(sweeps: list[tuple[str, dict]]) -> str:
    if not sweeps:
        return _missing("seed sweep", "python -m mnist_lite seeds --step 5 --seeds 1-20")
    parts = [sweep_text(folder, summary) for folder, summary in sweeps]
    return "\n\n".join([*parts, f"![The last five test accuracies of every seed]({SEEDS_FIGURE})"])


def bfloat16_text(sweeps: list[tuple[str, dict]]) -> str:
    """The sweep with the forward pass in bfloat16, whichever folder holds it."""
    found = [sweep_text(folder, summary) for folder, summary in sweeps if summary["dtype"] == "bfloat16"]
    command = (
        "python -m mnist_lite seeds --step 5 --seeds 1-10 --dtype bfloat16 --out results/"
        + OTHER_PRECISION_SWEEP.format(dtype="bfloat16")
    )
    return found[0] if found else _missing("bfloat16 seed sweep", command)


def seeds_figure(sweeps: list[tuple[str, dict]]):
    return plots.plot_seeds([summary for _, summary in sweeps])


# --- the design search, and the experiments before it -------------------------------------------------------


def load_design(results: Path, folder: str = DESIGN) -> dict | None:
    """``{"variants": {name: runs by seed}, "speed": design_speed.json or None}`` of the design
    runs in ``folder``; None when none is recorded. Each run must be a complete run scored on the
    validation split, in the folder of its variant and the file of its seed, with the recipe of
    its variant's other seeds."""
    paths = sorted((results / folder).glob("*/seed*.json"))
    if not paths:
        return None
    variants: dict[str, list[dict]] = {}
    for path in paths:
        run = read_json(path, DESIGN_RUN)
        run["recipe"] = {**RECIPE_FIELDS_ADDED, **run["recipe"]}
        problem = _unfit(run, "validation")
        if (run["variant"], f"seed{run['seed']}.json") != (path.parent.name, path.name):
            problem = f"variant {run['variant']!r}, seed {run['seed']}: not what its folder and name say"
        group = variants.setdefault(run["variant"], [])
        if group and any(run[key] != group[0][key] for key in ("recipe", "params", "multiply_adds")):
            problem = f"another recipe than {path.parent / 'seed'}{group[0]['seed']}.json"
        if problem:
            raise MnistLiteError(f"{path}: not a design run to report ({problem}); {DESIGN_RUN.fix}")
        group.append(run)
    for group in variants.values():
        group.sort(key=lambda r: r["seed"])
    speed = read_json(results / DESIGN_SPEED, DESIGN_SPEED_FILE, missing_ok=True)
    return {"variants": variants, "speed": speed}


def architecture_summary(architecture: dict) -> str:
    """A LiteNet's layout: the channels of the convolutions at each resolution, e.g.
    ``28x28: 8 | pool | 14x14: 12,16,16,16`` (the size is each group's input), and whether
    the convolutions after the first are depthwise-separable or the last ones dilated."""
    full, low = architecture["full_resolution"], architecture["low_resolution"]
    second_pool = architecture.get("second_pool", 0)
    size = 28 - len(full) * (2 - 2 * architecture["padding"])  # a 3x3 convolution trims 1 - padding a side
    parts = [f"28x28: {','.join(map(str, full))}", "pool"]
    if architecture["transition"]:
        parts.append(f"1x1 conv: {architecture['transition']}")
    size //= 2
    if second_pool:
        parts += [f"{size}x{size}: {','.join(map(str, low[:second_pool]))}", "pool"]
        low, size = low[second_pool:], (size - 2 * second_pool) // 2
    parts.append(f"{size}x{size}: {','.join(map(str, low))}")
    notes = []
    if architecture.get("separable"):
        notes.append("depthwise-separable after the first")
    if dilated := architecture.get("dilated", 0):
        notes.append(f"the last {dilated} dilated by 2" if dilated > 1 else "the last dilated by 2")
    return " | ".join(parts) + "".join(f" ({note})" for note in notes)


def _schedule(recipe: dict) -> str:
    if recipe["schedule"] == "step":
        milestones = ", ".join(map(str, recipe.get("milestones", [])))
        return f"step ({recipe['lr']:g}, ÷10 after epochs {milestones})"
    return f"{recipe['schedule']} ({recipe['lr']:g})"


def _optional(what: str, value: float) -> str:
    return f"{what} {value:g}" if value else f"no {what}"


OPTIMIZER_WORDS = {"sgd": "SGD", "nesterov": "SGD with Nesterov momentum", "adam": "Adam"}


def recipe_phrases(recipe: dict) -> list[tuple[tuple[str, ...], str]]:
    """Each aspect of a recipe as the design table words it, with the ``Recipe`` fields it comes from."""
    return [
        (("model",), architecture_summary(recipe["architecture"])),
        (("model",), _optional("dropout", recipe["architecture"]["dropout"])),
        (("lr", "schedule", "milestones"), _schedule(recipe)),
        (("batch_size",), f"batch {recipe['batch_size']}"),
        (
            ("augment",),
            f"rotation ±{recipe['rotation_degrees']:g}°" if recipe["rotation_degrees"] else "no rotation",
        ),
        (("augment",), f"shift ±{recipe['translate']:.0%}" if recipe["translate"] else "no shift"),
        # recorded only where used (``Recipe.as_dict``)
        (("augment",), f"zoom ±{recipe['scale']:.0%}" if recipe.get("scale") else "no zoom"),
        (("label_smoothing",), _optional("label smoothing", recipe["label_smoothing"])),
        (("weight_decay",), _optional("weight decay", recipe["weight_decay"])),
        (("ema_decay",), _optional("EMA of the weights", recipe["ema_decay"])),
        (("momentum",), f"momentum {recipe['momentum']:g}"),
        (("optimizer",), OPTIMIZER_WORDS[recipe.get("optimizer", "sgd")]),
        (("epochs",), f"{recipe['epochs']} epochs"),
    ]


def what_changed(recipe: dict, changes: list[str], baseline: dict) -> str:
    """The aspects of ``recipe`` that its variant's ``changes`` name, less those it set to the
    value they already had in ``baseline`` (the recipe the variants start from); a change the
    table has no words for is shown by its field name."""
    before = {phrase for _, phrase in recipe_phrases(baseline)}
    named = [
        phrase
        for fields, phrase in recipe_phrases(recipe)
        if set(fields) & set(changes) and phrase not in before
    ]
    worded = {field for fields, _ in recipe_phrases(recipe) for field in fields}
    return "; ".join(named + [f"{field} changed" for field in changes if field not in worded]) or "none"


def frontier_points(design: dict) -> list[dict]:
    """Per variant what ``plots.plot_frontier`` draws and the design table shows; ``step5``
    marks the variant whose recipe step 5 trains."""
    speed = design["speed"]["variants"] if design["speed"] else {}
    rounds = {name: runs[0].get("round", math.inf) for name, runs in design["variants"].items()}
    return [
        {
            "name": name,
            "params": runs[0]["params"],
            "multiply_adds": runs[0]["multiply_adds"],
            "seconds_per_epoch": speed[name]["median_seconds_per_epoch"] if name in speed else None,
            "min_last5": [r["last5_min_test_acc"] for r in runs],
            "final": [r["final_test_acc"] for r in runs],
            "step5": runs[0]["recipe"] == STEP5_PLAIN.as_dict(),
        }
        for name, runs in sorted(design["variants"].items(), key=lambda item: (rounds[item[0]], item[0]))
    ]


def design_table(design: dict, baseline: dict) -> list[str]:
    """The variants of ``design``, each with what it changed from ``baseline`` (a recorded recipe),
    its cost and each seed's lowest validation accuracy of the last five epochs."""
    runs = [r for group in design["variants"].values() for r in group]
    seeds = sorted({r["seed"] for r in runs})
    by_seed = {(r["variant"], r["seed"]): r for r in runs}
    lines = [
        "| Variant | What changed | Parameters | Multiply-adds | Seconds per epoch | "
        + " | ".join(f"Seed {seed}" for seed in seeds)
        + " | Mean min of last 5 | Mean final |",
        "|---|---|---:|---:|---:|" + "---:|" * len(seeds) + "---:|---:|",
    ]
    for point in frontier_points(design):
        first = design["variants"][point["name"]][0]
        changed = what_changed(first["recipe"], first["changes"], baseline)
        changed = changed.replace("|", "\\|")  # an unescaped pipe would end the table cell
        seconds = "—" if point["seconds_per_epoch"] is None else f"{point['seconds_per_epoch']:.2f}"
        runs_by_seed = {seed: by_seed.get((point["name"], seed)) for seed in seeds}
        cells = [f"{r['last5_min_test_acc']:.2f}%" if r else "" for r in runs_by_seed.values()]
        lines.append(
            f"| {point['name']} | {changed} | {first['params']:,} | {point['multiply_adds']:,} | {seconds} | "
            + " | ".join(cells)
            + "".join(f" | {_over_runs(statistics.mean(point[key]))}%" for key in ("min_last5", "final"))
            + " |"
        )
    settings = ", ".join(
        sorted(
            {
                f"{r['epochs']} epochs, {r.get('dtype', 'float32')} forward pass, "
                f"torch {r['torch_version']}, on {r['device_name']}"
                for r in runs
            }
        )
    )
    lines += [
        "",
        f"Each seed's column is the lowest validation accuracy of its last five epochs. "
        f"Every run: {settings}.",
    ]
    speed = design["speed"]
    if speed:
        lines.append(
            f"Seconds per epoch: the median of `python tools/design.py --time --dtype {speed['dtype']}` on "
            f"{speed['device_name']}, {speed['dtype']} forward pass, torch "
            f"{speed['torch_version']}; — where a variant was not timed."
        )
    return lines


def design_text(design: dict | None) -> str:
    if design is None:
        return _missing("design search", "python tools/design.py NAME --seeds 1,2")
    lines = [
        "**The design search, on the validation split.** Each variant is step 5's recipe from before the "
        "search (`previous`) with the changes shown, trained by `python tools/design.py NAME --seeds S` and "
        "judged on images held out of the training set (the validation split), never on the test set.",
        "",
        *design_table(design, DESIGN_BASELINE.as_dict()),
    ]
    lines += [
        "",
        _image_in_docs(
            "Validation accuracy against cost, per variant; the star is step 5's recipe", FRONTIER_FIGURE
        ),
    ]
    return "\n".join(lines)


def _image_in_docs(alt: str, figure: str) -> str:
    """The Markdown image of ``figure`` (relative to the repository) for a document in docs/."""
    return f"![{alt}]({Path(figure).relative_to('docs')})"


ROUND4_PICK = "batch256_rotate12_translate"  # round 4's pick, which rounds 9, 11 and 13 started from


# the design rounds run on another machine than the CPU rounds of the DESIGN folder: each reran round 4's
# pick beside its variants, so that its table compares runs of one machine.
# folder -> (how its table's heading names the round, what the line for a missing round calls it)
ROUNDS_ELSEWHERE = {
    DESIGN_GPU: ("Round 9, on a GPU", "GPU round of the design search"),
    DESIGN_XEON: ("Rounds 11 and 13, on an Intel Xeon", "Intel Xeon rounds of the design search"),
}


def design_round_text(design: dict | None, folder: str) -> str:
    heading, what = ROUNDS_ELSEWHERE[folder]
    command = f"python tools/design.py NAME --seeds S --dtype float32 --folder {folder}"
    if design is None:
        return _missing(what, command)
    if ROUND4_PICK not in design["variants"]:
        raise MnistLiteError(f"{folder}: no run of {ROUND4_PICK}, the variant the round starts from")
    lines = [
        f"**{heading}.** Each variant is `{ROUND4_PICK}` (round 4's pick) with the changes "
        f"shown, trained by `{command}` on the validation split, never on the test set; "
        f"`{ROUND4_PICK}` itself is rerun here so that every row was measured on the same machine.",
        "",
        *design_table(design, design["variants"][ROUND4_PICK][0]["recipe"]),
    ]
    return "\n".join(lines)


def frontier_figure(design: dict):
    return plots.plot_frontier(frontier_points(design))


@dataclass(frozen=True)
class PairedCheck:
    """A tool that trains step 5's recipe once per seed and scores every epoch of that one run
    several ways (``tools/paired.py``; ``tools/precise_bn.py``, ``tools/tta.py``): paired, so any
    difference between the ways is theirs, not a seed's luck. Records: FOLDER/seedS.json."""

    name: str  # what the missing-records line calls it, e.g. "paired BatchNorm check"
    record: str  # what a record is called, e.g. "paired BatchNorm run"
    folder: str  # under results/
    tool: str  # tools/TOOL.py
    # history key -> table column; the first is the way ``fit`` scores, the others are compared with it
    ways: dict[str, str]
    changes: dict[str, str]  # each other way -> how the sentence on its change names it
    doing: str  # what the other ways do, the subject of that sentence
    fields: dict  # the record's own fields, besides those every paired check has
    method: Callable[[dict], str]  # the closing paragraph, from the first run's record
    # "validation": trained on the split's 50,000 images; "test": on all 60,000, the final runs' way
    eval_split: str = "validation"

    @property
    def command(self) -> str:
        on_test = " --on-test" if self.eval_split == "test" else ""
        return f"python tools/{self.tool}.py{on_test} --seeds S"

    @property
    def schema(self) -> Schema:
        return Schema(
            self.record,
            {
                "seed": COUNT,
                "recipe": {"epochs": COUNT, "lr": NUMBER, "milestones": ListOf(COUNT, 1)},
                "train_limit": MAYBE_COUNT,
                "eval_split": TEXT,
                **self.fields,
                "dtype": TEXT,
                "device_name": TEXT,
                "torch_version": TEXT,
                "history": ListOf({"epoch": COUNT, **dict.fromkeys(self.ways, NUMBER)}, 1),
            },
            f"run `{self.command}` for its seed again",
        )


PRECISE_BN_CHECK = PairedCheck(
    name="paired BatchNorm check",
    record="paired BatchNorm run",
    folder=PRECISE_BN,
    tool="precise_bn",
    ways={
        "running": "running statistics",
        "clean": "recomputed on clean images",
        "augmented": "recomputed on augmented images",
    },
    changes={"clean": "on clean images", "augmented": "on augmented images"},
    doing="recomputing the statistics",
    fields={"calibration_images": COUNT},
    method=lambda first: (
        f"The statistics were recomputed after each epoch over all {first['calibration_images']:,} of its "
        "training images, as they are (clean) or rotated and shifted as in training (augmented)."
    ),
)
TTA_METHOD = (
    "Each image was classified by the mean of the softmax probabilities over its views: the image "
    "itself and its copies shifted by one pixel left, right, up and down (4 shifts), also "
    "diagonally (8 shifts), or rotated by 6° either way, black filling in (`views` in each record)."
)
TTA_CHECK = PairedCheck(
    name="paired test-time augmentation check",
    record="paired test-time augmentation run",
    folder=TTA,
    tool="tta",
    ways={
        "plain": "each image as it is",
        "shifts": "+ 4 one-pixel shifts",
        "shifts_diagonal": "+ 8 one-pixel shifts",
        "rotations": "+ rotations by ±6°",
    },
    changes={
        "shifts": "with 4 shifts",
        "shifts_diagonal": "with 8 shifts",
        "rotations": "with 2 rotations",
    },
    doing="averaging over the views",
    fields={"views": {str: ListOf(ListOf(NUMBER, 3), 1)}},
    method=lambda first: TTA_METHOD,
)
# the way the validation split chose, on the test set (tools/tta.py's ON_TEST_WAYS)
TTA_TEST_CHECK = dataclasses.replace(
    TTA_CHECK,
    name="paired test-time augmentation check on the test set",
    folder=TTA_TEST,
    ways={way: TTA_CHECK.ways[way] for way in ("plain", "shifts")},
    changes={"shifts": TTA_CHECK.changes["shifts"]},
    method=lambda first: (
        "Each image was classified as it is and by the mean of the softmax probabilities over the "
        "image and its copies shifted by one pixel left, right, up and down, black filling in."
    ),
    eval_split="test",
)


def load_paired(results: Path, check: PairedCheck) -> list[dict] | None:
    """The runs of ``check``'s tool by seed, or None when none is recorded. Each is step 5's
    recipe as it is trained today (``STEP5_PLAIN``: the tool scores its own ways) on all the
    training images of ``check.eval_split``, every epoch scored each of the check's ways (and,
    for a check that records its ``views``, those ways' views), all on one machine and torch."""
    paths = sorted((results / check.folder).glob("seed*.json"))
    if not paths:
        return None
    runs: list[dict] = []
    for path in paths:
        run = read_json(path, check.schema)
        problem = None
        if path.name != f"seed{run['seed']}.json":
            problem = f"seed {run['seed']}: not what its name says"
        elif run["recipe"] != STEP5_PLAIN.as_dict():
            problem = "not step 5's recipe as it is today, scored plainly"
        elif run["train_limit"] is not None or run["eval_split"] != check.eval_split:
            problem = f"not all the training images of the {check.eval_split} split"
        elif len(run["history"]) != run["recipe"]["epochs"]:
            problem = f"{len(run['history'])} epochs scored, not {run['recipe']['epochs']}"
        elif "views" in run and set(run["views"]) != set(check.ways):
            problem = f"views of {', '.join(run['views'])}, not of {', '.join(check.ways)}"
        elif runs and any(
            run[key] != runs[0][key] for key in ("dtype", "device_name", "torch_version", *check.fields)
        ):
            settings = ", ".join(["torch", "precision", *check.fields])
            problem = f"another machine or {settings} than {path.parent / 'seed'}{runs[0]['seed']}.json"
        if problem:
            raise MnistLiteError(f"{path}: not a paired run to report ({problem}); {check.schema.fix}")
        runs.append(run)
    return sorted(runs, key=lambda run: run["seed"])


def paired_text(runs: list[dict] | None, check: PairedCheck) -> str:
    """Per seed, the minimum of the last epochs and the final accuracy (on the check's split) each
    of ``check``'s ways, on the test set also how many seeds hold the target and the median
    minimum; then the mean change each way makes while the rate is high and over the last epochs."""
    if runs is None:
        return _missing(check.name, check.command)
    reference = next(iter(check.ways))

    def minimum(run: dict, way: str) -> float:
        return min(History(run["history"]).last(way))

    def final(run: dict, way: str) -> float:
        return run["history"][-1][way]

    lines = [
        "| Seed | "
        + " | ".join(f"Min of last {LAST_EPOCHS}, {label}" for label in check.ways.values())
        + " | "
        + " | ".join(f"Final, {label}" for label in check.ways.values())
        + " |",
        "|---:|" + "---:|" * 2 * len(check.ways),
    ]
    for run in runs:
        cells = [f"{minimum(run, way):.2f}%" for way in check.ways]
        cells += [f"{final(run, way):.2f}%" for way in check.ways]
        lines.append(f"| {run['seed']} | " + " | ".join(cells) + " |")
    means = [statistics.fmean(minimum(run, way) for run in runs) for way in check.ways]
    means += [statistics.fmean(final(run, way) for run in runs) for way in check.ways]
    lines.append("| Mean | " + " | ".join(f"{_over_runs(mean)}%" for mean in means) + " |")
    if check.eval_split == "test":  # the target's terms: seeds that hold, and the median per-seed minimum
        holding = [sum(minimum(run, way) >= TARGET_ACCURACY for run in runs) for way in check.ways]
        medians = [statistics.median(minimum(run, way) for run in runs) for way in check.ways]
        blank = " |" + " |" * len(check.ways)  # the final columns left empty
        lines += [
            f"| Hold {TARGET_ACCURACY:g}% | " + " | ".join(f"{n} of {len(runs)}" for n in holding) + blank,
            "| Median | " + " | ".join(f"{_over_runs(median)}%" for median in medians) + blank,
        ]
    first = runs[0]
    recipe = first["recipe"]
    high_rate = range(1, recipe["milestones"][0] + 1)
    last = range(recipe["epochs"] - LAST_EPOCHS + 1, recipe["epochs"] + 1)

    def change(way: str, epochs: range) -> str:
        gaps = [row[way] - row[reference] for run in runs for row in run["history"] if row["epoch"] in epochs]
        mean = round(statistics.fmean(gaps), 3)
        return ("-" if mean < 0 and _over_runs(-mean) != "0.00" else "+") + _over_runs(abs(mean))

    for epochs, when in ((high_rate, f"at the rate of {recipe['lr']:g}"), (last, f"the last {LAST_EPOCHS}")):
        changes = ", ".join(f"{change(way, epochs)} points {label}" for way, label in check.changes.items())
        lines += [
            "",
            f"Epochs {epochs.start} to {epochs.stop - 1} ({when}): {check.doing} changed the "
            f"{check.eval_split} accuracy by {changes} (the mean over {len(runs)} seeds).",
        ]
    lines += [
        "",
        f"Each seed trained once by `{check.command}` ({first['dtype']} forward pass, torch "
        f"{first['torch_version']}, on {first['device_name']}); its row is that one run scored "
        f"{len(check.ways)} ways. " + check.method(first),
    ]
    return "\n".join(lines)


def load_legacy(results: Path) -> list[dict]:
    return [read_json(path, LEGACY_RUN) for path in sorted((results / LEGACY_EXPERIMENTS).glob("*.json"))]


def legacy_table(runs: list[dict]) -> str:
    if not runs:
        return "_No experiments recorded._"
    lines = [
        "**Chosen on the test set.** These designs were compared by their TEST accuracy on seed 1 and the "
        "best was kept: a selection effect, since the best of several tries on one seed and the same 10,000 "
        "test images looks better than the design is. They are kept as a record; the design search on the "
        "validation split replaced them.",
        "",
        "| Variant | Architecture | Parameters | Dropout | Rotation | Schedule (learning rate) | Seed | "
        "Best train | Best test | Last 5 epochs | Min of last 5 |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in sorted(runs, key=lambda r: r["params"]):
        v, recipe = r["variant"], r["recipe"]
        lines.append(
            f"| {v['name']} | {v['architecture']} | {r['params']:,} | {v['dropout']} | "
            f"±{v['rotation_degrees']:g}° | {_schedule(recipe)}, batch {recipe['batch_size']} | "
            f"{r['seed']} | "
            f"{r['best_train_acc']:.2f}% | {r['best_test_acc']:.2f}% | {_percents(r['last5_test_acc'])} | "
            f"{r['last5_min_test_acc']:.2f}% |"
        )
    return "\n".join(lines)


def load_one_epoch(results: Path) -> tuple[list[dict], list[dict]]:
    """The one-epoch runs of step 5's previous recipe (``DESIGN_BASELINE``, which
    ``tools/one_epoch.py`` trains) on part of the data, and the complete runs of that recipe's
    seed sweep (whose first epochs the section compares them with)."""
    runs = []
    for path in sorted((results / ONE_EPOCH).glob(f"*/seed*/{RESULT}")):
        r = read_json(path, ONE_EPOCH_RUN)
        varied = {"epochs": 1, "batch_size": r["recipe"]["batch_size"], "lr": r["recipe"]["lr"]}
        limited = r["train_limit"] is not None and r["test_limit"] is not None
        if (
            r["error"]
            or r["interrupted"]
            or not limited
            or len(r["history"]) != 1
            or r.get("eval_split", "test") != "test"
            or r["recipe"] != dict(DESIGN_BASELINE.as_dict(), **varied)
        ):
            raise MnistLiteError(
                f"{path}: not a one-epoch run of step 5's previous recipe; {ONE_EPOCH_RUN.fix}"
            )
        runs.append(r)
    setting = {(r["train_limit"], r["test_limit"], r["torch_version"]) for r in runs}
    if len(setting) > 1:
        raise MnistLiteError(
            f"{results / ONE_EPOCH}: runs with different limits or torch versions {sorted(setting)}"
        )
    sweep = [read_json(path, RUN_FILE) for path in (results / PREVIOUS_SWEEP).glob(f"seed*/{RESULT}")]
    sweep = [r for r in sweep if r["recipe"] == DESIGN_BASELINE.as_dict() and _unfit(r, "test") is None]
    return runs, sorted(sweep, key=lambda r: r["seed"])


def one_epoch_table(loaded: tuple[list[dict], list[dict]]) -> str:
    """Step 5's previous recipe trained for one epoch on the first images of the training set, per
    batch size and rate (all runs with the same limits and torch version), and the first epochs of
    its seed sweep."""
    runs, sweep = loaded
    if not runs:
        return "_No short runs recorded yet: run `python tools/one_epoch.py`._"
    train_limit, test_limit = runs[0]["train_limit"], runs[0]["test_limit"]  # all runs': see the loader
    variants: dict[tuple, list[dict]] = {}
    for r in runs:
        variants.setdefault((r["recipe"]["batch_size"], r["recipe"]["lr"]), []).append(r)
    default = (DESIGN_BASELINE.batch_size, DESIGN_BASELINE.lr)
    lines = [
        "| Batch size | Learning rate | SGD steps | Test accuracy by seed | Best |",
        "|---:|---:|---:|---|---:|",
    ]
    for (batch_size, lr), group in sorted(variants.items(), key=lambda item: (-item[0][0], -item[0][1])):
        group.sort(key=lambda r: r["seed"])
        accs = ", ".join(f"{r['final_test_acc']:.1f}% (seed {r['seed']})" for r in group)
        label = " (the recipe)" if (batch_size, lr) == default else ""
        lines.append(
            f"| {batch_size}{label} | {lr:g} | {math.ceil(train_limit / batch_size)} | {accs} | "
            f"{max(r['final_test_acc'] for r in group):.1f}% |"
        )
    lines += [
        "",
        f"One epoch on the first {train_limit:,} training images, tested on the first "
        f"{test_limit:,}; "
        f"torch {runs[0]['torch_version']}.",
    ]
    if sweep:
        epoch1 = ", ".join(f"{r['history'][0]['test_acc']:.2f}% (seed {r['seed']})" for r in sweep)
        lines.append(
            f"One epoch on all 60,000 training images, tested on all 10,000 "
            f"(torch {sweep[0]['torch_version']}): {epoch1}."
        )
    return "\n".join(lines)


# --- speed and time -----------------------------------------------------------------------------------------


def performance_table(runs: list[dict] | None) -> str:
    if runs is None:
        return _missing("benchmark", "python -m mnist_lite bench")
    lines = []
    for b in runs:  # a table per machine, each with its own header: its ratios hold on it alone
        lines += [
            "| Machine | Setup | Parameters | Batch | Pipeline | Forward pass | Seconds per epoch (median) | "
            "Images per second | Time against the default |",
            "|---|---|---:|---:|---|---|---:|---:|---:|",
        ]
        for name, row in b["setups"].items():
            lines.append(
                f"| {b['device_name']} | `{name}` | {row['params']:,} | {row['batch_size']} | "
                f"`{row['loader']}` | {row['dtype']} | {row['median_seconds']:.2f} | "
                f"{row['images_per_second']:,.0f} | {b['vs_default'][name]:.2f}× |"
            )
        lines += [
            "",
            f"Step {b['step']}, {b['train_images']:,} training images an epoch; {b['repeats']} epochs of "
            f"each setup, interleaved, after a warm-up; torch {b['torch_version']}, measured {b['date']}."
            + speed_targets(b)
            + scoring_text(b),
            "",
        ]
    return "\n".join(lines).rstrip()


def scoring_text(b: dict) -> str:
    """What scoring the test set costs beside a training epoch, with the recipe's test-time
    shifts and without them, from the same run."""
    if "scoring" not in b:
        return ""
    c = b["scoring"]
    return (
        f" Scoring the {c['test_images']:,} test images after an epoch takes "
        f"{c['median_shifted_seconds']:.2f} s over {shifted_views(c['test_time_shift'])}, and "
        f"{c['median_plain_seconds']:.2f} s for each image "
        f"alone (the default's model, medians of {b['repeats']}, interleaved); the bars above time training."
    )


# step 5's speed bars: an epoch in at most this share of the previous recipe's time, and the classic
# pipeline at least this many times slower than the default
AT_MOST_OF_PREVIOUS = 0.5
CLASSIC_AT_LEAST = 3


def speed_targets(b: dict) -> str:
    """Step 5's two speed bars, read from the same run: the default against the previous recipe
    and the classic pipeline against the default."""
    ratios, seconds = b["vs_default"], {name: row["median_seconds"] for name, row in b["setups"].items()}
    if "previous_step5" not in ratios or "classic" not in ratios:
        return ""
    against_previous = seconds["default"] / seconds["previous_step5"]

    def verdict(met: bool) -> str:
        return "met" if met else "missed"

    return (
        f" The default takes **{against_previous:.2f}×** the time of step 5's previous recipe "
        f"(`previous_step5`; the bar: at most {AT_MOST_OF_PREVIOUS:.2f}×, "
        f"{verdict(against_previous <= AT_MOST_OF_PREVIOUS)}), and the classic pipeline takes "
        f"**{ratios['classic']:.2f}×** the default's (the bar: at least {CLASSIC_AT_LEAST}×, "
        f"{verdict(ratios['classic'] >= CLASSIC_AT_LEAST)})." + pipeline_floor(seconds)
    )


def pipeline_floor(seconds: dict[str, float]) -> str:
    """The most a faster pipeline could bring the classic pipeline's ratio to: its time over the
    default's without augmentation (``no_augmentation``), from the same run's median ``seconds``."""
    if "no_augmentation" not in seconds:
        return ""
    best_ratio = seconds["classic"] / seconds["no_augmentation"]
    reach = (
        "so in this run no faster pipeline alone would have met the bar with this model in float32"
        if best_ratio < CLASSIC_AT_LEAST
        else "so a faster pipeline could still meet the bar"
    )
    return (
        f" Without its augmentation (`no_augmentation`) the default's epoch takes "
        f"{seconds['no_augmentation']:.2f} s, about the least a pipeline could cost this model; the "
        f"classic pipeline takes **{best_ratio:.2f}×** that, the most a faster pipeline could reach, {reach}."
    )


def reproduce_text(r: dict | None) -> str:
    if r is None:
        return _missing("full reproduction", "python -m mnist_lite reproduce")
    per = ", ".join(f"step {n['step']} {n['seconds'] / 60:.1f} min" for n in r["notebooks"])
    machines = ", ".join(sorted({n["device_name"] for n in r["notebooks"]}))
    return (
        f"Executing the step notebooks with full runs took **{r['total_seconds'] / 60:.0f} minutes** "
        f"in all on {machines} ({per})."
    )


def trials_text(t: dict | None) -> str:
    if t is None:
        return "_No trials recorded yet: run `python tools/perf_trials.py`._"
    lines = [
        f"Measured on {t['device_name']} (CPU flags: {', '.join(t['cpu_flags'])}), {t['model']} at batch "
        f"size {t['batch_size']}: {t['batches_timed']} "
        f"batches per trial after a warm-up (its time, compilation included, is the last column), "
        f"{t['repeats']} interleaved repeats, median scaled to a 60,000-image epoch.",
        "",
        "| Trial | What changes | Seconds per epoch | Relative to default | Warm-up (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, row in t["trials"].items():
        lines.append(
            f"| `{name}` | {row['what']} | {row['median_seconds_per_epoch']:.2f} | "
            f"{row['vs_default']:.2f}× | {row['warmup_seconds']:.1f} |"
        )
    profile = t["profile"]
    total, conv = profile["total_seconds_per_epoch"], profile["convolution_seconds_per_epoch"]
    lines += [
        "",
        f"Where the `default` trial's time goes (torch.profiler, self time per operator, scaled to an epoch; "
        f"{total:.2f} s in all under the profiler, of which the convolutions' forward and backward passes "
        f"take {conv:.2f} s, {100 * conv / total:.0f}%):",
        "",
        "| Operator | Seconds per epoch | Share |",
        "|---|---:|---:|",
    ]
    for op in profile["top_ops"]:
        share = 100 * op["seconds_per_epoch"] / total
        lines.append(f"| `{op['op']}` | {op['seconds_per_epoch']:.2f} | {share:.0f}% |")
    peak = t["matmul_peak_gflops"][t["default_dtype"]]
    lines += [
        "",
        f"Against this CPU's peak: a training epoch is about {t['flop_per_epoch'] / 1e9:.0f} GFLOP "
        f"(three times the forward pass's multiply-adds, two operations each), so the `default` trial runs "
        f"at **{t['default_gflops']:.1f} GFLOP/s**, where a 2048x2048 matrix product in {t['default_dtype']} "
        f"reaches {peak:.1f} GFLOP/s on the same cores ("
        + ", ".join(f"{name} {value:.1f}" for name, value in t["matmul_peak_gflops"].items())
        + f"): {100 * t['default_gflops'] / peak:.0f}% of that practical peak.",
    ]
    return "\n".join(lines)


# --- the documents and figures, and filling them ------------------------------------------------------------


def section(load: Callable[[Path], object], show: Callable[[object], str]) -> Callable[[Path], str]:
    """A generated section: ``show`` (pure: data in, text out) of what ``load`` reads from results."""
    return lambda results: show(load(results))


def paired_section(check: PairedCheck) -> Callable[[Path], str]:
    return section(lambda results: load_paired(results, check), lambda runs: paired_text(runs, check))


def reader(name: str, schema: Schema) -> Callable[[Path], object]:
    """The loader of one file, ``name`` in the results folder: its checked JSON, or None if it is absent."""
    return lambda results: read_json(results / name, schema, missing_ok=True)


# REPLICATES/X, or REPLICATES_LABEL/X for each further machine (replicate_avx2/X): the sweep
# results/X trained again by the same command on another machine
REPLICATES = "replicate"


def replicated(folder: str) -> str | None:
    """The sweep that ``folder`` (a path under results/) trains again, if it is a replicate."""
    top, _, original = folder.partition("/")
    return original if original and re.fullmatch(rf"{REPLICATES}(_[a-z0-9]+)?", top) else None


# every step's sweep (step 5's and any earlier step's), the designs step 5 was compared with, the
# sweeps of earlier step-5 recipes (before the design search, previous_step5/, and before test-time
# shifts, step5_plain/), and the replicates
TEST_SWEEPS = (
    SEED_SWEEPS.format(step="*"),
    OTHER_PRECISION_SWEEP.format(dtype="*"),
    "frontier/*",
    "previous_step5/*",
    "step5_plain/*",
    f"{REPLICATES}*/*",
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


def load_test_sweeps(results: Path) -> list[tuple[str, dict]] | None:
    """Every seed sweep on the test set: step 5's, the designs it was compared with, and each way
    of scoring step 5's recipe that ``tools/tta.py --on-test`` summarised (named by its file).
    Each summary gains ``torch_versions``, which it does not record, from the runs it summarises."""
    paths = sorted({path for pattern in TEST_SWEEPS for path in results.glob(f"{pattern}/{SWEEP_SUMMARY}")})
    paths += sorted(results.glob(f"{TTA_TEST}/summary_*.json"))
    sweeps = []
    for path in paths:
        summary = read_json(path, TEST_SWEEP_FILE)
        _refuse_shifted_without_plain(path, summary)
        # the runs it summarises: `seeds` and design.py --summarise write seedS/result.json beside
        # it, tools/tta.py --on-test seedS.json
        run = "seed{}/result.json" if path.name == SWEEP_SUMMARY else "seed{}.json"
        runs = [path.parent / run.format(row["seed"]) for row in summary["seeds"]]
        summary["torch_versions"] = sorted({read_json(r, SWEEP_RUN_TORCH)["torch_version"] for r in runs})
        name = path.parent if path.name == SWEEP_SUMMARY else path
        sweeps.append((str(name.relative_to(results)), summary))
    return sweeps or None


def test_sweeps_table(sweeps: list[tuple[str, dict]] | None) -> str:
    """Per sweep on the test set: how many seeds hold the target in all of their last epochs, and how far."""
    if sweeps is None:
        return _missing("seed sweep", "python -m mnist_lite seeds --step 5")
    lines = [
        "| Sweep (`results/...`) | Model | Parameters | Epochs | Forward pass | Seeds | "
        f"Hold {TARGET_ACCURACY}% | Median of the per-seed minimum | Worst minimum | Machine | torch |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for folder, s in sweeps:
        minima = [row["last5_min_test_acc"] for row in s["seeds"]]
        holding = sum(minimum >= TARGET_ACCURACY for minimum in minima)
        lines.append(
            f"| `{folder}`{' (test-time shifts)' if s.get('test_time_shift') else ''} | {s['model']} | "
            f"{s['params']:,} | {s['epochs']} | {s.get('dtype', 'float32')} | "
            f"{len(minima)} | {holding} of {len(minima)} | {_over_runs(statistics.median(minima))}% | "
            f"{min(minima):.2f}% | {s['device_name']} | {', '.join(s['torch_versions'])} |"
        )
    if test_frontier_points(sweeps):
        alt = "Per-seed minima on the test set, with and without the shifts, against parameters and epochs"
        lines += ["", _image_in_docs(alt, TEST_FRONTIER_FIGURE)]
    return "\n".join(lines)


def test_frontier_points(sweeps: list[tuple[str, dict]] | None) -> list[dict]:
    """What ``plots.plot_test_frontier`` draws: step 5's sweep and the frontier's, those scored
    with test-time shifts in float32 (the others were scored another way or in another precision)."""
    return [
        {
            "name": name,
            "params": s["params"],
            "epochs": s["epochs"],
            "minima": [row["last5_min_test_acc"] for row in s["seeds"]],
            "plain_minima": [row["last5_min_plain_test_acc"] for row in s["seeds"]],
        }
        for name, s in sweeps or []
        if (name == SEED_SWEEP or name.startswith("frontier/"))
        and s.get("test_time_shift")
        and s.get("dtype", "float32") == "float32"
    ]


SWEEP_RUN_RECIPE = Schema(
    "seed run of a sweep", {"recipe": {str: Value("a recipe field", lambda v: True)}}, "train it again"
)


def _what_ran(folder: Path, summary: dict) -> tuple:
    """What two sweeps must share to be the same runs: recipe (every run of a sweep has one, as
    ``seed_summary`` checks), precision, split and seeds."""
    recipe = read_json(folder / f"seed{summary['seeds'][0]['seed']}" / RESULT, SWEEP_RUN_RECIPE)["recipe"]
    seeds = sorted(row["seed"] for row in summary["seeds"])
    return recipe, summary["dtype"], summary.get("eval_split", "test"), seeds


def load_replicates(results: Path) -> list[tuple[str, dict, str, dict]] | None:
    """Each replicate (see ``replicated``) with the sweep ``X`` it trains again: (X, its summary, the
    replicate's folder, its summary), both summaries checked as the robustness section checks
    step 5's. A replicate that is not the same runs, of another recipe, precision or split or of
    other seeds, is refused. Where each ran is what its summary's ``device_name`` says."""
    sweeps = {name for name, _ in load_test_sweeps(results) or []}
    pairs = []
    for again in sorted(name for name in sweeps if replicated(name)):
        original = replicated(again)
        if original not in sweeps:
            raise MnistLiteError(
                f"{results / again}: it trains results/{original} again, which holds no sweep"
            )
        first, second = (read_json(results / name / SWEEP_SUMMARY, SWEEP_FILE) for name in (original, again))
        if _what_ran(results / original, first) != _what_ran(results / again, second):
            raise MnistLiteError(
                f"{results / again}: not the runs of results/{original} again (another recipe, precision, "
                f"split or seeds); move it out of results/{again.partition('/')[0]}"
            )
        pairs.append((original, first, again, second))
    return pairs or None


def _machine_result(folder: str, s: dict) -> str:
    """What a sweep says, as a clause: where it ran, how many seeds hold, and their spread."""
    return (
        f"on {s['device_name']}, `{folder}`: {s['seeds_holding']} of {len(s['seeds'])} seeds hold, the "
        f"median per-seed minimum is {_over_runs(s['median_last5_min_test_acc'])}% and the worst "
        f"{s['worst_last5_min_test_acc']:.2f}%, the final accuracy {_over_runs(s['final_test_acc_mean'])} ± "
        f"{s['final_test_acc_std']:.2f}%, and the {100 * s['hold_confidence']:g}% lower bound on the chance "
        f"that a fresh seed holds is {100 * s['hold_probability_lower_bound']:.1f}%"
    )


def _correlation(first: list[float], second: list[float]) -> str:
    """The clause on how two machines' minima correlate across the seeds (Pearson), where there
    is a coefficient to give: three seeds at least, the minima not all alike on either machine."""
    if len(first) < 3 or len(set(first)) == 1 or len(set(second)) == 1:
        return ""
    coefficient = statistics.correlation(first, second)
    return f"; across the seeds the two machines' minima have a Pearson correlation of {coefficient:.2f}"


def replicate_text(pairs: list[tuple[str, dict, str, dict]] | None) -> str:
    """Per replicate, seed by seed, the minimum of the last five epochs on each machine, and
    how far the same seed's outcome carries over from one machine to the other."""
    if pairs is None:
        return _missing(
            "replicate",
            f"python -m mnist_lite seeds --step 5 --seeds 1-20 --out results/{REPLICATES}/{SEED_SWEEP}",
        )
    parts = []
    for original, first, again, second in pairs:
        # load_replicates made sure both hold the same seeds, maybe listed in another order
        again_by_seed = {row["seed"]: row for row in second["seeds"]}
        rows = [(row, again_by_seed[row["seed"]]) for row in first["seeds"]]
        lines = [
            f"| Seed | Min of last 5, `{original}` | Holds | Min of last 5, `{again}` | Holds | Change |",
            "|---:|---:|:---:|---:|:---:|---:|",
        ]
        for a, b in rows:
            low = [
                f"{row['last5_min_test_acc']:.2f}% | {'yes' if holds_target(row) else '**no**'}"
                for row in (a, b)
            ]
            change = b["last5_min_test_acc"] - a["last5_min_test_acc"]
            lines.append(f"| {a['seed']} | {low[0]} | {low[1]} | {change:+.2f} |")
        both = [(holds_target(a), holds_target(b)) for a, b in rows]
        changes = [round(abs(b["last5_min_test_acc"] - a["last5_min_test_acc"]), 2) for a, b in rows]
        minima = ([a["last5_min_test_acc"] for a, _ in rows], [b["last5_min_test_acc"] for _, b in rows])
        lines += [
            "",
            f"Over these {len(rows)} seeds, {_machine_result(original, first)}; "
            f"{_machine_result(again, second)}. Of the {len(rows)} seeds, {both.count((True, True))} held "
            f"on both machines, {both.count((False, False))} on neither and "
            f"{len(rows) - both.count((True, True)) - both.count((False, False))} on one only. A seed's "
            f"minimum moved by {_over_runs(statistics.median(changes))} points in the median and "
            f"{max(changes):.2f} at most{_correlation(*minima)}.",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


# --- the steps table's rows among their seeds ---------------------------------------------------------------


EARLIER_STEPS = [step for step in STEPS if step != 5]  # step 5's own sweeps have the robustness section


def load_step_sweeps(results: Path) -> tuple[dict[int, dict], dict[str, dict]]:
    """The steps table's runs, and by folder the test-set sweep of every earlier step that has
    one (``seeds --step N``) and step 5's sweeps in float32, here and on another machine."""
    folders = [SEED_SWEEPS.format(step=step) for step in EARLIER_STEPS] + [
        SEED_SWEEP,
        f"{REPLICATES}/{SEED_SWEEP}",
    ]
    sweeps = {}
    for folder in folders:
        summary = read_json(results / folder / SWEEP_SUMMARY, SWEEP_FILE, missing_ok=True)
        if summary is not None:
            _refuse_shifted_without_plain(results / folder / SWEEP_SUMMARY, summary)
            sweeps[folder] = summary
    return load_steps(results), sweeps


def _seeds(summary: dict) -> list[int]:
    return sorted(row["seed"] for row in summary["seeds"])


def step_sweeps_text(data: tuple[dict[int, dict], dict[str, dict]]) -> str:
    """Each earlier step's sweep over seeds: where the steps table's run, one seed, stands among
    its seeds, and step 5's sweeps over the same seeds on the same machine in the same precision,
    so that two steps are compared over many seeds rather than by one seed each."""
    runs, sweeps = data
    step5 = {folder: s for folder, s in sweeps.items() if Path(folder).name == SEED_SWEEP}
    parts = []
    for step in EARLIER_STEPS:
        folder = SEED_SWEEPS.format(step=step)
        s = sweeps.get(folder)
        if s is None:
            continue
        text = (
            f"Step {step}'s recipe, swept by `python -m mnist_lite seeds --step {step} --seeds "
            f"{_seed_list(_seeds(s))}` (a seed holds when every one of its last five epochs is at "
            f"or above {TARGET_ACCURACY}%), {_machine_result(f'results/{folder}', s)}."
        )
        run = runs.get(step)
        same = [
            row
            for row in s["seeds"]
            if run is not None
            and (row["seed"], row["last5_test_acc"]) == (run["seed"], run["last5_test_acc"])
        ]
        if same:
            higher = sum(row["last5_min_test_acc"] > same[0]["last5_min_test_acc"] for row in s["seeds"])
            text += (
                f" Step {step}'s row in the steps table is this sweep's seed {run['seed']} (the same last "
                f"five accuracies), and {higher} of the {len(s['seeds'])} seeds have a higher minimum."
            )
        for other, t in step5.items():
            if (t["device_name"], t["dtype"], _seeds(t)) != (s["device_name"], s["dtype"], _seeds(s)):
                continue
            plain = (
                f"; scored without its test-time shifts, {t['seeds_holding_plain']} of {len(t['seeds'])} "
                "seeds hold and the median per-seed minimum is "
                f"{_over_runs(t['median_last5_min_plain_test_acc'])}%"
            )
            text += (
                f" Step 5's recipe over the same seeds, in {t['dtype']} "
                f"{_machine_result(f'results/{other}', t)}{plain if t.get('test_time_shift') else ''}."
            )
        parts.append(text)
    return "\n\n".join(parts) or _missing("sweep of an earlier step", "python -m mnist_lite seeds --step 4")


# file (relative to the repository) -> its generated sections
DOCUMENTS = {
    "README.md": {
        "steps": section(load_steps, steps_table),
        "step-sweeps": section(load_step_sweeps, step_sweeps_text),
        "series": section(load_steps, series_text),
        "robustness": section(load_sweeps, robustness_text),
        "performance": section(reader(BENCH, BENCH_FILE), performance_table),
        "reproduce": section(reader(REPRODUCE, REPRODUCE_FILE), reproduce_text),
    },
    "docs/experiments.md": {
        "legacy-experiments": section(load_legacy, legacy_table),
        "experiments": section(load_design, design_text),
        **{
            name: section(
                lambda results, f=folder: load_design(results, f), lambda d, f=folder: design_round_text(d, f)
            )
            for name, folder in (("experiments-gpu", DESIGN_GPU), ("experiments-xeon", DESIGN_XEON))
        },
        "precise-bn": paired_section(PRECISE_BN_CHECK),
        "tta": paired_section(TTA_CHECK),
        "tta-test": paired_section(TTA_TEST_CHECK),
        "one-epoch": section(load_one_epoch, one_epoch_table),
        "test-sweeps": section(load_test_sweeps, test_sweeps_table),
        "replicate": section(load_replicates, replicate_text),
    },
    "docs/performance.md": {
        "trials": section(reader(PERF_TRIALS, TRIALS_FILE), trials_text),
        "bfloat16-seeds": section(load_sweeps, bfloat16_text),
        "performance": section(reader(BENCH, BENCH_FILE), performance_table),
    },
}
# figure (relative to the repository) -> (its loader, what draws it); drawn only when the loader finds data
FIGURES = {
    SERIES_FIGURE: (load_steps, series_figure),
    SEEDS_FIGURE: (load_sweeps, seeds_figure),
    FRONTIER_FIGURE: (load_design, frontier_figure),
    TEST_FRONTIER_FIGURE: (
        lambda results: test_frontier_points(load_test_sweeps(results)),
        plots.plot_test_frontier,
    ),
}


def draw_figure(name: str, results: Path) -> bytes | None:
    """The PNG of figure ``name`` from ``results``, or None when there is nothing to draw."""
    load, draw = FIGURES[name]
    data = load(results)
    return plots.render_png(draw, data) if data else None


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"


def render(
    text: str, results: Path, sections: dict = DOCUMENTS["README.md"], source: str = "the document"
) -> str:
    """``text`` with what lies between each of ``sections``' markers rewritten from ``results``,
    and everything outside the markers kept as it is.

    Each marker must be there exactly once, the opening one ending its line and the closing one
    starting a line, and no two sections may overlap: anything else could lose hand-written text,
    so it is refused (naming ``source``) before ``results`` is read.
    """
    spans = []  # (start of the section's body, end of it, name)
    for name in sections:
        opening, closing = _markers(name)
        counts = text.count(opening), text.count(closing)
        if counts == (0, 0):
            raise MnistLiteError(f"{source}: no {opening} ... {closing} markers to fill")
        if counts != (1, 1):
            raise MnistLiteError(
                f"{source}: {opening} is there {counts[0]} times and {closing} "
                f"{counts[1]} times; each must be there once"
            )
        start, end = text.index(opening) + len(opening) + 1, text.index(closing)
        if text[start - 1 : start] != "\n" or end < start or text[start:end][-1:] not in ("", "\n"):
            raise MnistLiteError(f"{source}: {opening} must end its line, and {closing} start a later one")
        spans.append((start, end, name))
    every_marker = [marker for name in sections for marker in _markers(name)]
    for start, end, name in spans:  # each marker is there once: sections overlap if one holds a marker
        inside = [marker for marker in every_marker if marker in text[start:end]]
        if inside:
            raise MnistLiteError(
                f"{source}: the generated section {name} holds {inside[0]}: sections must not overlap"
            )
    pieces, done = [], 0
    for start, end, name in sorted(spans):
        made = sections[name](results)
        if any(marker in made for marker in every_marker):
            raise MnistLiteError(f"{source}: the generated section {name} would hold a section marker")
        pieces += [text[done:start], made, "\n"]
        done = end
    return "".join([*pieces, text[done:]])


def render_all(repo: Path | None, results: Path) -> dict[Path, bytes]:
    """Every file the report writes (the documents with their sections filled, the figures that
    have data), as it is to be written: all made before any is written, so that a failure
    leaves every one as it was."""
    if repo is None or results is None:
        raise MnistLiteError("no repository checkout here: the report rewrites its README.md and docs/")
    if not os.path.isdir(results):  # os.path's: False, not an error, for a name too long to look up
        raise MnistLiteError(f"{results}: no such folder of results; pass --results FOLDER")
    try:
        recorded = any((Path(results) / name).exists() for name in REPORTED)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise MnistLiteError(f"{results}: cannot read it ({reason})") from None
    if not recorded:
        raise MnistLiteError(
            f"{results}: no recorded results in it (none of "
            f"{', '.join(REPORTED[:3])}, ...); pass --results FOLDER"
        )
    files = {}
    for name, sections in DOCUMENTS.items():
        path = repo / name
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8"
            raise MnistLiteError(f"{path}: cannot read it ({reason})") from None
        files[path] = render(text, results, sections, source=str(path)).encode()
    for name in FIGURES:
        png = draw_figure(name, results)
        if png is not None:
            files[repo / name] = png
    return files


def update_docs(repo: Path | None = REPO, results: Path = RESULTS) -> None:
    """Rewrite the generated sections of every file in ``DOCUMENTS`` and the figures in ``FIGURES``."""
    for path, data in render_all(repo, results).items():
        write_atomic(path, data)
