"""docs/experiments.md: the design search on the validation split and its rounds on other
machines, the paired checks of one training run scored several ways (precise BatchNorm,
test-time augmentation), the experiments before the search, and one epoch on 5,000 images."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_lite import plots
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import DESIGN, DESIGN_GPU, DESIGN_XEON, ONE_EPOCH, PRECISE_BN, TTA, TTA_STEP5, TTA_TEST
from mnist_lite.report.common import (
    DESIGN_FIGURE,
    DESIGN_RUN,
    DESIGN_SPEED,
    DESIGN_SPEED_FILE,
    FRONTIER_SPEED,
    FRONTIER_SPEED_FILE,
    LEGACY_EXPERIMENTS,
    LEGACY_RUN,
    ONE_EPOCH_RUN,
    PREVIOUS_SWEEP,
    RECIPE_FIELDS_ADDED,
    RESULT,
    ROUND4,
    RUN_FILE,
    SEED_SWEEP,
    image_in_docs,
    missing_note,
    over_runs,
    percents,
    section,
    unfit_reason,
)
from mnist_lite.report.sweeps import load_test_sweeps, test_frontier_points
from mnist_lite.results import History
from mnist_lite.schema import COUNT, MAYBE_COUNT, NUMBER, TEXT, ListOf, Schema, read_json
from mnist_lite.steps import DESIGN_BASELINE, LAST_EPOCHS, ROUND4_PLAIN, STEP5_PLAIN, TARGET_ACCURACY, Recipe


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
        problem = unfit_reason(run, "validation")
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
    the convolutions after the first are depthwise-separable, the last ones dilated, or the
    activation SiLU."""
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
    if architecture.get("activation", "relu") == "silu":
        notes.append("SiLU")
    return " | ".join(parts) + (f" ({'; '.join(notes)})" if notes else "")


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
        (
            ("warmup_epochs",),
            f"warm-up over {recipe['warmup_epochs']} epoch{'s' if recipe['warmup_epochs'] > 1 else ''}"
            if recipe.get("warmup_epochs")
            else "no warm-up",
        ),
        (("batch_size",), f"batch {recipe['batch_size']}"),
        (
            ("augment",),
            f"rotation ±{recipe['rotation_degrees']:g}°" if recipe["rotation_degrees"] else "no rotation",
        ),
        (("augment",), f"shift ±{recipe['translate']:.0%}" if recipe["translate"] else "no shift"),
        # recorded only where used (``Recipe.as_dict``)
        (("augment",), f"zoom ±{recipe['scale']:.0%}" if recipe.get("scale") else "no zoom"),
        (
            ("augment",),
            f"elastic α {recipe['elastic_alpha']:g}, σ {recipe['elastic_sigma']:g}"
            if recipe.get("elastic_alpha")
            else "no elastic",
        ),
        (
            ("clean_epochs",),
            f"no augmentation in the last {recipe['clean_epochs']} epochs"
            if recipe.get("clean_epochs")
            else "augmentation to the end",
        ),
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


