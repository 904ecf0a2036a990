"""The step notebooks: their shape, their recorded outputs, and a real headless smoke execution."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mnist_lite import notebook as notebook_module
from mnist_lite import reproduce as reproduce_module
from mnist_lite.notebook import RECORD, WHY_RUNS_DIFFER, format_result
from mnist_lite.paths import RESULTS
from mnist_lite.results import load_result
from mnist_lite.steps import STEPS

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = {step: REPO / recipe.notebook for step, recipe in STEPS.items()}


def read(step: int):
    return nbformat.read(NOTEBOOKS[step], as_version=4)


def headings(notebook) -> list[str]:
    return [
        line[3:].strip()
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]


@pytest.mark.parametrize("step", sorted(STEPS))
def test_target_result_analysis_in_order(step):
    found = [h for h in headings(read(step)) if h in ("Target", "Result", "Analysis")]
    assert found == ["Target", "Result", "Analysis"]


@pytest.mark.parametrize("step", sorted(STEPS))
def test_analysis_is_written(step):
    analysis = read(step).cells[-1]
    assert analysis.source.startswith("## Analysis")
    assert "To be written" not in analysis.source
    assert len(analysis.source.split()) > 60


@pytest.mark.parametrize("step", sorted(STEPS))
def test_parameters_cell(step):
    cells = [c for c in read(step).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1 and cells[0].cell_type == "code"
    for name in ("EPOCHS", "SEED", "DEVICE", "TRAIN_LIMIT", "TEST_LIMIT"):
        assert f"{name} = env(" in cells[0].source


@pytest.mark.results
@pytest.mark.parametrize("step", sorted(STEPS))
def test_stored_result_matches_result_json(step):
    """The committed notebook's Result output is the recorded run's result.json, to the digit."""
    notebook = read(step)
    index = next(
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Result")
    )
    outputs = notebook.cells[index + 1].outputs
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert printed.strip() == format_result(load_result(REPO / "results" / f"step{step}")).strip()


@pytest.mark.results
@pytest.mark.parametrize("step", sorted(STEPS))
def test_notebook_ran_fully(step):
    """Committed with the outputs of a full run: every code cell executed, no errors."""
    notebook = read(step)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    result = load_result(REPO / "results" / f"step{step}")
    assert result["train_limit"] is None and result["test_limit"] is None
    assert len(result["history"]) == result["epochs"] == STEPS[step].epochs


def execute(step: int, env: dict, tmp_path: Path):
    notebook = read(step)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return notebook


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def progress_bars(notebook) -> list[str]:
    """Outputs that are tqdm bars: a widget (whose saved text is frozen at its first frame) or bar text."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = output.get("text", "") + "".join(str(value) for value in data.values())
            if "application/vnd.jupyter.widget-view+json" in data or re.search(r"\d+%\|", text):
                found.append(text[:80])
    return found


@pytest.mark.results
@pytest.mark.parametrize("step", sorted(STEPS))
def test_committed_notebooks_hold_no_frozen_progress_bar(step):
    assert progress_bars(read(step)) == []


@pytest.mark.parametrize("step", sorted(STEPS))
def test_smoke_execution(step, tmp_path):
    """MNIST_LITE_SMOKE=1 runs the notebook headless in seconds, leaves results/ alone, shows the
    recorded run beside its own, and saves the epoch lines rather than progress bars."""
    before = tree_digest(REPO / "results")
    notebook = execute(step, {"MNIST_LITE_SMOKE": "1"}, tmp_path)
    assert tree_digest(REPO / "results") == before
    result_cell = next(
        notebook.cells[i + 1] for i, c in enumerate(notebook.cells) if c.source.startswith("## Result")
    )
    printed = "".join(o.get("text", "") for o in result_cell.outputs)
    assert "1 of 1 (limits 2000/1000)" in printed and f"recorded (results/step{step})" in printed
    assert WHY_RUNS_DIFFER in printed
    training = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "epoch  1/1  train loss" in training and progress_bars(notebook) == []


