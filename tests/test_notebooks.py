"""The step notebooks: their shape, their recorded outputs, and a real headless smoke execution."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import nbformat
import pytest
from conftest import read_json
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mnist_lite import notebook as notebook_module
from mnist_lite import reproduce as reproduce_module
from mnist_lite.errors import MnistLiteError
from mnist_lite.notebook import PARAMETERS, RECORD, WHY_RUNS_DIFFER, format_result
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
    for name in PARAMETERS:
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
    """Step ``step``'s notebook executed headless in ``tmp_path``, its kernel's environment this
    one's plus ``env``; its run's temporary folder (see ``notebook.train``) is made in ``tmp_path``."""
    notebook = read(step)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "TMPDIR": str(tmp_path), **env})
    return notebook


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


WIDGET_VIEW, WIDGET_STATE = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)


def progress_bars(notebook) -> list[str]:
    """The progress bars among ``notebook``'s outputs: widget views (whose text fallback is frozen
    at their first frame, "0%| | 0/469") and bar text."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = output.get("text", "") + "".join(str(value) for value in data.values())
            if WIDGET_VIEW in data or re.search(r"\d+%\|", text):
                found.append(text[:80])
    return found


@pytest.mark.results  # fails for a notebook last executed before headless runs lost their bars: reproduce it
@pytest.mark.parametrize("step", sorted(STEPS))
def test_committed_notebooks_hold_no_frozen_progress_bar(step):
    """What GitHub shows of a committed notebook: the epoch lines, no bar frozen at 0%, and no
    widget state kept in its metadata (``reproduce`` drops an earlier run's)."""
    notebook = read(step)
    assert progress_bars(notebook) == []
    assert WIDGET_STATE not in notebook.metadata.get("widgets", {})


@pytest.mark.parametrize("step", sorted(STEPS))
def test_smoke_execution(step, tmp_path):
    """MNIST_LITE_SMOKE=1 runs the notebook headless in seconds, leaves the recorded run alone, shows
    it beside its own, and saves the epoch lines rather than progress bars."""
    recorded = REPO / "results" / f"step{step}"  # the one folder of results/ a notebook could write
    before = tree_digest(recorded)
    notebook = execute(step, {"MNIST_LITE_SMOKE": "1"}, tmp_path)
    assert tree_digest(recorded) == before
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


def test_reproduce_records_full_runs_without_bars_whatever_the_callers_environment(monkeypatch):
    for name, value in {
        "MNIST_LITE_SMOKE": "1",
        "MNIST_LITE_EPOCHS": "2",
        "MNIST_LITE_PROGRESS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MNIST_LITE_DATA", "/elsewhere")
    kernel = reproduce_module.kernel_environment()
    assert kernel[RECORD] == "1" and kernel["MNIST_LITE_PROGRESS"] == "0"
    assert "MNIST_LITE_SMOKE" not in kernel and "MNIST_LITE_EPOCHS" not in kernel
    assert kernel["MNIST_LITE_DATA"] == "/elsewhere" and kernel["PATH"] == os.environ["PATH"]


def fake_checkout(tmp_path: Path, monkeypatch, failing_cell: str) -> tuple[Path, Path]:
    """A checkout in ``tmp_path`` for ``reproduce``: step 1's notebook, whose second cell is
    ``failing_cell``, and a reproduction record; returns the two files."""
    notebook = tmp_path / STEPS[1].notebook
    notebook.parent.mkdir()
    cells = [nbformat.v4.new_markdown_cell("# Step 1"), nbformat.v4.new_code_cell(failing_cell)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), notebook)
    record = tmp_path / "results" / "reproduce.json"
    record.parent.mkdir()
    record.write_text('{"notebooks": [], "total_seconds": 0}\n')
    monkeypatch.setattr(reproduce_module, "in_checkout", lambda relative: tmp_path / relative)
    return notebook, record


@pytest.mark.parametrize(
    "cell, line",
    [
        (
            "import mnist_lite.notebook\nfrom mnist_lite.errors import MnistLiteError\n"
            "raise MnistLiteError('data/t10k-labels-idx1-ubyte.gz: truncated or not a gzip file')",
            "cell 2: error: data/t10k-labels-idx1-ubyte.gz: truncated or not a gzip file",
        ),
        ("1 / 0", "cell 2: ZeroDivisionError: division by zero"),
    ],
)
def test_reproduce_stops_at_a_failing_notebook_with_one_line_and_writes_nothing(
    tmp_path, monkeypatch, cell, line
):
    notebook, record = fake_checkout(tmp_path, monkeypatch, cell)
    before = notebook.read_bytes(), record.read_bytes()
    with pytest.raises(MnistLiteError) as caught:
        reproduce_module.reproduce(steps=[1])
    assert str(caught.value) == f"{notebook}: {line}"
    assert (notebook.read_bytes(), record.read_bytes()) == before


