"""The README's and docs' generated sections and figures, and the recorded results behind them."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import matplotlib.image
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnist_lite import plots, report
from mnist_lite.config import Lite
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.report.common import ROUND4
from mnist_lite.results import History, clopper_pearson_lower, load_result, seed_summary
from mnist_lite.steps import (
    DESIGN_BASELINE,
    OPTIMIZERS,
    PARAM_BUDGET,
    ROUND4_PLAIN,
    ROUND4_STEP5,
    STEP5_BUDGET,
    STEP5_PLAIN,
    STEPS,
    TARGET_ACCURACY,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"
HOLDING = [99.41, 99.45, 99.43, 99.47, 99.5]  # the last five test accuracies of a seed that holds the target
MISSING = [99.41, 99.45, 99.38, 99.47, 99.5]  # ... and of one that does not


# --- fake results, written into tmp_path --------------------------------------------------------------------


def fake_run(step=5, seed=1, last5=HOLDING, **changes) -> dict:
    """A complete result.json of ``step``'s recipe whose last five test accuracies are ``last5``;
    scored with test-time shifts (step 5), each image alone scored 0.05 points lower."""
    recipe = STEPS[step]
    accs = [97.0 + epoch / 10 for epoch in range(recipe.epochs - len(last5))] + list(last5)
    history = History(
        [
            {
                "epoch": epoch,
                "train_loss": 0.05,
                "train_acc": acc - 0.2,
                "test_loss": 0.02,
                "test_acc": acc,
                **({"plain_test_acc": round(acc - 0.05, 3)} if recipe.test_time_shift else {}),
                "lr": 0.1,
                "seconds": 1.0,
            }
            for epoch, acc in enumerate(accs, start=1)
        ]
    )
    run = {
        "step": step,
        "name": recipe.slug,
        "model": recipe.model.name,
        "params": 7578,
        "seed": seed,
        "device": "cpu",
        "device_name": "a CPU",
        "loader": "fast",
        "dtype": "float32",
        "epochs": recipe.epochs,
        "train_limit": None,
        "test_limit": None,
        "eval_split": "test",
        "recipe": recipe.as_dict(),
        "torch_version": "2.9",
        "interrupted": False,
        "error": None,
        "history": history.epochs,
        **history.summary(),
    }
    return {**run, **changes}


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        content
        if isinstance(content, bytes)
        else (content if isinstance(content, str) else json.dumps(content)).encode()
    )
    return path


def write_sweep(results: Path, folder: str, seeds, dtype="float32", missing=(), **changes) -> dict:
    """FOLDER/seedS/result.json of fake runs and their FOLDER/summary.json, as ``seeds`` writes them."""
    runs = [
        fake_run(seed=s, last5=MISSING if s in missing else HOLDING, dtype=dtype, **changes) for s in seeds
    ]
    for run in runs:
        write(results / folder / f"seed{run['seed']}" / "result.json", run)
    summary = seed_summary(runs)
    write(results / folder / "summary.json", summary)
    return summary


def design_run(variant: str, seed: int, last5=HOLDING, changes=(), **recipe_changes) -> dict:
    recipe = dict(DESIGN_BASELINE.as_dict(), **recipe_changes)
    return fake_run(
        seed=seed,
        last5=last5,
        recipe=recipe,
        eval_split="validation",
        variant=variant,
        changes=sorted(changes),
        multiply_adds=584_224,
    )


def checkout(tmp_path: Path) -> Path:
    """A copy of the documents the report rewrites, in ``tmp_path/repo``."""
    repo = tmp_path / "repo"
    for name in report.DOCUMENTS:
        write(repo / name, (REPO / name).read_bytes())
    return repo


def documents(repo: Path) -> dict[str, bytes]:
    return {name: (repo / name).read_bytes() for name in report.DOCUMENTS}


# --- the committed documents and figures are what the report makes ------------------------------------------


@pytest.mark.parametrize("name", sorted(report.DOCUMENTS))
def test_generated_sections_are_what_report_writes(name):
    text = (REPO / name).read_text()
    rendered = report.render(text, RESULTS, report.DOCUMENTS[name])
    assert rendered == text, f"{name} is stale: run python -m mnist_lite report"


def pixels(png: bytes):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


@pytest.mark.parametrize("name", sorted(report.FIGURES))
def test_committed_figures_are_what_report_draws(name):
    """Compared as decoded pixels, so that another PNG encoder's bytes for the same picture pass."""
    drawn = report.draw_figure(name, RESULTS)
    committed = REPO / name
    if drawn is None:
        assert not committed.exists(), f"{name}: nothing to draw from results/, yet the file is there"
        return
    assert committed.exists(), f"{name} is missing: run python -m mnist_lite report"
    old, new = pixels(committed.read_bytes()), pixels(drawn)
    assert old.shape == new.shape and (old == new).all(), f"{name} is stale: run python -m mnist_lite report"


def test_figures_are_drawn_the_same_every_time(tmp_path):
    write(tmp_path / "step1" / "result.json", fake_run(step=1))
    first, second = (report.draw_figure(report.common.SERIES_FIGURE, tmp_path) for _ in range(2))
    assert first == second and first.startswith(b"\x89PNG") and b"Software" not in first


# --- the steps and the series -------------------------------------------------------------------------------


def test_render_fills_every_section_and_keeps_the_rest(tmp_path):
    (tmp_path / "step5_seeds").mkdir()
    sections = report.DOCUMENTS["README.md"]
    text = "intro\n" + "".join(f"<!-- generated:{n} -->\nold\n<!-- /generated:{n} -->\n" for n in sections)
    rendered = report.render(text, tmp_path)
    assert rendered.startswith("intro\n") and "\nold\n" not in rendered
    assert "run `python -m mnist_lite seeds --step 5 --seeds 1-20`" in rendered
    assert "| 5 | " in rendered and "not run yet" in rendered


def test_render_refuses_a_readme_without_markers():
    with pytest.raises(MnistLiteError, match="generated:steps"):
        report.render("no markers here", RESULTS)


def test_steps_table_rows_come_from_result_files():
    table = report.series.steps_table(report.series.load_steps(RESULTS))
    for step in STEPS:
        r = load_result(RESULTS / f"step{step}")
        assert f"| {step} | {STEPS[step].target} | {r['params']:,}" in table
        assert f"{r['last5_min_test_acc']:.2f}%" in table


def test_steps_table_says_which_steps_ran_where():
    """One machine: named once. Several: each with the steps it ran, so a row's time is read
    against its own machine."""
    runs = {step: fake_run(step=step) for step in STEPS}
    assert report.series.steps_table(runs).endswith(
        "Each row is one run with seed 1, 15 epochs, on a CPU, torch 2.9, float32 forward pass."
    )
    runs[5] = dict(runs[5], device_name="another CPU")
    runs[2] = dict(runs[2], dtype="bfloat16")
    assert report.series.steps_table(runs).endswith(
        "Each row is one run with seed 1, 15 epochs, steps 1, 3, 4 on a CPU, torch 2.9, float32 forward "
        "pass; step 2 on a CPU, torch 2.9, bfloat16 forward pass; step 5 on another CPU, torch 2.9, "
        "float32 forward pass."
    )


@pytest.mark.parametrize("step", sorted(STEPS))
def test_recorded_runs_match_the_committed_recipes(step):
    """results/stepN came from the recipe and model in this commit, and its summary from its history."""
    r = load_result(RESULTS / f"step{step}")
    recipe = STEPS[step]
    assert r["recipe"] == recipe.as_dict()
    assert r["params"] == count_parameters(recipe.model())
    assert r["model"] == recipe.model.name
    history = History(r["history"])
    assert r["best_test_acc"] == history.best_test_acc
    assert r["last5_min_test_acc"] == history.last5_min_test_acc
    assert (RESULTS / f"step{step}" / "model.pt").is_file()


@pytest.mark.parametrize(
    "change",
    [
        dict(interrupted=True),
        dict(error="epoch 2, batch 3/469: the loss is nan"),
        dict(test_limit=1000),  # full training, but scored on part of the test set
        dict(train_limit=5000),
        dict(epochs=20),  # 15 of 20 epochs done
        dict(eval_split="validation"),  # a design run: never in the steps table
    ],
)
def test_report_refuses_an_incomplete_run(tmp_path, change):
    write(tmp_path / "step1" / "result.json", fake_run(step=1, **change))
    with pytest.raises(MnistLiteError, match="step1/result.json: not a complete full run"):
        report.series.load_steps(tmp_path)


def test_a_run_from_before_the_validation_split_counts_as_a_test_run(tmp_path):
    run = fake_run(step=2)
    del run["eval_split"]
    write(tmp_path / "step2" / "result.json", run)
    assert list(report.series.load_steps(tmp_path)) == [2]


def test_series_section_shows_the_figure_of_the_recorded_steps(tmp_path):
    assert "_No step run recorded yet" in report.series.series_text({})
    runs = {1: fake_run(step=1), 3: fake_run(step=3)}
    assert f"]({report.common.SERIES_FIGURE})" in report.series.series_text(runs)
    write(tmp_path / "step3" / "result.json", runs[3])
    assert report.draw_figure(report.common.SERIES_FIGURE, tmp_path).startswith(b"\x89PNG")


def test_budgets_of_the_recorded_runs():
    for step in (2, 3, 4, 5):
        assert load_result(RESULTS / f"step{step}")["params"] < PARAM_BUDGET
    assert load_result(RESULTS / "step5")["params"] < STEP5_BUDGET


# --- robustness: the seed sweeps ----------------------------------------------------------------------------


