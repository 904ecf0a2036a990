"""The README's steps table and the picture of the series (its text and figure)."""

from __future__ import annotations

from pathlib import Path

from mnist_lite import plots
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import REPOSITORY
from mnist_lite.report.common import RESULT, RUN_FILE, SERIES_FIGURE, STEP_RUN, missing_note, unfit_reason
from mnist_lite.results import SECONDS_LABEL, History
from mnist_lite.schema import read_json
from mnist_lite.steps import PARAM_BUDGET, STEPS, TARGET_ACCURACY


def load_steps(results: Path) -> dict[int, dict]:
    """The recorded run of each step that has one; a run that is not a complete full run on the
    test set (a design run on the validation split included) is refused."""
    runs = {}
    for step in STEPS:
        path = results / STEP_RUN.format(step=step) / RESULT
        run = read_json(path, RUN_FILE, missing_ok=True)
        if run is None:
            continue
        problem = unfit_reason(run, "test")
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
        f"Epochs ≥ {TARGET_ACCURACY}% | {SECONDS_LABEL.capitalize()} | Notebook |",
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
        return missing_note("step run", "python -m mnist_lite train --step N")
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