def test_reproduce_stops_when_the_package_changes_while_a_notebook_runs(tmp_path, monkeypatch):
    """An edit to the package while the series runs: each kernel imports the package afresh, so the
    notebooks would run different code. The notebook that was running is not written, and the
    whole series is to be run again."""
    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "engine.py").write_text("RATE = 0.1\n")
    (package / "SHA256SUMS").write_text("abc  train-images-idx3-ubyte\n")
    monkeypatch.setattr(reproduce_module, "PACKAGE", package)
    first, record = fake_checkout(tmp_path, monkeypatch, "rate = 0.1")
    second = tmp_path / STEPS[2].notebook  # step 2's notebook edits the package while it runs
    edit = (
        f"from pathlib import Path\nPath({str(package / 'sub' / 'engine.py')!r}).write_text('RATE = 0.2\\n')"
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(edit)]), second)
    before = second.read_bytes()
    with pytest.raises(MnistLiteError) as caught:
        reproduce_module.reproduce(steps=[1, 2])
    assert str(caught.value) == (
        f"{second}: package/ changed while the series ran, so this notebook may have run other code than "
        "those before it; it was not written (results/step2 holds its run): once the edit is done, run "
        "reproduce --steps 1 2 again"
    )
    assert second.read_bytes() == before and [entry["step"] for entry in read_json(record)["notebooks"]] == [
        1
    ]


def test_the_package_digest_covers_its_data_as_well_as_its_code(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce_module, "PACKAGE", tmp_path)
    (tmp_path / "engine.py").write_text("RATE = 0.1\n")
    (tmp_path / "SHA256SUMS").write_text("abc  train-images-idx3-ubyte\n")
    digest = reproduce_module.source_digest()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "engine.cpython-312.pyc").write_bytes(b"compiled")  # not the source
    (tmp_path / ".engine.py.swp").write_bytes(b"an editor's swap file")  # opening a file is no edit
    (tmp_path / ".#engine.py").symlink_to("user@host.1234")  # Emacs's lock file: a link to nowhere
    assert reproduce_module.source_digest() == digest
    sums = tmp_path / "SHA256SUMS"
    written = sums.stat().st_mtime_ns
    sums.write_text("abd  train-images-idx3-ubyte\n")
    os.utime(sums, ns=(written, written))  # the same time of writing: only the contents differ
    assert reproduce_module.source_digest() != digest


def test_the_package_digest_sees_an_edit_that_was_reverted(tmp_path, monkeypatch):
    """An edit undone before the check may still have been imported by a kernel in between."""
    monkeypatch.setattr(reproduce_module, "PACKAGE", tmp_path)
    source = tmp_path / "engine.py"
    source.write_text("RATE = 0.1\n")
    (tmp_path / "SHA256SUMS").write_text("abc  train-images-idx3-ubyte\n")
    written = source.stat().st_mtime_ns
    digest = reproduce_module.source_digest()
    source.write_text("RATE = 0.1\n")  # the same text again, as after an edit and its undo
    os.utime(source, ns=(written + 1_000_000_000, written + 1_000_000_000))  # a second later
    assert reproduce_module.source_digest() != digest


def two_epoch_result(step: int, **row_fields) -> dict:
    """A result.json of two epochs whose test accuracies are 99.01 and 99.02%; ``row_fields``
    (functions of the epoch) add to every row of its history."""
    rows = [
        dict(
            epoch=e,
            train_loss=0.1,
            train_acc=99.0,
            test_loss=0.1,
            test_acc=99.0 + e / 100,
            lr=0.1,
            seconds=1.0,
            **{key: value(e) for key, value in row_fields.items()},
        )
        for e in (1, 2)
    ]
    return dict(
        step=step,
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


def test_format_result_shows_the_recorded_run_beside_another():
    recorded = two_epoch_result(4)
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
    assert "without the shifts" not in beside


def test_format_result_shows_a_shifted_run_without_its_shifts_too():
    """Step 5 scores with test-time shifts: its Result also shows the last epochs of its images
    alone, and beside a record without them, a dash."""
    shifted = two_epoch_result(5, plain_test_acc=lambda e: 98.9 + e / 100)
    alone = format_result(shifted)
    assert re.search(r"\nwithout the shifts, last 2: +98.91, 98.92\n", alone), alone
    beside = format_result(two_epoch_result(5), shifted).splitlines()
    [row] = [line for line in beside if line.startswith("without the shifts")]
    assert row.split()[-3:] == ["-", "98.91,", "98.92"]
    # every value starts in its column, whichever run has the longer row names
    columns = {line.index("7,578") for line in beside if line.startswith("parameters")}
    assert columns == {line.index("-") for line in beside if line.startswith("without the shifts")}


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