SWEEP_FOLDERS = sorted(
    str(path.parent.relative_to(RESULTS))
    for pattern in ("step*_seeds*", "step5_plain/step5_seeds*", f"{ROUND4}/step5_seeds*")
    for path in RESULTS.glob(f"{pattern}/summary.json")
)


@pytest.mark.parametrize("folder", SWEEP_FOLDERS)
def test_seed_summary_matches_the_seed_runs(folder):
    """Each step's sweeps train today's recipe of that step; those in step5_plain/ round 4's recipe
    of step 5 as trained, each image scored as it is (before step 5 added its test-time shifts),
    and those in round4_step5/ the same with the shifts (step 5 from round 4 to round 18)."""
    summary = json.loads((RESULTS / folder / "summary.json").read_text())
    runs = [load_result(RESULTS / folder / f"seed{row['seed']}") for row in summary["seeds"]]
    assert seed_summary(runs) == summary
    step, name = summary["step"], Path(folder).name
    assert name == f"step{step}_seeds" or name == f"step{step}_seeds_{summary['dtype']}"
    earlier = {"step5_plain": ROUND4_PLAIN, ROUND4: ROUND4_STEP5}
    recipe = earlier.get(folder.partition("/")[0], STEPS[step])
    for run in runs:
        assert run["recipe"] == recipe.as_dict() and run["train_limit"] is None
        assert len(run["history"]) == recipe.epochs


def test_the_readme_says_how_many_recorded_seeds_hold():
    """The sweep's count of seeds that hold is its seeds' own, and the README reports that count."""
    summary = json.loads((RESULTS / "step5_seeds" / "summary.json").read_text())
    holding = sum(min(row["last5_test_acc"]) >= TARGET_ACCURACY for row in summary["seeds"])
    assert summary["seeds_holding"] == holding
    assert f"**{holding} of {len(summary['seeds'])} seeds** hold" in (REPO / "README.md").read_text()


def test_clopper_pearson_lower_bound():
    assert clopper_pearson_lower(20, 20) == pytest.approx(0.05 ** (1 / 20), abs=1e-12)
    assert round(clopper_pearson_lower(20, 20), 3) == 0.861
    assert clopper_pearson_lower(0, 7) == 0.0
    bounds = [clopper_pearson_lower(k, 10) for k in range(11)]
    assert bounds == sorted(bounds) and bounds[-1] < 1
    with pytest.raises(ValueError):
        clopper_pearson_lower(3, 2)


def test_clopper_pearson_lower_bound_is_scipys():
    beta = pytest.importorskip("scipy.stats").beta
    for k, n in [(1, 1), (3, 10), (9, 10), (19, 20), (10, 10), (1, 200), (150, 1000)]:
        for confidence in (0.95, 0.99):
            expected = beta.ppf(1 - confidence, k, n - k + 1)
            assert clopper_pearson_lower(k, n, confidence) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_seed_summary_counts_the_seeds_that_hold():
    runs = [fake_run(seed=s, last5=MISSING if s == 3 else HOLDING) for s in range(1, 11)]
    summary = seed_summary(runs)
    assert summary["seeds_holding"] == 9 and summary["hold_confidence"] == 0.95
    assert summary["hold_probability_lower_bound"] == round(clopper_pearson_lower(9, 10), 4)
    assert summary["median_last5_min_test_acc"] == 99.41 and summary["worst_last5_min_test_acc"] == 99.38
    assert summary["eval_split"] == "test"


def test_seed_summary_refuses_runs_scored_on_different_splits():
    with pytest.raises(MnistLiteError, match="differ in recipe or precision"):
        seed_summary([fake_run(seed=1), fake_run(seed=2, eval_split="validation")])


def test_robustness_shows_both_sweeps_and_what_they_say(tmp_path):
    write_sweep(tmp_path, "step5_seeds", range(1, 21))
    write_sweep(tmp_path, "step5_seeds_bfloat16", range(1, 11), dtype="bfloat16", missing={4})
    sweeps = report.sweeps.load_sweeps(tmp_path)
    assert [folder for folder, _ in sweeps] == ["step5_seeds", "step5_seeds_bfloat16"]
    text = report.sweeps.robustness_text(sweeps)
    assert "`python -m mnist_lite seeds --step 5 --seeds 1-20 --dtype float32`" in text
    assert "--seeds 1-10 --dtype bfloat16 --out results/step5_seeds_bfloat16`" in text
    assert "**20 of 20 seeds** hold 99.4%" in text and "at least **86.1%**" in text
    assert "**9 of 10 seeds**" in text and f"**{100 * clopper_pearson_lower(9, 10):.1f}%**" in text
    assert "| 4 | 99.50% | 99.50% | 99.41, 99.45, 99.38, 99.47, 99.50 | 99.38% | **no** |" in text
    assert "median **99.41%**, worst **99.38%**" in text and "median **99.41%**, worst **99.41%**" in text
    assert text.endswith(f"]({report.common.SEEDS_FIGURE})")
    assert report.sweeps.bfloat16_text(sweeps) == report.sweeps.sweep_text(*sweeps[1])
    assert report.draw_figure(report.common.SEEDS_FIGURE, tmp_path).startswith(b"\x89PNG")


def test_a_sweep_scored_with_test_time_shifts_also_shows_its_images_alone(tmp_path):
    """Step 5's sweep says how it was scored, and beside each seed what the same run gave without
    the shifts, with the count, median and worst of those: the reader sees what the shifts add."""
    write_sweep(tmp_path, "step5_seeds", range(1, 5), missing={2})
    [(folder, summary)] = report.sweeps.load_sweeps(tmp_path)
    assert summary["test_time_shift"] == 1 and summary["seeds_holding_plain"] == 0
    text = report.sweeps.sweep_text(folder, summary)
    assert (
        "float32 forward pass, each test image scored by the mean probabilities over the image and its "
        in text
    )
    assert "| All last 5 ≥ 99.4% | Min of last 5 without the shifts |" in text
    assert "| 2 | 99.50% | 99.50% | 99.41, 99.45, 99.38, 99.47, 99.50 | 99.38% | **no** | 99.33% |" in text
    assert "| 1 | 99.50% | 99.50% | 99.41, 99.45, 99.43, 99.47, 99.50 | 99.41% | yes | 99.36% |" in text
    assert (
        "The same runs scored without the shifts, each image as it is: 0 of 4 seeds hold, "
        "median minimum 99.36%, worst 99.33%." in text
    )
    rows = [{k: v for k, v in row.items() if "plain" not in k} for row in summary["seeds"]]
    plain = {k: v for k, v in summary.items() if "plain" not in k and k != "test_time_shift"} | {
        "seeds": rows
    }
    assert "without the shifts" not in report.sweeps.sweep_text(folder, plain)
    assert "| `step5_seeds` (test-time shifts) |" in report.sweeps.test_sweeps_table(
        report.sweeps.load_test_sweeps(tmp_path)
    )
    assert "| `step5_seeds` |" in report.sweeps.test_sweeps_table(
        [(folder, plain | {"torch_versions": ["2.9"]})]
    )
    titles = [ax.get_title() for ax in plots.plot_seeds([summary, plain]).axes[:2]]
    assert titles == [
        "float32: 3 of 4 seeds hold\nscored over the image and its four copies shifted by 1 pixel",
        "float32: 3 of 4 seeds hold",
    ]


def test_a_median_halfway_between_two_hundredths_keeps_its_third_decimal(tmp_path):
    """Minima of 99.38% (two seeds) and 99.41% (two) have the median 99.395%: rounded, float noise
    decides whether it shows as 99.39% or 99.40%, and two sections could disagree on one number."""
    write_sweep(tmp_path, "step5_seeds", range(1, 5), missing={1, 2})
    [(folder, summary)] = report.sweeps.load_sweeps(tmp_path)
    assert summary["median_last5_min_test_acc"] == 99.395
    text = report.sweeps.sweep_text(folder, summary)
    assert "median **99.395%**, worst **99.38%**" in text
    assert "median minimum 99.345%, worst 99.33%." in text  # the same runs without the shifts
    table = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path))
    [row] = [line for line in table.splitlines()[2:] if line.startswith("|")]  # the figure's link after it
    assert "| 2 of 4 | 99.395% | 99.38% |" in row
    write_sweep(tmp_path, "step5_seeds", range(1, 4), missing={1})  # an odd count: a recorded minimum
    [(folder, summary)] = report.sweeps.load_sweeps(tmp_path)
    assert "median **99.41%**" in report.sweeps.sweep_text(folder, summary)


