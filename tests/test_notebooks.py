"""The step notebooks: their shape, their recorded outputs, and a real headless smoke execution."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mnist_lite.notebook import format_result
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


@pytest.mark.parametrize("step", sorted(STEPS))
def test_stored_result_matches_result_json(step):
    """The committed notebook's Result output is the recorded run's result.json, to the digit."""
    notebook = read(step)
    index = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and c.source.startswith("## Result"))
    outputs = notebook.cells[index + 1].outputs
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert printed.strip() == format_result(load_result(REPO / "results" / f"step{step}")).strip()


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


@pytest.mark.parametrize("step", sorted(STEPS))
def test_smoke_execution(step, tmp_path):
    """MNIST_LITE_SMOKE=1 runs the notebook headless in seconds and leaves results/ alone."""
    before = tree_digest(REPO / "results")
    notebook = execute(step, {"MNIST_LITE_SMOKE": "1"}, tmp_path)
    assert tree_digest(REPO / "results") == before
    result_cell = next(
        notebook.cells[i + 1] for i, c in enumerate(notebook.cells) if c.source.startswith("## Result")
    )
    printed = "".join(o.get("text", "") for o in result_cell.outputs)
    assert "epochs run:                      1 of 1 (train limit 2000, test limit 1000)" in printed


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
