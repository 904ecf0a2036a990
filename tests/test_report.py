"""The README's generated sections and the recorded results behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_lite import report
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.results import History, load_result, seed_summary
from mnist_lite.steps import PARAM_BUDGET, STEP5_BUDGET, STEPS, TARGET_ACCURACY

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"


@pytest.mark.parametrize("name", sorted(report.DOCUMENTS))
def test_generated_sections_are_what_report_writes(name):
    text = (REPO / name).read_text()
    assert report.render(text, RESULTS, report.DOCUMENTS[name]) == text, f"{name} is stale: run python -m mnist_lite report"


def test_render_fills_every_section_and_keeps_the_rest(tmp_path):
    (tmp_path / "step5_seeds").mkdir()
    text = "intro\n" + "".join(f"<!-- generated:{n} -->\nold\n<!-- /generated:{n} -->\n" for n in report.DOCUMENTS["README.md"])
    rendered = report.render(text, tmp_path)
    assert rendered.startswith("intro\n") and "\nold\n" not in rendered
    assert "run `python -m mnist_lite seeds --step 5 --seeds 1-5`" in rendered
    assert "| 5 | " in rendered and "not run yet" in rendered


def test_render_refuses_a_readme_without_markers():
    with pytest.raises(MnistLiteError, match="generated:steps"):
        report.render("no markers here", RESULTS)


def test_steps_table_rows_come_from_result_files():
    table = report.steps_section(RESULTS)
    for step in STEPS:
        r = load_result(RESULTS / f"step{step}")
        assert f"| {step} | {STEPS[step].target} | {r['params']:,}" in table
        assert f"{r['last5_min_test_acc']:.2f}%" in table


@pytest.mark.parametrize("step", sorted(STEPS))
def test_recorded_runs_match_the_committed_recipes(step):
    """results/stepN came from the recipe and model in this commit, and its summary from its history."""
    r = load_result(RESULTS / f"step{step}")
    recipe = STEPS[step]
    assert r["recipe"] == recipe.as_dict()
    assert r["params"] == count_parameters(recipe.model())
    assert r["model"] == recipe.model.__name__
    history = History(r["history"])
    assert r["best_test_acc"] == history.best_test_acc
    assert r["last5_min_test_acc"] == history.last5_min_test_acc
    assert (RESULTS / f"step{step}" / "model.pt").is_file()


@pytest.mark.parametrize("change", [
    dict(interrupted=True),
    dict(error="epoch 2, batch 3/469: the loss is nan"),
    dict(test_limit=1000),  # full training, but scored on part of the test set
    dict(train_limit=5000),
    dict(epochs=20),  # 15 of 20 epochs done
])
def test_report_refuses_an_incomplete_run(tmp_path, change):
    (tmp_path / "step1").mkdir()
    partial = dict(load_result(RESULTS / "step1"), **change)
    (tmp_path / "step1" / "result.json").write_text(json.dumps(partial))
    with pytest.raises(MnistLiteError, match="step1/result.json: not a complete full run"):
        report.steps_section(tmp_path)


def test_budgets_of_the_recorded_runs():
    for step in (2, 3, 4, 5):
        assert load_result(RESULTS / f"step{step}")["params"] < PARAM_BUDGET
    assert load_result(RESULTS / "step5")["params"] < STEP5_BUDGET


@pytest.mark.parametrize("folder, dtype", [("step5_seeds", "float32"), ("step5_seeds_bfloat16", "bfloat16")])
def test_seed_summary_matches_the_seed_runs(folder, dtype):
    summary = json.loads((RESULTS / folder / "summary.json").read_text())
    runs = [load_result(RESULTS / folder / f"seed{row['seed']}") for row in summary["seeds"]]
    assert seed_summary(runs) == summary and summary["dtype"] == dtype
    for run in runs:
        assert run["recipe"] == STEPS[5].as_dict() and run["train_limit"] is None
        assert len(run["history"]) == STEPS[5].epochs


def test_seed_summary_refuses_runs_of_different_precision():
    runs = [load_result(RESULTS / "step5_seeds" / "seed1"), load_result(RESULTS / "step5_seeds_bfloat16" / "seed2")]
    with pytest.raises(MnistLiteError, match="differ in recipe or precision"):
        seed_summary(runs)


def test_step5_holds_the_target_on_every_recorded_seed():
    summary = json.loads((RESULTS / "step5_seeds" / "summary.json").read_text())
    assert [row["seed"] for row in summary["seeds"]] == [1, 2, 3, 4, 5]
    assert summary["worst_last5_min_test_acc"] >= TARGET_ACCURACY


def test_one_epoch_runs_are_step5_with_only_the_named_changes():
    runs = [load_result(p) for p in RESULTS.glob("one_epoch_5000/*/seed*/result.json")]
    table = report.one_epoch_section(RESULTS)
    assert any((r["recipe"]["batch_size"], r["recipe"]["lr"]) == (STEPS[5].batch_size, STEPS[5].lr) for r in runs)
    for r in runs:
        varied = dict(epochs=1, batch_size=r["recipe"]["batch_size"], lr=r["recipe"]["lr"])
        assert r["recipe"] == dict(STEPS[5].as_dict(), **varied)
        assert (r["train_limit"], r["test_limit"], len(r["history"])) == (5000, 1000, 1)
        assert f"{r['final_test_acc']:.1f}% (seed {r['seed']})" in table


def test_trials_section_shows_the_convolutions_share(tmp_path):
    profile = {
        "total_seconds_per_epoch": 8.0,
        "convolution_seconds_per_epoch": 6.0,
        "top_ops": [{"op": "aten::convolution_backward", "seconds_per_epoch": 4.0}],
    }
    trials = {"default": {"what": "as shipped", "median_seconds_per_epoch": 8.0, "vs_default": 1.0, "warmup_seconds": 0.5}}
    (tmp_path / "perf_trials.json").write_text(json.dumps(dict(
        device_name="cpu", cpu_flags=["avx2"], model="DropoutNet", batch_size=128, batches_timed=10, repeats=1, trials=trials, profile=profile
    )))
    text = report.trials_section(tmp_path)
    assert "8.00 s in all" in text and "take 6.00 s, 75%" in text
    assert "| `aten::convolution_backward` | 4.00 | 50% |" in text