def test_the_test_sweeps_table_counts_each_sweeps_seeds_and_says_how_long_they_trained(tmp_path):
    plain = ROUND4_PLAIN.as_dict()
    write_sweep(
        tmp_path, f"{ROUND4}/step5_seeds", range(1, 21), missing={3, 7}, recipe=ROUND4_STEP5.as_dict()
    )
    summary = write_sweep(tmp_path, "step5_plain/step5_seeds", range(1, 21), missing={3, 7}, recipe=plain)
    write_sweep(tmp_path, "frontier/long_float32", range(1, 9), missing={2}, epochs=30, recipe=plain)
    # the table says which torch the runs a sweep summarises trained with; they may have mixed them
    write(tmp_path / "frontier/long_float32/seed2/result.json", fake_run(seed=2) | {"torch_version": "2.10"})
    write_sweep(tmp_path, "design/a", [1])  # a validation run's folder: not a sweep on the test set
    write(tmp_path / "tta_test" / "summary_shifts.json", summary)  # a way of scoring, named by its file
    for seed in range(1, 21):  # tools/tta.py's records of the seeds it summarises
        write(tmp_path / "tta_test" / f"seed{seed}.json", {"torch_version": "2.11"})
    table = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path))
    rows, figure = table.split("\n\n")
    assert figure.startswith("![Per-seed minima on the test set")
    assert rows.splitlines()[2:] == [
        "| `frontier/long_float32` | LiteNet | 7,578 | 30 | float32 | 8 | 7 of 8 | 99.41% | 99.38% | a CPU "
        "| 2.10, 2.9 |",
        "| `round4_step5/step5_seeds` (test-time shifts) | LiteNet | 7,578 | 15 | float32 | 20 | 18 of 20 | "
        "99.41% | 99.38% | a CPU | 2.9 |",
        "| `step5_plain/step5_seeds` | LiteNet | 7,578 | 15 | float32 | 20 | 18 of 20 | 99.41% | 99.38% "
        "| a CPU | 2.9 |",
        "| `tta_test/summary_shifts.json` | LiteNet | 7,578 | 15 | float32 | 20 | 18 of 20 | 99.41% | 99.38% "
        "| a CPU | 2.11 |",
    ]
    (tmp_path / "tta_test" / "seed7.json").unlink()
    with pytest.raises(
        MnistLiteError, match=r"tta_test/seed7.json: not a valid seed run of a sweep \(no such file\)"
    ):
        report.sweeps.load_test_sweeps(tmp_path)


def test_the_test_frontier_figure_draws_the_sweeps_scored_like_step5_in_float32(tmp_path):
    """Today's sweep of step 5, round 4's and the frontier's (variants of them) with test-time
    shifts in float32, each with its net's dilation; not the plain sweeps, nor bfloat16, nor
    tools/tta.py's summaries of round 4's own runs (they would repeat it)."""
    round4 = ROUND4_STEP5.as_dict()
    shifted = write_sweep(tmp_path, f"{ROUND4}/step5_seeds", range(1, 5), missing={2}, recipe=round4)
    write_sweep(tmp_path, "step5_seeds", range(1, 5))
    write_sweep(tmp_path, "frontier/wide_shifts_float32", range(1, 3), epochs=30)
    write_sweep(tmp_path, "frontier/wide_float32", range(1, 3), recipe=ROUND4_PLAIN.as_dict())
    write_sweep(tmp_path, "step5_seeds_bfloat16", range(1, 3), dtype="bfloat16")
    write(tmp_path / "tta_test" / "summary_shifts.json", shifted)
    for seed in range(1, 5):
        write(tmp_path / "tta_test" / f"seed{seed}.json", {"torch_version": "2.9"})
    points = report.sweeps.test_frontier_points(report.sweeps.load_test_sweeps(tmp_path))
    assert [(p["name"], p["epochs"], p["dilated"]) for p in points] == [
        ("frontier/wide_shifts_float32", 30, STEPS[5].model.dilated),
        (f"{ROUND4}/step5_seeds", 15, 0),
        ("step5_seeds", 15, STEPS[5].model.dilated),
    ]
    assert points[1]["minima"] == [row["last5_min_test_acc"] for row in shifted["seeds"]]
    assert points[1]["plain_minima"] == [row["last5_min_plain_test_acc"] for row in shifted["seeds"]]
    table = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path))
    assert table.endswith("(figures/test_frontier.png)")
    assert report.draw_figure(report.common.TEST_FRONTIER_FIGURE, tmp_path).startswith(b"\x89PNG")
    for folder in (f"{ROUND4}/step5_seeds", "frontier/wide_shifts_float32", "step5_seeds"):
        (tmp_path / folder / "summary.json").unlink()
    assert report.draw_figure(report.common.TEST_FRONTIER_FIGURE, tmp_path) is None
    assert "test_frontier.png" not in report.sweeps.test_sweeps_table(
        report.sweeps.load_test_sweeps(tmp_path)
    )


def test_the_test_frontier_figure_takes_seconds_per_epoch_from_the_run_that_times_most_of_its_nets(tmp_path):
    """Each net's seconds come from one timing run, the one with the most of the figure's nets,
    whatever the order of the file; a net that run did not time has none."""
    write_sweep(tmp_path, f"{ROUND4}/step5_seeds", range(1, 3), recipe=ROUND4_STEP5.as_dict())
    write_sweep(tmp_path, "step5_seeds", range(1, 3))
    write_sweep(tmp_path, "frontier/wide_shifts_float32", range(1, 3))
    write_sweep(tmp_path, "frontier/untimed_shifts_float32", range(1, 3))

    def run(machine, seconds, names):
        timed = {
            "params": 1,
            "multiply_adds": 1,
            "seconds_per_epoch": [seconds],
            "median_seconds_per_epoch": seconds,
        }
        return {
            "device_name": machine,
            "variants": dict.fromkeys(names, timed),
            "torch_version": "2.9",
            "dtype": "float32",
            "images_timed": 7680,
            "repeats": 1,
        }

    several = run("a CPU", 7.0, ["step5_dilated1", "batch256_rotate12_translate", "wide_shifts"])
    one = run("another CPU", 9.0, ["step5_dilated1"])
    write(tmp_path / "frontier" / "speed.json", [one, several])
    frontier = report.design.load_test_frontier(tmp_path)
    assert frontier["timed_on"] == "a CPU"
    assert {p["name"]: p["seconds_per_epoch"] for p in frontier["sweeps"]} == {
        f"{ROUND4}/step5_seeds": 7.0,
        "frontier/untimed_shifts_float32": None,
        "frontier/wide_shifts_float32": 7.0,
        "step5_seeds": 7.0,
    }
    (tmp_path / "frontier" / "speed.json").unlink()  # no timing: the figure without seconds
    frontier = report.design.load_test_frontier(tmp_path)
    assert frontier["timed_on"] is None and {p["seconds_per_epoch"] for p in frontier["sweeps"]} == {None}
    for folder in (
        f"{ROUND4}/step5_seeds",
        "step5_seeds",
        "frontier/wide_shifts_float32",
        "frontier/untimed_shifts_float32",
    ):
        (tmp_path / folder / "summary.json").unlink()
    assert report.design.load_test_frontier(tmp_path) is None


def test_a_replicate_is_compared_with_the_sweep_it_repeats_seed_by_seed(tmp_path):
    write_sweep(tmp_path, "step5_seeds", range(1, 5), missing={2})
    write_sweep(tmp_path, "replicate/step5_seeds", range(1, 5), missing={2, 3}, device_name="another CPU")
    [(original, first, again, second)] = report.sweeps.load_replicates(tmp_path)
    assert (original, again) == ("step5_seeds", "replicate/step5_seeds")
    table, sentence = report.sweeps.replicate_text(report.sweeps.load_replicates(tmp_path)).split("\n\n")
    assert table.splitlines()[2:] == [
        "| 1 | 99.41% | yes | 99.41% | yes | +0.00 |",
        "| 2 | 99.38% | **no** | 99.38% | **no** | +0.00 |",
        "| 3 | 99.41% | yes | 99.38% | **no** | -0.03 |",
        "| 4 | 99.41% | yes | 99.41% | yes | +0.00 |",
    ]
    assert "on a CPU, `step5_seeds`: 3 of 4 seeds hold" in sentence
    assert "on another CPU, `replicate/step5_seeds`: 2 of 4 seeds hold" in sentence
    assert "Of the 4 seeds, 2 held on both machines, 1 on neither and 1 on one only." in sentence
    # minima 99.41, 99.38, 99.41, 99.41 against 99.41, 99.38, 99.38, 99.41: r = 4.5 / sqrt(6.75 * 9)
    assert sentence.endswith(
        "0.00 points in the median and 0.03 at most; across the seeds the two "
        "machines' minima have a Pearson correlation of 0.58."
    )
    # the replicate's row in the table of every sweep on the test set
    rows = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path)).splitlines()
    assert any(row.startswith("| `replicate/step5_seeds` (test-time shifts) |") for row in rows)


def test_earlier_sweeps_keep_their_replicates_beside_them(tmp_path):
    """Step 5's sweeps from before round 18 moved with their replicates to round4_step5/: paired
    there, and shown in the table of every sweep, while today's step5_seeds has none."""
    write_sweep(tmp_path, "step5_seeds", range(1, 5), recipe=STEPS[5].as_dict())
    write_sweep(tmp_path, f"{ROUND4}/step5_seeds", range(1, 5), recipe=ROUND4_STEP5.as_dict())
    write_sweep(tmp_path, f"{ROUND4}/replicate/step5_seeds", range(1, 5), recipe=ROUND4_STEP5.as_dict())
    pairs = report.sweeps.load_replicates(tmp_path)
    assert [(original, again) for original, _, again, _ in pairs] == [
        (f"{ROUND4}/step5_seeds", f"{ROUND4}/replicate/step5_seeds")
    ]
    rows = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path)).splitlines()
    assert [row.split(" |")[0] for row in rows if row.startswith("| `")] == [
        f"| `{ROUND4}/replicate/step5_seeds` (test-time shifts)",
        f"| `{ROUND4}/step5_seeds` (test-time shifts)",
        "| `step5_seeds` (test-time shifts)",
    ]