def design_points(design: dict) -> list[dict]:
    """Per variant what ``plots.plot_design_search`` draws and the design table shows; ``step5``
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
    for point in design_points(design):
        first = design["variants"][point["name"]][0]
        changed = what_changed(first["recipe"], first["changes"], baseline)
        changed = changed.replace("|", "\\|")  # an unescaped pipe would end the table cell
        seconds = "—" if point["seconds_per_epoch"] is None else f"{point['seconds_per_epoch']:.2f}"
        runs_by_seed = {seed: by_seed.get((point["name"], seed)) for seed in seeds}
        cells = [f"{r['last5_min_test_acc']:.2f}%" if r else "" for r in runs_by_seed.values()]
        lines.append(
            f"| {point['name']} | {changed} | {first['params']:,} | {point['multiply_adds']:,} | {seconds} | "
            + " | ".join(cells)
            + "".join(f" | {over_runs(statistics.mean(point[key]))}%" for key in ("min_last5", "final"))
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
        return missing_note("design search", "python tools/design.py NAME --seeds 1,2")
    lines = [
        "**The design search, on the validation split.** Each variant is step 5's recipe from before the "
        "search (`previous`) with the changes shown, trained by `python tools/design.py NAME --seeds S` and "
        "judged on images held out of the training set (the validation split), never on the test set.",
        "",
        *design_table(design, DESIGN_BASELINE.as_dict()),
    ]
    lines += [
        "",
        image_in_docs(
            "Every variant ranked by validation accuracy, and against its cost; the star is step 5's recipe",
            DESIGN_FIGURE,
        ),
    ]
    return "\n".join(lines)


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
        return missing_note(what, command)
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


def design_figure(design: dict):
    return plots.plot_design_search(design_points(design))


# a paired comparison that tells a mean difference from none one-sided at 5%, 4 times in 5 (power 80%)
SIGNIFICANCE, POWER = 0.05, 0.80
Z_SIGNIFICANCE, Z_POWER = (statistics.NormalDist().inv_cdf(p) for p in (1 - SIGNIFICANCE, POWER))


def resolved_gain(seeds: int, spread: float) -> float:
    """The true mean per-seed gain that ``seeds`` paired seeds would show, one-sided at
    ``SIGNIFICANCE``, with a chance of ``POWER``, when the differences scatter with standard
    deviation ``spread`` (taken as known: the normal approximation)."""
    return (Z_SIGNIFICANCE + Z_POWER) * spread / math.sqrt(seeds)


def seeds_to_resolve(mean: float, spread: float) -> int | None:
    """The fewest seeds per variant (at least 2, for a spread to be measured) whose
    ``resolved_gain`` reaches ``mean``; None for a mean that is not a gain, which no number of
    seeds would show to be one."""
    if mean <= 0:
        return None
    seeds = max(2, math.ceil(((Z_SIGNIFICANCE + Z_POWER) * spread / mean) ** 2))
    while seeds > 2 and resolved_gain(seeds - 1, spread) <= mean:  # the float a hair above a whole number
        seeds -= 1
    return seeds


@dataclass(frozen=True)
class Paired:
    """Per-seed differences between two ways or variants (in points), summed up: their mean and
    standard deviation, and on how many seeds the first was higher, lower or level. Each
    difference is rounded to a millionth, so that float noise makes no seed higher or lower."""

    differences: list[float]

    def __post_init__(self):
        object.__setattr__(self, "differences", [round(d, 6) for d in self.differences])

    @property
    def mean(self) -> float:
        return round(statistics.fmean(self.differences), 6)

    @property
    def shown_mean(self) -> str:
        """The mean, signed and exact where five decimals can show it: a mean of hundredths over a
        few seeds has few decimals, and rounded, 0.02875 would read as the 0.03 a rule may ask and
        -0.0075 would tip either way."""
        # the fewest decimals, from the hundredths it is made of, that show it exactly; three for a
        # mean that no five decimals show (a third of a hundredth)
        exact = next((n for n in range(2, 6) if abs(round(self.mean, n) - self.mean) < 1e-9), 3)
        return f"{self.mean:+.{exact}f}"

    @property
    def spread(self) -> float:
        return statistics.stdev(self.differences)

    @property
    def signs(self) -> tuple[int, int, int]:
        """Seeds higher, lower, level."""
        higher, lower = sum(d > 0 for d in self.differences), sum(d < 0 for d in self.differences)
        return higher, lower, len(self.differences) - higher - lower

    @property
    def resolves(self) -> float:
        """The gain as many seeds as these resolve, at their own spread (``resolved_gain``)."""
        return resolved_gain(len(self.differences), self.spread)


def settings_changed(recipe: dict, other: dict) -> int:
    """How many settings two recorded recipes differ in, counting each of a nested one's
    (the architecture, the augmentation) and any that only one of them records."""
    return sum(
        settings_changed(recipe[key], other[key])
        if isinstance(recipe.get(key), dict) and isinstance(other.get(key), dict)
        else key not in recipe or key not in other or recipe[key] != other[key]
        for key in recipe.keys() | other.keys()
    )


def resolution_text(design: dict | None) -> str:
    """The variants built on step 5's recipe, against it seed by seed: the mean and spread of the
    differences in the per-seed minimum, and the seeds a comparison would need to resolve that
    mean. What the search's seeds can and cannot tell apart.

    A variant is built on step 5's recipe when it changes fewer settings of it than of round 4's
    pick, the recipe step 5 was built from; the variants that changed the pick alone, set against
    step 5, would mix their own change with step 5's."""
    command = "python tools/design.py NAME --seeds S"
    if design is None:
        return missing_note("design search", command)
    points = design_points(design)
    step5 = [point["name"] for point in points if point["step5"]]
    if len(step5) > 1:
        raise MnistLiteError(f"the design search runs step 5's recipe as {' and '.join(step5)}; keep one")
    baseline = (
        {run["seed"]: run["last5_min_test_acc"] for run in design["variants"][step5[0]]} if step5 else {}
    )
    if len(baseline) < 2:  # a spread needs two seeds
        return missing_note("design run of step 5's recipe on two seeds or more", command)
    step5_recipe, pick = STEP5_PLAIN.as_dict(), ROUND4_PLAIN.as_dict()
    lines = [
        f"Each variant built on step 5's recipe (`{step5[0]}`) and run on all of its seeds "
        f"({', '.join(map(str, baseline))}), against it seed by seed: the difference in the lowest "
        "validation accuracy of the last five epochs, in points.",
        "",
        "| Variant | Parameters | Mean difference | Standard deviation of the differences "
        "| Seeds higher / lower / level | Gain these seeds resolve | Seeds to resolve the mean |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    rows = []
    for point in points:
        runs = {run["seed"]: run["last5_min_test_acc"] for run in design["variants"][point["name"]]}
        recipe = design["variants"][point["name"]][0]["recipe"]
        built_on_step5 = settings_changed(recipe, step5_recipe) < settings_changed(recipe, pick)
        if point["step5"] or not built_on_step5 or not baseline.keys() <= runs.keys():
            continue
        paired = Paired([runs[seed] - baseline[seed] for seed in baseline])
        needed = seeds_to_resolve(paired.mean, paired.spread)
        rows.append(
            f"| {point['name']} | {point['params']:,} | {paired.shown_mean} | {paired.spread:.3f} | "
            f"{' / '.join(map(str, paired.signs))} | "
            f"{paired.resolves:.3f} | {'—' if needed is None else f'{needed:,}'} |"
        )
    lines += rows or ["| none |  |  |  |  |  |  |"]
    lines += [
        "",
        f"Step 5's own per-seed minima on these seeds have a standard deviation of "
        f"{statistics.stdev(baseline.values()):.3f} points. Gain these seeds resolve: the true mean gain "
        f"that as many seeds as were run would show, one-sided at {SIGNIFICANCE:.0%}, with a chance of "
        f"{POWER:.0%}. Seeds to resolve the mean: how many seeds of each, paired, would show the mean "
        "measured, were it the true gain, in the same way. Both by the normal approximation, "
        f"n = (({Z_SIGNIFICANCE:.3f} + {Z_POWER:.3f}) × standard deviation / gain)², taking the "
        "deviation measured here as the true one, which with so few seeds it is not; — where the mean "
        "is not a gain.",
    ]
    return "\n".join(lines)


def last_minimum(run: dict, way: str) -> float:
    """The lowest accuracy of a paired run's last epochs, scored ``way``."""
    return min(History(run["history"]).last(way))


@dataclass(frozen=True)
class AdoptionRule:
    """A rule fixed before a paired check ran: ``way`` is adopted if, over seeds 1 to ``seeds``,
    it raises the mean per-seed minimum of the last epochs above ``over``'s by at least ``gain``
    points and that minimum is higher on at least ``higher`` of the seeds."""

    way: str
    over: str
    gain: float
    higher: int
    seeds: int = 8

    def __post_init__(self):
        if self.seeds < 2 or not 0 < self.higher <= self.seeds or self.gain <= 0:
            raise ValueError(f"{self}: a gain above 0, on 1 to {self.seeds} of 2 or more seeds")

    def verdict(self, runs: list[dict], labels: dict[str, str]) -> str:
        """The rule in words, and whether ``runs`` meet it (judged only once all its seeds are in)."""
        rule = (
            f"The rule fixed before these runs: scoring {labels[self.way]} is adopted if, over seeds 1 "
            f"to {self.seeds}, it raises the mean per-seed minimum of the last {LAST_EPOCHS} epochs above "
            f"scoring {labels[self.over]} by at least {self.gain:.2f} points, higher on at least "
            f"{self.higher} of the {self.seeds} seeds."
        )
        if [run["seed"] for run in runs] != list(range(1, self.seeds + 1)):
            return f"{rule} It is judged once seeds 1 to {self.seeds}, and only they, are recorded."
        paired = Paired([last_minimum(run, self.way) - last_minimum(run, self.over) for run in runs])
        mean, (higher, lower, level) = paired.mean, paired.signs
        met = mean >= self.gain and higher >= self.higher
        needed = seeds_to_resolve(mean, paired.spread)
        return (
            f"{rule} It changed that mean by {paired.shown_mean} points, higher on {higher}, lower on "
            f"{lower} and level on {level} of the {len(runs)}: "
            + ("**met**." if met else "**not met**.")
            + f" The per-seed differences have a standard deviation of {paired.spread:.3f} points, so "
            f"these {len(runs)} seeds resolve a gain of {paired.resolves:.3f} points (as in "
            '"What eight seeds resolve")' + (f" and the mean would take {needed} seeds." if needed else ".")
        )


@dataclass(frozen=True)
class PairedCheck:
    """A tool that trains a recipe of step 5 (``recipe``, round 4's unless a check names another)
    once per seed and scores every epoch of that one run several ways (``tools/paired.py``;
    ``tools/precise_bn.py``, ``tools/tta.py``): paired, so any difference between the ways is
    theirs, not a seed's luck. Records: FOLDER/seedS.json."""

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
    recipe: Recipe = ROUND4_PLAIN  # what every record trained, scored plainly
    trained: str = "round 4's recipe of step 5"  # that recipe, in the closing paragraph's words
    option: str = ""  # the tool's option that trains ``recipe``, if not its default
    rule: AdoptionRule | None = None  # fixed before the runs, if the check was to decide something

    @property
    def command(self) -> str:
        on_test = " --on-test" if self.eval_split == "test" else ""
        return f"python tools/{self.tool}.py{on_test}{self.option} --seeds S"

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
# round 21: step 5's recipe since round 18, its shifts with round 11's rotations added (tools/tta.py --step5)
TTA_STEP5_CHECK = dataclasses.replace(
    TTA_CHECK,
    name="paired test-time augmentation check of step 5's recipe",
    folder=TTA_STEP5,
    ways={
        **{way: TTA_CHECK.ways[way] for way in ("plain", "shifts", "rotations")},
        "shifts_rotations": "+ 4 shifts and the rotations",
    },
    changes={
        **{way: TTA_CHECK.changes[way] for way in ("shifts", "rotations")},
        "shifts_rotations": "with 4 shifts and 2 rotations",
    },
    method=lambda first: (
        "Each image was classified by the mean of the softmax probabilities over its views: the image "
        "itself and its copies shifted by one pixel left, right, up and down (4 shifts, the way step 5 "
        "scores), rotated by 6° either way, or both, black filling in (`views` in each record)."
    ),
    recipe=STEP5_PLAIN,
    trained="step 5's recipe since round 18 (without its test-time shifts)",
    option=" --step5",
    rule=AdoptionRule(way="shifts_rotations", over="shifts", gain=0.03, higher=6),
)


def load_paired(results: Path, check: PairedCheck) -> list[dict] | None:
    """The runs of ``check``'s tool by seed, or None when none is recorded. Each is the check's
    recipe scored plainly (the tool scores its own ways) on all the training images of
    ``check.eval_split``, every epoch scored each of the check's ways (and, for a check that
    records its ``views``, those ways' views), all on one machine and torch."""
    paths = sorted((results / check.folder).glob("seed*.json"))
    if not paths:
        return None
    runs: list[dict] = []
    for path in paths:
        run = read_json(path, check.schema)
        problem = None
        if path.name != f"seed{run['seed']}.json":
            problem = f"seed {run['seed']}: not what its name says"
        elif run["recipe"] != check.recipe.as_dict():
            problem = f"not {check.trained}, scored plainly"
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
        return missing_note(check.name, check.command)
    reference = next(iter(check.ways))

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
        cells = [f"{last_minimum(run, way):.2f}%" for way in check.ways]
        cells += [f"{final(run, way):.2f}%" for way in check.ways]
        lines.append(f"| {run['seed']} | " + " | ".join(cells) + " |")
    means = [statistics.fmean(last_minimum(run, way) for run in runs) for way in check.ways]
    means += [statistics.fmean(final(run, way) for run in runs) for way in check.ways]
    lines.append("| Mean | " + " | ".join(f"{over_runs(mean)}%" for mean in means) + " |")
    if check.eval_split == "test":  # the target's terms: seeds that hold, and the median per-seed minimum
        holding = [sum(last_minimum(run, way) >= TARGET_ACCURACY for run in runs) for way in check.ways]
        medians = [statistics.median(last_minimum(run, way) for run in runs) for way in check.ways]
        blank = " |" + " |" * len(check.ways)  # the final columns left empty
        lines += [
            f"| Hold {TARGET_ACCURACY:g}% | " + " | ".join(f"{n} of {len(runs)}" for n in holding) + blank,
            "| Median | " + " | ".join(f"{over_runs(median)}%" for median in medians) + blank,
        ]
    first = runs[0]
    recipe = first["recipe"]
    high_rate = range(1, recipe["milestones"][0] + 1)
    last = range(recipe["epochs"] - LAST_EPOCHS + 1, recipe["epochs"] + 1)

    def change(way: str, epochs: range) -> str:
        gaps = [row[way] - row[reference] for run in runs for row in run["history"] if row["epoch"] in epochs]
        mean = round(statistics.fmean(gaps), 3)
        return ("-" if mean < 0 and over_runs(-mean) != "0.00" else "+") + over_runs(abs(mean))

    for epochs, when in ((high_rate, f"at the rate of {recipe['lr']:g}"), (last, f"the last {LAST_EPOCHS}")):
        changes = ", ".join(f"{change(way, epochs)} points {label}" for way, label in check.changes.items())
        lines += [
            "",
            f"Epochs {epochs.start} to {epochs.stop - 1} ({when}): {check.doing} changed the "
            f"{check.eval_split} accuracy by {changes} "
            f"(the mean over {len(runs)} seed{'s' if runs[1:] else ''}).",
        ]
    lines += [
        "",
        f"Each seed trained {check.trained} once, by `{check.command}` ({first['dtype']} "
        f"forward pass, torch {first['torch_version']}, on {first['device_name']}); its row is that "
        f"one run scored {len(check.ways)} ways. " + check.method(first),
    ]
    if check.rule:
        lines += ["", check.rule.verdict(runs, check.changes)]
    return "\n".join(lines)


def paired_section(check: PairedCheck) -> Callable[[Path], str]:
    return section(lambda results: load_paired(results, check), lambda runs: paired_text(runs, check))


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
            f"{r['best_train_acc']:.2f}% | {r['best_test_acc']:.2f}% | {percents(r['last5_test_acc'])} | "
            f"{r['last5_min_test_acc']:.2f}% |"
        )
    return "\n".join(lines)