def test_a_default_run_records_only_when_reproduce_asks(tmp_path, monkeypatch):
    """A run with every default writes elsewhere unless MNIST_LITE_RECORD=1, which only reproduce sets."""
    calls = []
    monkeypatch.setattr(notebook_module, "fit", lambda recipe, **kwargs: calls.append(kwargs["out"]))
    monkeypatch.delenv(RECORD, raising=False)
    notebook_module.train(5)
    monkeypatch.setenv(RECORD, "1")
    notebook_module.train(5, epochs=1)  # not the default run: never recorded
    notebook_module.train(5)
    assert RESULTS not in calls[0].parents and RESULTS not in calls[1].parents
    assert calls[2] == RESULTS / "step5"
    assert reproduce_module.HEADLESS[RECORD] == "1"


def test_format_result_shows_the_recorded_run_beside_another():
    rows = [
        dict(
            epoch=e,
            train_loss=0.1,
            train_acc=99.0,
            test_loss=0.1,
            test_acc=99.0 + e / 100,
            lr=0.1,
            seconds=1.0,
        )
        for e in (1, 2)
    ]
    recorded = dict(
        step=4,
        model="LiteNet",
        params=7578,
        epochs=2,
        history=rows,
        train_limit=None,
        test_limit=None,
        best_train_acc=99.0,
        last5_test_acc=[99.01, 99.02],
        last5_min_test_acc=99.01,
        train_seconds=2.0,
        device_name="a CPU",
        dtype="bfloat16",
    )
    other = dict(
        recorded,
        history=recorded["history"][:-1] + [dict(recorded["history"][-1], test_acc=12.5)],
        last5_test_acc=recorded["last5_test_acc"][:-1] + [12.5],
        last5_min_test_acc=12.5,
    )
    alone = format_result(recorded, recorded)
    beside = format_result(other, recorded)
    assert "recorded" not in alone and WHY_RUNS_DIFFER not in alone
    assert "this run" in beside and "recorded (results/step4)" in beside and WHY_RUNS_DIFFER in beside
    assert "12.50%" in beside and f"{recorded['last5_min_test_acc']:.2f}%" in beside


def test_notebook_error_is_one_line(tmp_path):
    """A failing cell shows the package's one-line message, not a traceback from inside it."""
    broken = tmp_path / "data"
    broken.mkdir()
    for path in (REPO / "data").glob("*.gz"):
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(CellExecutionError) as caught:
        execute(1, {"MNIST_LITE_SMOKE": "1", "MNIST_LITE_DATA": str(broken)}, tmp_path)
    message = str(caught.value)
    assert "error: " in message and "train-labels-idx1-ubyte.gz: truncated or not a gzip file" in message
    assert "Traceback" not in message and "File " not in message


def test_env_reads_overrides_and_rejects_nonsense(monkeypatch):
    from mnist_lite.errors import MnistLiteError
    from mnist_lite.notebook import env

    monkeypatch.delenv("MNIST_LITE_SMOKE", raising=False)
    monkeypatch.delenv("MNIST_LITE_EPOCHS", raising=False)
    assert env("EPOCHS") is None and env("DEVICE", "auto") == "auto"
    monkeypatch.setenv("MNIST_LITE_SMOKE", "1")
    assert (env("EPOCHS"), env("TRAIN_LIMIT"), env("SEED", 1)) == (1, 2000, 1)
    monkeypatch.setenv("MNIST_LITE_EPOCHS", "3")
    monkeypatch.setenv("MNIST_LITE_DEVICE", "cpu")
    assert (env("EPOCHS"), env("DEVICE", "auto")) == (3, "cpu")
    for bad in ("0", "-2", "three"):
        monkeypatch.setenv("MNIST_LITE_EPOCHS", bad)
        with pytest.raises(MnistLiteError, match="MNIST_LITE_EPOCHS"):
            env("EPOCHS")