def test_each_further_machine_has_its_own_replicate_of_the_same_sweep(tmp_path):
    write_sweep(tmp_path, "step5_seeds", range(1, 5))
    write_sweep(tmp_path, "replicate/step5_seeds", range(1, 5), missing={1}, device_name="second CPU")
    write_sweep(tmp_path, "replicate_avx2/step5_seeds", range(1, 5), missing={1, 2}, device_name="third CPU")
    write_sweep(tmp_path, "replicated/step5_seeds", range(1, 5))  # not a replicate's name: not read
    pairs = report.sweeps.load_replicates(tmp_path)
    assert [(original, again) for original, _, again, _ in pairs] == [
        ("step5_seeds", "replicate/step5_seeds"),
        ("step5_seeds", "replicate_avx2/step5_seeds"),
    ]
    second, third = report.sweeps.replicate_text(pairs).split("\n\n")[1::2]
    assert "on third CPU" not in second and "on second CPU, `replicate/step5_seeds`: 3 of 4" in second
    assert "on third CPU, `replicate_avx2/step5_seeds`: 2 of 4 seeds hold" in third
    rows = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path)).splitlines()
    assert sum(row.startswith("| `replicate") for row in rows) == 2 and "replicated" not in "".join(rows)


def test_a_frontier_point_has_its_replicate_beside_it(tmp_path):
    """``tools/design.py NAME --on-test --out results/replicate_LABEL/frontier/NAME_DTYPE`` trains a
    frontier point again on another machine: paired with it, and a row of the table of every sweep."""
    point = "frontier/wide_shifts_float32"
    write_sweep(tmp_path, point, range(1, 5))
    write_sweep(tmp_path, f"replicate_avx2/{point}", range(1, 5), missing={3}, device_name="another CPU")
    pairs = report.sweeps.load_replicates(tmp_path)
    assert [(original, again) for original, _, again, _ in pairs] == [(point, f"replicate_avx2/{point}")]
    assert f"on another CPU, `replicate_avx2/{point}`: 3 of 4 seeds hold" in report.sweeps.replicate_text(
        pairs
    )
    rows = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path)).splitlines()
    assert any(row.startswith(f"| `replicate_avx2/{point}` (test-time shifts) |") for row in rows)


@pytest.mark.parametrize(
    "folder, original",
    [
        ("replicate/step5_seeds", "step5_seeds"),
        ("replicate_avx2/frontier/wide_shifts_float32", "frontier/wide_shifts_float32"),
        ("replicate_avx2/step5_seeds", "step5_seeds"),
        ("replicate_/step5_seeds", None),  # a label is a name, not nothing
        ("replicated/step5_seeds", None),
        ("replicate", None),
        ("step5_seeds", None),
        # under a folder of earlier sweeps, the sweep beside it in that folder
        ("round4_step5/replicate/step5_seeds", "round4_step5/step5_seeds"),
        ("round4_step5/replicate_avx2/step5_seeds", "round4_step5/step5_seeds"),
        ("round4_step5/step5_seeds", None),
        ("round4_step5/replicate", None),
    ],
)
def test_a_replicate_is_named_replicate_or_replicate_and_a_label(folder, original):
    assert report.common.replicated(folder) == original


def test_a_replicate_pairs_each_seed_with_the_same_seed_whatever_their_order(tmp_path):
    write_sweep(tmp_path, "step5_seeds", [1, 2, 3], missing={2})
    summary = write_sweep(tmp_path, "replicate/step5_seeds", [1, 2, 3], missing={1})
    summary["seeds"].reverse()  # as `seeds --seeds 3,2,1` would have listed them
    write(tmp_path / "replicate/step5_seeds/summary.json", summary)
    table = report.sweeps.replicate_text(report.sweeps.load_replicates(tmp_path)).split("\n\n")[0]
    assert table.splitlines()[2:] == [
        "| 1 | 99.41% | yes | 99.38% | **no** | -0.03 |",
        "| 2 | 99.38% | **no** | 99.41% | yes | +0.03 |",
        "| 3 | 99.41% | yes | 99.41% | yes | +0.00 |",
    ]


@pytest.mark.parametrize(
    "first, second",
    [
        ([99.41, 99.38], [99.4, 99.39]),
        ([99.41, 99.41, 99.41], [99.4, 99.39, 99.38]),
        ([99.4, 99.3, 99.5], [99.45] * 3),
    ],
)
def test_no_correlation_is_given_for_two_seeds_or_minima_that_are_all_alike(first, second):
    assert report.sweeps._correlation(first, second) == ""


def test_the_correlation_of_two_machines_minima_is_pearsons():
    assert report.sweeps._correlation([99.3, 99.4, 99.5], [99.5, 99.4, 99.3]).endswith("correlation of -1.00")


def test_without_a_replicate_its_section_says_how_to_make_one(tmp_path):
    write_sweep(tmp_path, "step5_seeds", range(1, 3))
    assert report.sweeps.load_replicates(tmp_path) is None
    assert "--out results/replicate/step5_seeds" in report.sweeps.replicate_text(None)


def test_a_replicate_whose_summary_lacks_a_number_is_refused_in_one_line(tmp_path):
    write_sweep(tmp_path, "step5_seeds", range(1, 3))
    summary = write_sweep(tmp_path, "replicate/step5_seeds", range(1, 3))
    del summary["hold_probability_lower_bound"]
    write(tmp_path / "replicate/step5_seeds/summary.json", summary)
    with pytest.raises(MnistLiteError, match="no 'hold_probability_lower_bound'") as error:
        report.sweeps.load_replicates(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "replicate, problem",
    [
        (dict(seeds=range(1, 4)), "another recipe, precision, split or seeds"),  # a seed fewer
        (dict(seeds=range(1, 5), recipe=STEP5_PLAIN.as_dict()), "another recipe, precision, split or seeds"),
        (dict(seeds=range(1, 5), dtype="bfloat16"), "another recipe, precision, split or seeds"),
        (dict(seeds=range(1, 5), eval_split="validation"), "another recipe, precision, split or seeds"),
        (dict(seeds=range(1, 5), folder="replicate/step5_plain"), "which holds no sweep"),
    ],
)
def test_a_replicate_of_other_runs_is_refused_in_one_line(tmp_path, replicate, problem):
    write_sweep(tmp_path, "step5_seeds", range(1, 5))
    write_sweep(tmp_path, replicate.pop("folder", "replicate/step5_seeds"), **replicate)
    with pytest.raises(MnistLiteError, match=re.escape(problem)) as error:
        report.sweeps.load_replicates(tmp_path)
    assert "\n" not in str(error.value)


def test_an_earlier_steps_sweep_places_its_table_row_among_its_seeds_beside_step5_on_one_machine(tmp_path):
    write(tmp_path / "step4" / "result.json", fake_run(step=4, seed=2, last5=MISSING))
    write_sweep(tmp_path, "step4_seeds", range(1, 5), missing={2}, step=4)
    write_sweep(tmp_path, "replicate/step5_seeds", range(1, 5))  # on "a CPU", as step 4's
    write_sweep(tmp_path, "step5_seeds", range(1, 5), device_name="another CPU")
    text = report.sweeps.step_sweeps_text(report.sweeps.load_step_sweeps(tmp_path))
    assert text.startswith("Step 4's recipe, swept by `python -m mnist_lite seeds --step 4 --seeds 1-4`")
    assert "on a CPU, `results/step4_seeds`: 3 of 4 seeds hold" in text
    # the row's minimum, 99.38%, is its seed 2's, below the other three seeds' 99.41%
    assert (
        "Step 4's row in the steps table is this sweep's seed 2 (the same last five accuracies), and 3 of "
        "the 4 seeds have a higher minimum." in text
    )
    # step 5's sweep on the same machine, with and without its shifts (each image alone 0.05 lower)
    assert (
        "Step 5's recipe over the same seeds, in float32 on a CPU, `results/replicate/step5_seeds`: 4 of 4"
        in text
    )
    assert text.endswith(
        "scored without its test-time shifts, 0 of 4 seeds hold and the median per-seed minimum is 99.36%."
    )
    assert "another CPU" not in text
    # the sweep's row in the table of every sweep on the test set
    rows = report.sweeps.test_sweeps_table(report.sweeps.load_test_sweeps(tmp_path)).splitlines()
    assert any(row.startswith("| `step4_seeds` | LiteNet |") for row in rows)


@pytest.mark.parametrize("table_run", [fake_run(step=4, seed=1, last5=[99.5] * 5), None])
def test_a_table_row_that_is_not_one_of_the_sweeps_runs_is_not_placed_among_them(tmp_path, table_run):
    """A run with another seed's accuracies, or none at all: the sweep is still shown."""
    if table_run is not None:
        write(tmp_path / "step4" / "result.json", table_run)
    write_sweep(tmp_path, "step4_seeds", range(1, 5), step=4)
    write_sweep(tmp_path, "step5_seeds", range(1, 5))
    text = report.sweeps.step_sweeps_text(report.sweeps.load_step_sweeps(tmp_path))
    assert "`results/step4_seeds`: 4 of 4 seeds hold" in text
    assert "row in the steps table" not in text
    assert "Step 5's recipe over the same seeds, in float32 on a CPU, `results/step5_seeds`: 4 of 4" in text


def test_every_step5_sweep_on_the_same_machine_and_seeds_stands_beside_an_earlier_step(tmp_path):
    write_sweep(tmp_path, "step4_seeds", range(1, 5), step=4)
    write_sweep(tmp_path, "step5_seeds", range(1, 5), missing={1})
    write_sweep(tmp_path, "replicate/step5_seeds", range(1, 5), missing={1, 2})
    text = report.sweeps.step_sweeps_text(report.sweeps.load_step_sweeps(tmp_path))
    first, second = text.split(" Step 5's recipe over the same seeds, in float32 on a CPU, ")[1:]
    assert first.startswith("`results/step5_seeds`: 3 of 4 seeds hold") and first.endswith(".")
    assert second.startswith("`results/replicate/step5_seeds`: 2 of 4 seeds hold")