# the variant of tools/design.py that each of step 5's sweeps trains (a frontier sweep,
# frontier/NAME_DTYPE, trains NAME), by which its net's training is timed
STEP5_VARIANT = "step5_dilated1"
SWEEP_VARIANTS = {SEED_SWEEP: STEP5_VARIANT, f"{ROUND4}/{SEED_SWEEP}": ROUND4_PICK}
# what the frontier's timing table says beside a variant's name
FRONTIER_SPEED_NOTES = {STEP5_VARIANT: "step 5's training", ROUND4_PICK: "round 4's"}


def load_frontier_speed(results: Path) -> list[dict] | None:
    return read_json(results / FRONTIER_SPEED, FRONTIER_SPEED_FILE, missing_ok=True)


def sweep_variant(sweep: str) -> str:
    """The design variant a sweep on the test set trains (``sweep``: its folder under results/)."""
    return SWEEP_VARIANTS.get(sweep) or sweep.removeprefix("frontier/").rsplit("_", 1)[0]


def load_test_frontier(results: Path) -> dict | None:
    """What ``plots.plot_test_frontier`` draws (``sweeps.test_frontier_points``), each sweep with
    the seconds per training epoch of its net (``seconds_per_epoch``, None where not timed) from
    the one frontier timing run that times the most of them, whose machine is ``timed_on``: times
    from two runs do not compare. None when there is no sweep to draw."""
    points = test_frontier_points(load_test_sweeps(results))
    if not points:
        return None
    runs = load_frontier_speed(results) or []
    timed = max(
        runs,
        key=lambda run: sum(sweep_variant(p["name"]) in run["variants"] for p in points),
        default={"device_name": None, "variants": {}},
    )
    for point in points:
        variant = timed["variants"].get(sweep_variant(point["name"]))
        point["seconds_per_epoch"] = variant["median_seconds_per_epoch"] if variant else None
    return {"sweeps": points, "timed_on": timed["device_name"]}


