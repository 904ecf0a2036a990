"""Seed sweeps on the test set: step 5's robustness (README) and its bfloat16 sweep
(docs/performance.md), every sweep in one table with the test-set frontier figure and the
replicates on other machines (docs/experiments.md), and each earlier step's sweep beside step
5's (README)."""

from __future__ import annotations

import statistics
from pathlib import Path

from mnist_lite import plots
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import SEED_SWEEPS, TTA_TEST
from mnist_lite.report.common import (
    OTHER_PRECISION_SWEEP,
    REPLICATES,
    RESULT,
    ROUND4,
    SEED_SWEEP,
    SEEDS_FIGURE,
    SWEEP_FILE,
    SWEEP_RUN_RECIPE,
    SWEEP_RUN_TORCH,
    SWEEP_SUMMARY,
    TEST_FRONTIER_FIGURE,
    TEST_SWEEP_FILE,
    TEST_SWEEPS,
    image_in_docs,
    missing_note,
    over_runs,
    percents,
    replicated,
)
from mnist_lite.report.series import load_steps
from mnist_lite.results import holds_target
from mnist_lite.schema import read_json
from mnist_lite.steps import STEPS, TARGET_ACCURACY, shifted_views

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
            f"{percents(row['last5_test_acc'])} | {row['last5_min_test_acc']:.2f}% | "
            f"{'yes' if holds_target(row) else '**no**'} |{plain}"
        )
    n = len(s["seeds"])
    final, median = over_runs(s["final_test_acc_mean"]), over_runs(s["median_last5_min_test_acc"])
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
            f"{n} seeds hold, median minimum {over_runs(s['median_last5_min_plain_test_acc'])}%, worst "
            f"{s['worst_last5_min_plain_test_acc']:.2f}%."
            if shift
            else ""
        ),
    ]
    return "\n".join(lines)


def robustness_text(sweeps: list[tuple[str, dict]]) -> str:
    if not sweeps:
        return missing_note("seed sweep", "python -m mnist_lite seeds --step 5 --seeds 1-20")
    parts = [sweep_text(folder, summary) for folder, summary in sweeps]
    return "\n\n".join([*parts, f"![The last five test accuracies of every seed]({SEEDS_FIGURE})"])


def bfloat16_text(sweeps: list[tuple[str, dict]]) -> str:
    """The sweep with the forward pass in bfloat16, whichever folder holds it."""
    found = [sweep_text(folder, summary) for folder, summary in sweeps if summary["dtype"] == "bfloat16"]
    command = (
        "python -m mnist_lite seeds --step 5 --seeds 1-10 --dtype bfloat16 --out results/"
        + OTHER_PRECISION_SWEEP.format(dtype="bfloat16")
    )
    return found[0] if found else missing_note("bfloat16 seed sweep", command)


def seeds_figure(sweeps: list[tuple[str, dict]]):
    return plots.plot_seeds([summary for _, summary in sweeps])


def load_test_sweeps(results: Path) -> list[tuple[str, dict]] | None:
    """Every seed sweep on the test set: step 5's, the designs it was compared with, and each way
    of scoring step 5's recipe that ``tools/tta.py --on-test`` summarised (named by its file).
    Each summary gains ``torch_versions``, which it does not record, from the runs it summarises,
    and a seed sweep ``dilated``, its net's dilation (0 in runs recorded before nets had one)."""
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
        if path.name == SWEEP_SUMMARY:
            recipe = read_json(runs[0], SWEEP_RUN_RECIPE)["recipe"]
            summary["dilated"] = recipe.get("architecture", {}).get("dilated", 0)
        name = path.parent if path.name == SWEEP_SUMMARY else path
        sweeps.append((str(name.relative_to(results)), summary))
    return sweeps or None


def test_sweeps_table(sweeps: list[tuple[str, dict]] | None) -> str:
    """Per sweep on the test set: how many seeds hold the target in all of their last epochs, and how far."""
    if sweeps is None:
        return missing_note("seed sweep", "python -m mnist_lite seeds --step 5")
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
            f"{len(minima)} | {holding} of {len(minima)} | {over_runs(statistics.median(minima))}% | "
            f"{min(minima):.2f}% | {s['device_name']} | {', '.join(s['torch_versions'])} |"
        )
    if test_frontier_points(sweeps):
        alt = (
            "Per-seed minima on the test set, with and without the shifts, against parameters and epochs, "
            "for step 5's net, round 4's, and nets like them"
        )
        lines += ["", image_in_docs(alt, TEST_FRONTIER_FIGURE)]
    return "\n".join(lines)


def test_frontier_points(sweeps: list[tuple[str, dict]] | None) -> list[dict]:
    """What ``plots.plot_test_frontier`` draws: step 5's sweeps, today's and round 4's, and the
    frontier's, the variants of their recipes, those scored with test-time shifts in float32 (the
    others were scored another way or in another precision), each with its net's ``dilated``:
    today's step 5 is round 4's net with its last convolution dilated."""
    return [
        {
            "name": name,
            "params": s["params"],
            "epochs": s["epochs"],
            "dilated": s["dilated"],
            "minima": [row["last5_min_test_acc"] for row in s["seeds"]],
            "plain_minima": [row["last5_min_plain_test_acc"] for row in s["seeds"]],
        }
        for name, s in sweeps or []
        if (name in (SEED_SWEEP, f"{ROUND4}/{SEED_SWEEP}") or name.startswith("frontier/"))
        and s.get("test_time_shift")
        and s.get("dtype", "float32") == "float32"
    ]


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
                f"split or seeds); move it out of results/{again.rsplit('/', 1)[0]}"
            )
        pairs.append((original, first, again, second))
    return pairs or None


def _machine_result(folder: str, s: dict) -> str:
    """What a sweep says, as a clause: where it ran, how many seeds hold, and their spread."""
    return (
        f"on {s['device_name']}, `{folder}`: {s['seeds_holding']} of {len(s['seeds'])} seeds hold, the "
        f"median per-seed minimum is {over_runs(s['median_last5_min_test_acc'])}% and the worst "
        f"{s['worst_last5_min_test_acc']:.2f}%, the final accuracy {over_runs(s['final_test_acc_mean'])} ± "
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
        return missing_note(
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
            f"minimum moved by {over_runs(statistics.median(changes))} points in the median and "
            f"{max(changes):.2f} at most{_correlation(*minima)}.",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


# --- the steps table's rows among their seeds ---------------------------------------------------------------


EARLIER_STEPS = [step for step in STEPS if step != 5]  # step 5's own sweeps have the robustness section


def load_step_sweeps(results: Path) -> tuple[dict[int, dict], dict[str, dict]]:
    """The steps table's runs, and by folder the test-set sweep of every earlier step that has
    one (``seeds --step N``) and step 5's float32 sweep, here and in each replicate."""
    replicates = (path.relative_to(results).as_posix() for path in results.glob(f"*/{SEED_SWEEP}"))
    folders = [SEED_SWEEPS.format(step=step) for step in EARLIER_STEPS] + [
        SEED_SWEEP,
        *sorted(folder for folder in replicates if replicated(folder) == SEED_SWEEP),
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
                f"{over_runs(t['median_last5_min_plain_test_acc'])}%"
            )
            text += (
                f" Step 5's recipe over the same seeds, in {t['dtype']} "
                f"{_machine_result(f'results/{other}', t)}{plain if t.get('test_time_shift') else ''}."
            )
        parts.append(text)
    return "\n\n".join(parts) or missing_note(
        "sweep of an earlier step", "python -m mnist_lite seeds --step 4"
    )