def test_a_step5_replicate_on_any_further_machine_stands_beside_an_earlier_step_of_that_machine(tmp_path):
    write_sweep(tmp_path, "step4_seeds", range(1, 5), step=4, device_name="third CPU")
    write_sweep(tmp_path, "step5_seeds", range(1, 5))
    write_sweep(tmp_path, "replicate/step5_seeds", range(1, 5), device_name="second CPU")
    write_sweep(tmp_path, "replicate_avx2/step5_seeds", range(1, 5), missing={3}, device_name="third CPU")
    text = report.sweeps.step_sweeps_text(report.sweeps.load_step_sweeps(tmp_path))
    assert text.count("Step 5's recipe over the same seeds") == 1
    assert "in float32 on third CPU, `results/replicate_avx2/step5_seeds`: 3 of 4 seeds hold" in text


@pytest.mark.parametrize(
    "other",
    [
        dict(dtype="bfloat16"),
        dict(seeds=range(1, 4)),
        dict(seeds=range(2, 6)),
        dict(device_name="another CPU"),
    ],
)
def test_a_step5_sweep_in_another_precision_or_over_other_seeds_is_not_set_beside(tmp_path, other):
    write_sweep(tmp_path, "step4_seeds", range(1, 5), step=4)
    write_sweep(tmp_path, "replicate/step5_seeds", **{"seeds": range(1, 5), **other})
    text = report.sweeps.step_sweeps_text(report.sweeps.load_step_sweeps(tmp_path))
    assert "`results/step4_seeds`: 4 of 4 seeds hold" in text and "Step 5's recipe" not in text


@pytest.mark.parametrize("field", ["seeds_holding_plain", "median_last5_min_plain_test_acc"])
def test_a_shifted_step5_sweep_without_its_plain_scores_is_refused_in_one_line(tmp_path, field):
    write_sweep(tmp_path, "step4_seeds", range(1, 5), step=4)
    summary = write_sweep(tmp_path, "step5_seeds", range(1, 5))
    del summary[field]
    write(tmp_path / "step5_seeds" / "summary.json", summary)
    for load in (report.sweeps.load_step_sweeps, report.sweeps.load_sweeps, report.sweeps.load_test_sweeps):
        with pytest.raises(MnistLiteError, match="scored with test-time shifts, but without") as error:
            load(tmp_path)
        assert "\n" not in str(error.value)


def test_without_an_earlier_steps_sweep_its_section_says_how_to_make_one(tmp_path):
    write(tmp_path / "step4" / "result.json", fake_run(step=4))
    write_sweep(tmp_path, "step5_seeds", range(1, 3))
    text = report.sweeps.step_sweeps_text(report.sweeps.load_step_sweeps(tmp_path))
    assert text == "_No sweep of an earlier step recorded yet: run `python -m mnist_lite seeds --step 4`._"


def test_a_sweep_scored_with_shifts_without_its_plain_minima_is_refused(tmp_path):
    summary = write_sweep(tmp_path, "step5_seeds", range(1, 3))
    del summary["seeds"][1]["last5_min_plain_test_acc"]
    write(tmp_path / "step5_seeds" / "summary.json", summary)
    with pytest.raises(
        MnistLiteError, match=r"step5_seeds/summary.json: scored with test-time shifts, but without"
    ):
        report.sweeps.load_test_sweeps(tmp_path)


def test_the_bfloat16_section_finds_the_bfloat16_sweep_wherever_it_is(tmp_path):
    write_sweep(tmp_path, "step5_seeds", range(1, 21), dtype="bfloat16")
    write_sweep(tmp_path, "step5_seeds_float32", range(1, 11))
    sweeps = report.sweeps.load_sweeps(tmp_path)
    assert report.sweeps.bfloat16_text(sweeps) == report.sweeps.sweep_text(*sweeps[0])
    assert "_No bfloat16 seed sweep recorded yet" in report.sweeps.bfloat16_text(sweeps[1:])


@pytest.mark.parametrize(
    "folders, message",
    [
        ({"step5_seeds": dict(eval_split="validation")}, "scored on the validation split"),
        (
            {
                "step5_seeds": {},
                "step5_seeds_bfloat16": {"dtype": "bfloat16"},
                "step5_seeds_float16": {"dtype": "float16"},
            },
            "more than one other-precision sweep",
        ),
        (
            {"step5_seeds": {}, "step5_seeds_bfloat16": {}},
            "a float32 sweep in the folder of another precision",
        ),
        ({"step5_seeds": {}, "step5_seeds_float32": {}}, "both sweeps in float32"),
    ],
)
def test_robustness_refuses_sweeps_it_cannot_show(tmp_path, folders, message):
    for folder, changes in folders.items():
        write_sweep(tmp_path, folder, range(1, 4), **changes)
    with pytest.raises(MnistLiteError, match=message):
        report.sweeps.load_sweeps(tmp_path)


# --- the design search and the experiments before it --------------------------------------------------------


def test_architecture_summary():
    assert (
        report.design.architecture_summary(DESIGN_BASELINE.as_dict()["architecture"])
        == "28x28: 8,16 | pool | 1x1 conv: 8 | 14x14: 12,14,14,16"
    )
    one_pool = dataclasses.asdict(Lite(full_resolution=(8,), transition=0, low_resolution=(12, 16, 16, 16)))
    assert report.design.architecture_summary(one_pool) == "28x28: 8 | pool | 14x14: 12,16,16,16"
    unpadded = dict(one_pool, padding=0, full_resolution=[8, 8])
    assert report.design.architecture_summary(unpadded) == "28x28: 8,8 | pool | 12x12: 12,16,16,16"
    two_pools = dict(one_pool, second_pool=2)
    assert (
        report.design.architecture_summary(two_pools) == "28x28: 8 | pool | 14x14: 12,16 | pool | 5x5: 16,16"
    )
    separable = dict(one_pool, separable=True, low_resolution=[32, 32])
    assert (
        report.design.architecture_summary(separable)
        == "28x28: 8 | pool | 14x14: 32,32 (depthwise-separable after the first)"
    )
    assert report.design.architecture_summary(dict(one_pool, activation="silu")) == (
        "28x28: 8 | pool | 14x14: 12,16,16,16 (SiLU)"
    )
    assert report.design.architecture_summary(dict(one_pool, dilated=1)) == (
        "28x28: 8 | pool | 14x14: 12,16,16,16 (the last dilated by 2)"
    )
    assert report.design.architecture_summary(dict(separable, dilated=2)) == (
        "28x28: 8 | pool | 14x14: 32,32 (depthwise-separable after the first; the last 2 dilated by 2)"
    )
    assert report.design.architecture_summary(dict(one_pool, dilated=1, activation="silu")) == (
        "28x28: 8 | pool | 14x14: 12,16,16,16 (the last dilated by 2; SiLU)"
    )


def test_what_changed_names_only_what_differs_from_the_baseline():
    baseline = DESIGN_BASELINE.as_dict()
    recipe = dict(baseline, lr=0.1, batch_size=64, label_smoothing=0.1, momentum=0.95)
    changes = ["lr", "batch_size", "label_smoothing", "momentum", "frobnicate"]
    changed = report.design.what_changed(recipe, changes, baseline)
    assert changed == "batch 64; label smoothing 0.1; momentum 0.95; frobnicate changed"  # lr was 0.1 already
    assert report.design.what_changed(baseline, [], baseline) == "none"
    adam = dict(baseline, optimizer="adam", lr=0.01)
    changed = report.design.what_changed(adam, ["optimizer", "lr"], baseline)
    assert changed == "step (0.01, ÷10 after epochs 8, 12); Adam"
    assert set(report.design.OPTIMIZER_WORDS) == set(OPTIMIZERS)
    bent = dict(baseline, elastic_alpha=34.0, elastic_sigma=4.0)
    assert report.design.what_changed(bent, ["augment"], baseline) == "elastic α 34, σ 4"
    finished_clean = dict(baseline, clean_epochs=3)
    changed = report.design.what_changed(finished_clean, ["clean_epochs"], baseline)
    assert changed == "no augmentation in the last 3 epochs"
    for epochs, words in ((2, "warm-up over 2 epochs"), (1, "warm-up over 1 epoch")):
        warmed = dict(baseline, warmup_epochs=epochs)
        assert report.design.what_changed(warmed, ["warmup_epochs"], baseline) == words


def test_design_section_rows(tmp_path):
    for seed in (1, 2):
        write(tmp_path / "design" / "previous" / f"seed{seed}.json", design_run("previous", seed))
        write(
            tmp_path / "design" / "batch64" / f"seed{seed}.json",
            design_run(
                "batch64",
                seed,
                last5=MISSING if seed == 2 else HOLDING,
                changes=["batch_size", "lr"],
                batch_size=64,
                lr=0.05,
            ),
        )
    write(
        tmp_path / "design" / "smooth" / "seed3.json",
        dict(design_run("smooth", 3, changes=["label_smoothing"], label_smoothing=0.1), round=1),
    )
    speed = {"previous": {"median_seconds_per_epoch": 8.28}}
    write(
        tmp_path / "design_speed.json",
        {"device_name": "a CPU", "torch_version": "2.9", "dtype": "bfloat16", "variants": speed},
    )
    text = report.design.design_text(report.design.load_design(tmp_path))
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Variant")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| smooth",
        "| batch64",
        "| previous",
    ]  # round, then name
    assert rows[0] == (
        "| smooth | label smoothing 0.1 | 7,578 | 584,224 | — |  |  | 99.41% | 99.41% | 99.50% |"
    )
    assert rows[1] == (
        "| batch64 | step (0.05, ÷10 after epochs 8, 12); batch 64 | 7,578 | 584,224 | — | "
        "99.41% | 99.38% |  | 99.395% | 99.50% |"
    )  # halfway between two hundredths: shown, not rounded either way
    assert rows[2].startswith("| previous | none | 7,578 | 584,224 | 8.28 | 99.41% | 99.41% |  |")
    assert "| Seed 1 | Seed 2 | Seed 3 |" in text
    assert "median of `python tools/design.py --time --dtype bfloat16` on a CPU" in text
    assert text.endswith("](figures/design_search.png)")
    assert report.draw_figure(report.common.DESIGN_FIGURE, tmp_path).startswith(b"\x89PNG")