def frontier_speed_table(runs: list[dict] | None) -> str:
    """The frontier points' seconds per training epoch, timed side by side in one run, a table per
    machine's run: the command, then each variant's size, median and range over the repeats, in
    the run's order. Only the times within one table compare."""
    if runs is None:
        return missing_note("frontier timing", "python tools/design.py --time NAME NAME")
    return "\n\n".join(map(_frontier_speed_run, runs))


def _frontier_speed_run(speed: dict) -> str:
    names = list(speed["variants"])
    lines = [
        f"`python tools/design.py --time {' '.join(names)} --repeats {speed['repeats']}` trains each on "
        f"{speed['images_timed']:,} images per round, the {len(names)} interleaved, with a "
        f"{speed['dtype']} forward pass on {speed['device_name']} (torch {speed['torch_version']}), and "
        f"scales to a 60,000-image epoch. Medians of the {speed['repeats']} rounds, with their range:",
        "",
        "| Variant | Parameters | Multiply-adds per image | Seconds per epoch | Range |",
        "|---|---:|---:|---:|---|",
    ]
    for name, timed in speed["variants"].items():
        note = f" ({FRONTIER_SPEED_NOTES[name]})" if name in FRONTIER_SPEED_NOTES else ""
        seconds = timed["seconds_per_epoch"]
        lines.append(
            f"| `{name}`{note} | {timed['params']:,} | {timed['multiply_adds']:,} | "
            f"{timed['median_seconds_per_epoch']:.2f} | {min(seconds):.2f} to {max(seconds):.2f} |"
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
    sweep = [r for r in sweep if r["recipe"] == DESIGN_BASELINE.as_dict() and unfit_reason(r, "test") is None]
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