def test_the_gpu_round_is_its_own_table_with_changes_from_its_start(tmp_path):
    start = dict(batch_size=256, lr=0.2)
    for seed in (1, 2):
        write(
            tmp_path / "design_gpu" / report.design.ROUND4_PICK / f"seed{seed}.json",
            design_run(report.design.ROUND4_PICK, seed, changes=["batch_size", "lr"], **start),
        )
        write(
            tmp_path / "design_gpu" / "zoom" / f"seed{seed}.json",
            design_run("zoom", seed, changes=["augment", "batch_size", "lr"], **start, scale=0.1),
        )
    write(tmp_path / "design" / "previous" / "seed1.json", design_run("previous", 1))
    text = report.design.design_round_text(report.design.load_design(tmp_path, "design_gpu"), "design_gpu")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Variant")]
    assert [row.split(" | ")[:2] for row in rows] == [
        [f"| {report.design.ROUND4_PICK}", "none"],
        ["| zoom", "zoom ±10%"],
    ]  # the changes from round 9's start, not from the search's: batch and rate are not news
    assert "| Seed 1 | Seed 2 |" in text and "previous" not in text
    assert report.design.design_round_text(None, "design_gpu").startswith("_No GPU round")
    (tmp_path / "design_gpu" / report.design.ROUND4_PICK / "seed1.json").unlink()
    (tmp_path / "design_gpu" / report.design.ROUND4_PICK / "seed2.json").unlink()
    with pytest.raises(MnistLiteError, match="no run of batch256_rotate12_translate"):
        report.design.design_round_text(report.design.load_design(tmp_path, "design_gpu"), "design_gpu")


def test_each_round_on_another_machine_has_its_own_section(tmp_path):
    """docs/experiments.md's sections of round 9 and of rounds 11 and 13 each read their own folder."""
    start = dict(batch_size=256, lr=0.2)
    for folder, variant in (("design_gpu", "zoom"), ("design_xeon", "dilated")):
        for name in (report.design.ROUND4_PICK, variant):
            write(
                tmp_path / folder / name / "seed1.json",
                design_run(name, 1, changes=["batch_size", "lr"], **start),
            )
    sections = report.DOCUMENTS["docs/experiments.md"]
    gpu, xeon = sections["experiments-gpu"](tmp_path), sections["experiments-xeon"](tmp_path)
    assert gpu.startswith("**Round 9, on a GPU.**") and "| zoom |" in gpu and "dilated" not in gpu
    assert (
        xeon.startswith("**Rounds 11 and 13, on an Intel Xeon.**")
        and "| dilated |" in xeon
        and "zoom" not in xeon
    )
    assert "--folder design_xeon" in xeon


@pytest.mark.results
def test_the_design_figure_marks_the_one_variant_that_step5_trains():
    points = report.design.design_points(report.design.load_design(RESULTS))
    assert [point["name"] for point in points if point["step5"]] == ["step5_dilated1"]


@given(
    mean=st.floats(min_value=0.005, max_value=1.0),
    spread=st.floats(min_value=0.0, max_value=0.5),
)
def test_seeds_to_resolve_is_the_fewest_whose_resolved_gain_reaches_the_mean(mean, spread):
    needed = report.design.seeds_to_resolve(mean, spread)
    assert needed >= 2  # a spread needs two seeds to be measured
    assert report.design.resolved_gain(needed, spread) <= mean
    assert needed == 2 or report.design.resolved_gain(needed - 1, spread) > mean


def test_seeds_to_resolve_a_known_case_and_no_gain():
    # (1.645 + 0.842)^2 = 6.18...: a gain as large as the spread needs 7 seeds
    assert report.design.seeds_to_resolve(0.1, 0.1) == 7
    assert report.design.seeds_to_resolve(0.0, 0.1) is None
    assert report.design.seeds_to_resolve(-0.05, 0.1) is None


@pytest.mark.parametrize(
    "differences, shown",
    [
        # step5_silu_dilated1's: -0.0075, which three decimals would tip to -0.007 or -0.008 by float noise
        ([0.09, -0.07, 0.01, -0.02, -0.04, 0.0, 0.01, -0.04], "-0.0075"),
        ([0.05, -0.015, 0.0425, -0.0025], "+0.01875"),  # exact to five decimals
        ([0.1, 0.1, 0.1], "+0.10"),  # at least the hundredths the minima are recorded to
        ([-0.1, -0.05, -0.1], "-0.083"),  # a third of a hundredth: no five decimals show it exactly
        ([0.01, -0.01], "+0.00"),
    ],
)
def test_a_paired_mean_is_shown_exactly_where_five_decimals_can(differences, shown):
    assert report.design.Paired(differences).shown_mean == shown


def test_settings_changed_counts_nested_settings_and_those_one_recipe_leaves_out():
    step5, pick = STEP5_PLAIN.as_dict(), ROUND4_PLAIN.as_dict()
    assert report.design.settings_changed(step5, step5) == 0
    assert report.design.settings_changed(step5, pick) == 1  # the last convolution dilated
    warmup = dict(step5, warmup_epochs=2)  # a setting written only where it is used
    assert report.design.settings_changed(warmup, step5) == 1
    assert report.design.settings_changed(warmup, pick) == 2


def write_resolution_design(results: Path, minima: dict[str, list[float]], recipes: dict[str, dict]) -> None:
    """Design runs of each variant of ``minima``, one per seed, whose lowest accuracy of the last
    five epochs is the seed's entry, with the recipe ``recipes`` gives it."""
    for name, per_seed in minima.items():
        for seed, low in enumerate(per_seed, start=1):
            last5 = [low, low + 0.04, low + 0.04, low + 0.04, low + 0.04]
            write(
                results / "design" / name / f"seed{seed}.json", design_run(name, seed, last5, **recipes[name])
            )


def resolution_rows(results: Path) -> list[str]:
    text = report.design.resolution_text(report.design.load_design(results))
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Variant")]


def test_resolution_section_sets_the_variants_built_on_step5_against_it_seed_by_seed(tmp_path):
    step5, pick = STEP5_PLAIN.as_dict(), ROUND4_PLAIN.as_dict()
    minima = {
        "step5": [99.20, 99.10, 99.30],
        "wider": [99.30, 99.10, 99.50],
        "worse": [99.10, 99.00, 99.25],
        "short": [99.50, 99.50],  # not on all of step 5's seeds: left out
        "pick_faster": [99.50, 99.50, 99.50],  # built on round 4's pick, not on step 5: left out
    }
    recipes = {
        "step5": step5,
        "wider": dict(step5, lr=0.3),
        "worse": dict(step5, lr=0.1),
        "short": dict(step5, lr=0.4),
        "pick_faster": dict(pick, lr=0.4),
    }
    write_resolution_design(tmp_path, minima, recipes)
    # wider: differences +0.10, 0, +0.20; mean 0.1, standard deviation 0.1, so 7 seeds resolve it;
    # three resolve (1.645 + 0.842) * 0.1 / sqrt(3) = 0.144
    assert resolution_rows(tmp_path) == [
        "| wider | 7,578 | +0.10 | 0.100 | 2 / 0 / 1 | 0.144 | 7 |",
        "| worse | 7,578 | -0.083 | 0.029 | 0 / 3 / 0 | 0.041 | — |",
    ]
    text = report.design.resolution_text(report.design.load_design(tmp_path))
    assert "(`step5`) and run on all of its seeds (1, 2, 3)" in text
    assert "standard deviation of 0.100 points" in text


def test_resolution_section_with_no_variant_to_compare_says_none(tmp_path):
    write_resolution_design(tmp_path, {"step5": [99.2, 99.1]}, {"step5": STEP5_PLAIN.as_dict()})
    assert resolution_rows(tmp_path) == ["| none |  |  |  |  |  |  |"]


@pytest.mark.parametrize("minima", [{"previous": [99.2, 99.1]}, {"step5": [99.2]}])
def test_resolution_section_without_two_seeds_of_step5_says_what_to_run(tmp_path, minima):
    recipes = {"previous": DESIGN_BASELINE.as_dict(), "step5": STEP5_PLAIN.as_dict()}
    write_resolution_design(tmp_path, minima, recipes)
    text = report.design.resolution_text(report.design.load_design(tmp_path))
    assert text == (
        "_No design run of step 5's recipe on two seeds or more recorded yet: "
        "run `python tools/design.py NAME --seeds S`._"
    )


def test_resolution_section_refuses_two_variants_with_step5s_recipe(tmp_path):
    minima = {"step5": [99.2, 99.1], "step5_again": [99.2, 99.1]}
    write_resolution_design(tmp_path, minima, dict.fromkeys(minima, STEP5_PLAIN.as_dict()))
    with pytest.raises(MnistLiteError, match="runs step 5's recipe as step5 and step5_again; keep one"):
        report.design.resolution_text(report.design.load_design(tmp_path))


def test_no_design_search_no_design_figure(tmp_path):
    (tmp_path / "design").mkdir()
    assert report.design.load_design(tmp_path) is None
    assert report.draw_figure(report.common.DESIGN_FIGURE, tmp_path) is None
    assert "_No design search recorded yet" in report.design.design_text(None)


@pytest.mark.parametrize(
    "name, run, message",
    [
        (
            "a/seed1.json",
            dict(design_run("a", 1), eval_split="test"),
            "on the test split, not the validation",
        ),
        ("a/seed1.json", design_run("b", 1), "not what its folder and name say"),
        ("a/seed2.json", design_run("a", 1), "not what its folder and name say"),
        ("a/seed2.json", design_run("a", 2, batch_size=64), "another recipe than"),
        ("a/seed2.json", dict(design_run("a", 2), interrupted=True), "stopped early"),
        # SGD is recorded by leaving the optimizer out, and the table has no words for others
        ("a/seed2.json", design_run("a", 2, optimizer="sgd"), "recipe.optimizer: not nesterov or adam"),
        ("a/seed2.json", design_run("a", 2, optimizer="rmsprop"), "recipe.optimizer: not nesterov or adam"),
    ],
)
def test_design_section_refuses_runs_it_cannot_show(tmp_path, name, run, message):
    write(tmp_path / "design" / "a" / "seed1.json", design_run("a", 1))
    write(tmp_path / "design" / name, run)
    with pytest.raises(MnistLiteError, match=message):
        report.design.load_design(tmp_path)


def test_legacy_experiments_say_they_were_chosen_on_the_test_set():
    text = report.design.legacy_table(report.design.load_legacy(RESULTS))
    assert "compared by their TEST accuracy on seed 1" in text and "selection effect" in text


def test_one_epoch_runs_are_step5s_previous_recipe_with_only_the_named_changes():
    runs = [load_result(p) for p in RESULTS.glob("one_epoch_5000/*/seed*/result.json")]
    table = report.design.one_epoch_table(report.design.load_one_epoch(RESULTS))
    assert any(
        (r["recipe"]["batch_size"], r["recipe"]["lr"]) == (DESIGN_BASELINE.batch_size, DESIGN_BASELINE.lr)
        for r in runs
    )
    for r in runs:
        varied = dict(epochs=1, batch_size=r["recipe"]["batch_size"], lr=r["recipe"]["lr"])
        assert r["recipe"] == dict(DESIGN_BASELINE.as_dict(), **varied)
        assert (r["train_limit"], r["test_limit"], len(r["history"])) == (5000, 1000, 1)
        assert f"{r['final_test_acc']:.1f}% (seed {r['seed']})" in table
    # the full epochs it is compared with are the same recipe's, from its sweep on the test set
    first_epochs = sorted(RESULTS.glob("frontier/previous_float32/seed*/result.json"))
    assert first_epochs
    for path in first_epochs:
        r = load_result(path)
        assert f"{r['history'][0]['test_acc']:.2f}% (seed {r['seed']})" in table


def test_trials_section_shows_the_convolutions_share():
    profile = {
        "total_seconds_per_epoch": 8.0,
        "convolution_seconds_per_epoch": 6.0,
        "top_ops": [{"op": "aten::convolution_backward", "seconds_per_epoch": 4.0}],
    }
    trials = {
        "default": {
            "what": "as shipped",
            "median_seconds_per_epoch": 8.0,
            "vs_default": 1.0,
            "warmup_seconds": 0.5,
        }
    }
    text = report.speed.trials_text(
        {
            "device_name": "cpu",
            "cpu_flags": ["avx2"],
            "model": "LiteNet",
            "batch_size": 128,
            "batches_timed": 10,
            "repeats": 1,
            "trials": trials,
            "profile": profile,
            "flop_per_epoch": 40_000_000_000,
            "default_dtype": "float32",
            "default_gflops": 6.0,
            "matmul_peak_gflops": {"bfloat16": 400.0, "float32": 200.0},
        }
    )
    assert "8.00 s in all" in text and "take 6.00 s, 75%" in text
    assert "| `aten::convolution_backward` | 4.00 | 50% |" in text
    assert (
        "about 40 GFLOP" in text and "**6.0 GFLOP/s**" in text and "in float32 reaches 200.0 GFLOP/s" in text
    )
    assert "3% of that practical peak" in text  # 6 / 200


# --- safety: a failed report changes nothing ----------------------------------------------------------------


def test_update_docs_writes_every_document_and_figure(tmp_path):
    repo, results = checkout(tmp_path), tmp_path / "results"
    write(results / "step1" / "result.json", fake_run(step=1))
    write_sweep(results, "step5_seeds", range(1, 4))
    report.update_docs(repo, results)
    readme = (repo / "README.md").read_text()
    assert "| 1 | " in readme and "**3 of 3 seeds**" in readme
    assert (repo / report.common.SERIES_FIGURE).read_bytes() == report.draw_figure(
        report.common.SERIES_FIGURE, results
    )
    assert (repo / report.common.SEEDS_FIGURE).exists() and not (repo / report.common.DESIGN_FIGURE).exists()
    rendered = documents(repo)
    report.update_docs(repo, results)
    assert documents(repo) == rendered  # a second report changes nothing


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: tmp / "nope",
        lambda tmp: write(tmp / "results", "a file"),
        lambda tmp: (tmp / "empty").mkdir() or tmp / "empty",
        lambda tmp: write(tmp / "other" / "notes.txt", "no results here").parent,
    ],
    ids=["missing", "a-file", "empty", "unrelated"],
)
def test_report_refuses_a_results_folder_without_results(tmp_path, make):
    repo = checkout(tmp_path)
    before = documents(repo)
    results = make(tmp_path)
    with pytest.raises(MnistLiteError, match=f"^{re.escape(str(results))}: no"):
        report.update_docs(repo, results)
    assert documents(repo) == before and not (repo / "docs" / "figures").exists()


def test_a_failure_in_a_later_document_leaves_the_earlier_ones_unchanged(tmp_path):
    repo, results = checkout(tmp_path), tmp_path / "results"
    write(results / "step1" / "result.json", fake_run(step=1))
    write(results / "perf_trials.json", "[]")  # docs/performance.md, rendered after README.md, fails
    before = documents(repo)
    with pytest.raises(MnistLiteError, match="perf_trials.json"):
        report.update_docs(repo, results)
    assert documents(repo) == before and not (repo / "docs" / "figures").exists()


SECTIONS = {"a": lambda results: "new a", "b": lambda results: "new\nb"}
A, A_END = "<!-- generated:a -->", "<!-- /generated:a -->"
B, B_END = "<!-- generated:b -->", "<!-- /generated:b -->"


@pytest.mark.parametrize(
    "text, message",
    [
        (f"{A}\nhand-written\n{A}\nold\n{A_END}\n{B}\n{B_END}\n", "generated:a --> is there 2 times"),
        (f"{A}\nold\n{A_END}\nhand\n{A_END}\n{B}\n{B_END}\n", "1 times and <!-- /generated:a --> 2 times"),
        (f"{A_END}\nhand-written\n{A}\n{B}\n{B_END}\n", "must end its line"),
        (f"{A} old\n{A_END}\n{B}\n{B_END}\n", "must end its line"),
        (f"{A}\nold{A_END}\n{B}\n{B_END}\n", "must end its line"),
        (f"{A}\n{B}\n{A_END}\n{B_END}\n", "must not overlap"),
        (f"{A}\n{B}\n{B_END}\n{A_END}\n", "must not overlap"),
        (f"{A}\n{A_END}\n", "no <!-- generated:b -->"),
    ],
)
def test_render_refuses_markers_that_could_lose_text(text, message):
    with pytest.raises(MnistLiteError, match=message):
        report.render(text, Path("unused"), SECTIONS, source="doc.md")


def test_a_document_with_a_duplicated_marker_is_left_as_it_was(tmp_path):
    repo, results = checkout(tmp_path), tmp_path / "results"
    write(results / "step1" / "result.json", fake_run(step=1))
    readme = repo / "README.md"
    opening = "<!-- generated:steps -->\n"
    readme.write_text(readme.read_text().replace(opening, f"{opening}hand\n" * 2, 1))
    before = documents(repo)
    with pytest.raises(MnistLiteError, match=re.escape(f"{readme}: {opening.strip()} is there 2 times")):
        report.update_docs(repo, results)
    assert documents(repo) == before


def test_render_refuses_a_section_that_would_hold_a_marker():
    with pytest.raises(MnistLiteError, match="would hold a section marker"):
        sections = dict(SECTIONS, a=lambda results: B_END)
        report.render(f"{A}\n{A_END}\n{B}\n{B_END}\n", Path("unused"), sections)


SUMMARY = seed_summary([fake_run(seed=1)])


@pytest.mark.parametrize(
    "name, content",
    [
        ("step1/result.json", {key: value for key, value in fake_run(step=1).items() if key != "history"}),
        ("step1/result.json", dict(fake_run(step=1), history=[{"epoch": 1, "train_acc": 99.0}])),
        ("step1/result.json", dict(fake_run(step=1), best_test_acc="99.5")),
        ("step1/result.json", dict(fake_run(step=1), params=True)),
        ("step1/result.json", "[]"),
        ("step5_seeds/summary.json", ""),
        ("step5_seeds/summary.json", b"\xff\xfe not UTF-8"),
        ("step5_seeds/summary.json", "[1, 2]"),
        ("step5_seeds/summary.json", '{"step": 5'),
        ("step5_seeds/summary.json", "NaN"),
        (
            "step5_seeds/summary.json",
            {key: value for key, value in SUMMARY.items() if key != "seeds_holding"},
        ),
        ("step5_seeds/summary.json", dict(SUMMARY, seeds=[])),
        (
            "step5_seeds/summary.json",
            dict(SUMMARY, seeds=[dict(SUMMARY["seeds"][0], last5_min_test_acc=None)]),
        ),
        ("step5_seeds/summary.json", dict(SUMMARY, final_test_acc_mean=float("nan"))),
        ("step5_seeds/summary.json", dict(SUMMARY, final_test_acc_mean=10**400)),
        ("step5_seeds_bfloat16/summary.json", "{}"),
        ("bench.json", '[{"device_name": '),
        ("bench.json", '{"device_name": "x"}'),
        ("bench.json", '[{"device_name": "x"}]'),
        ("bench.json", "[" * 100_000),
        ("perf_trials.json", "[]"),
        ("perf_trials.json", {"device_name": "x"}),
        ("reproduce.json", {"notebooks": [{"step": 1}], "total_seconds": 1}),
        (
            "design/a/seed1.json",
            {key: value for key, value in design_run("a", 1).items() if key != "changes"},
        ),
        ("design/a/seed1.json", dict(design_run("a", 1), recipe={})),
        (
            "design_speed.json",
            {"device_name": "x", "torch_version": "2", "dtype": "bfloat16", "variants": []},
        ),
        ("experiments/x.json", {"params": 1}),
        ("one_epoch_5000/b128/seed1/result.json", dict(fake_run(), recipe={"batch_size": 0, "lr": 0.1})),
    ],
)
def test_a_malformed_results_file_is_one_line_naming_it(tmp_path, name, content):
    repo, results = checkout(tmp_path), tmp_path / "results"
    write(results / "design" / "a" / "seed1.json", design_run("a", 1))  # so that design_speed.json is read
    write(results / name, content)
    before = documents(repo)
    with pytest.raises(MnistLiteError) as error:
        report.update_docs(repo, results)
    message = str(error.value)
    assert message.startswith(str(results / name)) and "\n" not in message, message
    assert documents(repo) == before


# --- render, for any text -----------------------------------------------------------------------------------

HAND = st.text().filter(lambda text: "generated:" not in text)  # hand-written text: no markers in it
BODY = st.lists(st.text().filter(lambda line: "\n" not in line and "generated:" not in line)).map(
    lambda lines: "".join(line + "\n" for line in lines)
)  # what a section held before: whole lines


@given(HAND, BODY, HAND, BODY, HAND)
def test_render_keeps_every_character_outside_the_markers(before, body_a, between, body_b, after):
    text = f"{before}{A}\n{body_a}{A_END}{between}{B}\n{body_b}{B_END}{after}"
    rendered = report.render(text, Path("unused"), SECTIONS)
    assert rendered == f"{before}{A}\nnew a\n{A_END}{between}{B}\nnew\nb\n{B_END}{after}"
    assert report.render(rendered, Path("unused"), SECTIONS) == rendered


PIECES = st.one_of(st.text(max_size=12), st.sampled_from([A, A_END, B, B_END, "\n", "<!-- ", " -->"]))


@given(st.lists(PIECES).map("".join))
def test_render_of_any_text_fills_it_or_refuses_it(text):
    try:
        rendered = report.render(text, Path("unused"), SECTIONS)
    except MnistLiteError as error:
        assert "\n" not in str(error)
    else:
        assert report.render(rendered, Path("unused"), SECTIONS) == rendered
        assert rendered.count(A) == rendered.count(A_END) == rendered.count(B) == rendered.count(B_END) == 1


def bench_run(seconds: dict[str, float]) -> dict:
    setups = {
        name: {
            "model": "LiteNet",
            "params": 7854 if name == "previous_step5" else 7578,
            "batch_size": 128 if name == "previous_step5" else 256,
            "loader": "torchvision" if name == "classic" else "fast",
            "dtype": "bfloat16" if name == "bfloat16" else "float32",
            "median_seconds": value,
            "images_per_second": round(60000 / value, 1),
        }
        for name, value in seconds.items()
    }
    return {
        "step": 5,
        "device": "cpu",
        "device_name": "Some CPU",
        "train_images": 60000,
        "repeats": 3,
        "torch_version": "2.x",
        "date": "2026-11-23",
        "setups": setups,
        "vs_default": {name: round(value / seconds["default"], 3) for name, value in seconds.items()},
    }


@pytest.mark.parametrize(
    "seconds, verdicts",
    [
        (dict(classic=15.0, default=4.5, previous_step5=11.0), ("0.41×", "met", "3.33×", "met")),
        (dict(classic=12.0, default=6.0, previous_step5=11.0), ("0.55×", "missed", "2.00×", "missed")),
        (dict(classic=15.0, default=5.0, previous_step5=10.0), ("0.50×", "met", "3.00×", "met")),
    ],
)
def test_the_performance_table_states_both_speed_bars_from_one_run(seconds, verdicts):
    text = report.speed.performance_table([bench_run(seconds)])
    previous, previous_verdict, classic, classic_verdict = verdicts
    assert (
        "the time of step 5's recipe before the design search (`previous_step5`; the bar: at most 0.50×, "
        f"{previous_verdict})" in text
    )
    assert (
        f"**{previous}**" in text
        and f"**{classic}** the default's (the bar: at least 3×, {classic_verdict})" in text
    )
    assert "| Some CPU | `previous_step5` | 7,854 | 128 | `fast` | float32 | " in text


def test_every_ratio_of_the_benchmark_is_rounded_once_from_the_recorded_medians():
    """16.286 / 7.095 = 2.2954 and 31.607 / 14.601 = 2.1647: the run's own ratios, 2.295 and
    2.165, rounded again would read 2.29 and 2.17 (a recorded run had both)."""
    text = report.speed.performance_table(
        [
            bench_run(dict(classic=16.286, default=7.095, previous_step5=14.854)),
            bench_run(dict(classic=36.787, default=14.601, previous_step5=31.607)),
        ]
    )
    assert "| `torchvision` | float32 | 16.29 | 3,684 | 2.30× |" in text and "**2.30×** the default's" in text
    assert "| `fast` | float32 | 31.61 | 1,898 | 2.16× |" in text


def test_images_per_second_come_from_the_median_not_from_the_rounded_record():
    """60,000 / 33.547 = 1,788.535, recorded as 1,788.5, which rounded again reads 1,788 (a
    recorded run had it)."""
    text = report.speed.performance_table([bench_run(dict(classic=33.547, default=12.001))])
    assert "| `torchvision` | float32 | 33.55 | 1,789 | 2.80× |" in text


@pytest.mark.parametrize(
    "unaugmented, ceiling, reach",
    [
        (4.0, "3.75×", "so a faster pipeline could still meet the bar"),
        (5.0, "3.00×", "so a faster pipeline could still meet the bar"),  # the bar itself is met
        (6.0, "2.50×", "so in this run no faster pipeline alone would have met the bar"),
    ],
)
def test_the_benchmark_says_how_far_a_faster_pipeline_could_take_the_ratio(unaugmented, ceiling, reach):
    seconds = dict(classic=15.0, default=7.5, previous_step5=16.0)
    assert "no_augmentation" not in report.speed.performance_table([bench_run(seconds)])
    text = report.speed.performance_table([bench_run(seconds | {"no_augmentation": unaugmented})])
    assert f"(`no_augmentation`) the default's epoch takes {unaugmented:.2f} s" in text
    assert (
        f"the classic pipeline takes **{ceiling}** that, the most a faster pipeline could reach, {reach}"
        in text
    )


def test_the_speed_bars_are_left_out_without_the_previous_recipe():
    text = report.speed.performance_table([bench_run(dict(classic=15.0, default=4.5))])
    assert "bar" not in text and "| `default` | 7,578 | 256 |" in text


def test_the_benchmark_says_what_scoring_with_the_shifts_costs():
    run = bench_run(dict(classic=15.0, default=4.5, previous_step5=11.0))
    assert "Scoring" not in report.speed.performance_table([run])
    run["scoring"] = dict(
        test_images=10000, test_time_shift=1, median_plain_seconds=0.3, median_shifted_seconds=1.45
    )
    assert (
        "Scoring the 10,000 test images after an epoch takes 1.45 s over the image and its four "
        "copies shifted by 1 pixel, and 0.30 s for each image alone (the default's model, medians of 3, "
        "interleaved); the bars above time training." in report.speed.performance_table([run])
    )


def test_each_machines_benchmark_is_a_table_of_its_own():
    """Two machines' runs: each table starts with its header (a row after a paragraph without one
    would not render as a table), and each states the bars from its own run."""
    other = dict(bench_run(dict(classic=20.0, default=8.0, previous_step5=15.0)), device_name="Other CPU")
    text = report.speed.performance_table(
        [bench_run(dict(classic=15.0, default=4.5, previous_step5=11.0)), other]
    )
    blocks = text.split("\n\n")
    tables = [block for block in blocks if block.startswith("| Machine | Setup |")]
    assert len(tables) == 2 and all(not block.startswith("| ") for block in blocks if block not in tables)
    assert "| Other CPU | `classic` |" in tables[1] and "Some CPU" not in tables[1]
    assert "**0.41×**" in blocks[1] and "**0.53×**" in blocks[3]
