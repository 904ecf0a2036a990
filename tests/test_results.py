"""Results files: atomic writes, the history's headline numbers, reading result.json back, and the
seed summary; plus audits of the committed results/ (marked ``results``)."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
import torch
from conftest import REPO, seed_run, tree
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_lite import results
from mnist_lite.config import model_from_dict
from mnist_lite.errors import MnistLiteError
from mnist_lite.results import (
    History,
    ensure_writable,
    load_result,
    read_machine_runs,
    save_torch,
    seed_summary,
    write_atomic,
    write_json,
    write_machine_run,
)
from mnist_lite.steps import STEPS

RESULTS = REPO / "results"


# --- atomic writes ----------------------------------------------------------------------------


def test_write_atomic_replaces_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_atomic(path, b"old")
    assert path.read_bytes() == b"old"
    write_atomic(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert os.listdir(path.parent) == ["result.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_gives_the_mode_the_umask_allows(tmp_path, umask, mode):
    """mkstemp's file is private; the written file gets what a plain open() would under the umask."""
    previous = os.umask(umask)
    try:
        write_atomic(tmp_path / "result.json", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == mode


def test_write_atomic_syncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    """The rename is durable only once the folder's entry is on disk: fsync the folder after it."""
    synced, real_fsync = [], os.fsync

    def fsync(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(tmp_path / "result.json", b"x")
    assert synced == [False, True]  # the temporary file's data, then the folder


def test_write_atomic_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_atomic(path, b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # fails half-way, after the temporary file exists
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["result.json"]


def test_write_atomic_unwritable_folder(tmp_path):
    (tmp_path / "file").write_text("a regular file")
    with pytest.raises(MnistLiteError, match="cannot write here"):
        write_atomic(tmp_path / "file" / "sub" / "result.json", b"x")


def test_a_full_disk_is_one_error_and_the_old_file_is_kept(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    write_atomic(path, b"old")

    def replace(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results.os, "replace", replace)
    with pytest.raises(MnistLiteError) as caught:
        write_atomic(path, b"new")
    assert (
        str(caught.value)
        == f"{path}: could not write it (No space left on device); the old file is unchanged"
    )
    assert tree(tmp_path) == {"checkpoint.pt": b"old"}  # no temporary file left either


def test_ctrl_c_just_after_the_rename_is_still_ctrl_c(tmp_path, monkeypatch):
    """A signal lands between bytecodes: after ``os.replace`` has put the new file in place, the
    temporary file is gone, and cleaning up after the interruption must not turn it into an
    OSError about that temporary file (the CLI would report that, not the interruption)."""
    path = tmp_path / "result.json"
    write_atomic(path, b"old")
    real = results.os.replace

    def replace(src, dst):
        real(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, b"new")
    assert tree(tmp_path) == {"result.json": b"new"}


def test_ensure_writable(tmp_path):
    ensure_writable(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir() and os.listdir(tmp_path / "a" / "b") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(MnistLiteError, match=f"{tmp_path / 'file'}: cannot write here"):
        ensure_writable(tmp_path / "file")


def test_write_json_and_save_torch_read_back(tmp_path):
    write_json(tmp_path / "r.json", {"a": [1, 2.5, None]})
    text = (tmp_path / "r.json").read_text()
    assert text.endswith("}\n") and json.loads(text) == {"a": [1, 2.5, None]}
    save_torch(tmp_path / "m.pt", {"w": torch.arange(3.0), "n": 7})
    back = torch.load(tmp_path / "m.pt", weights_only=True)
    assert torch.equal(back["w"], torch.arange(3.0)) and back["n"] == 7


# --- History ----------------------------------------------------------------------------------


def rows(test_accs, train_accs=None):
    train_accs = train_accs or [acc - 1 for acc in test_accs]
    return [
        dict(epoch=i, train_loss=0.1, train_acc=train, test_loss=0.2, test_acc=test, lr=0.1, seconds=1.25)
        for i, (train, test) in enumerate(zip(train_accs, test_accs, strict=True), start=1)
    ]


def test_history_headline_numbers_by_hand():
    history = History(rows([97.0, 99.5, 99.1, 99.45, 99.4, 99.3, 99.42], [90, 99.9, 95, 96, 97, 98, 98.5]))
    assert len(history) == 7
    assert history.best_test_acc == 99.5 and history.best_train_acc == 99.9
    assert history.last_test_accs == [99.1, 99.45, 99.4, 99.3, 99.42]  # the last five, in order
    assert history.last5_min_test_acc == 99.1
    assert history.epochs_at_or_above(99.4) == [2, 4, 5, 7]  # "at or above": 99.4 itself counts
    assert history.seconds == pytest.approx(7 * 1.25)
    assert history.summary() == {
        "best_train_acc": 99.9,
        "best_test_acc": 99.5,
        "last5_test_acc": [99.1, 99.45, 99.4, 99.3, 99.42],
        "last5_min_test_acc": 99.1,
        "final_test_acc": 99.42,
        "train_seconds": 8.75,
    }


def test_the_last_epochs_of_any_column_such_as_the_images_scored_alone():
    history = History(
        [{**row, "plain_test_acc": row["test_acc"] - 0.1} for row in rows([90.0, *range(91, 97)])]
    )
    assert history.last("plain_test_acc") == pytest.approx([91.9, 92.9, 93.9, 94.9, 95.9])
    assert history.last() == history.last_test_accs == [92, 93, 94, 95, 96]


def test_a_short_history_uses_every_epoch_and_an_empty_one_has_no_summary():
    history = History(rows([50.0, 40.0]))
    assert history.last_test_accs == [50.0, 40.0] and history.last5_min_test_acc == 40.0
    history.append(rows([1, 2, 60.0])[-1])
    assert len(history) == 3 and history.summary()["final_test_acc"] == 60.0
    assert History().summary() == {}


# --- load_result ------------------------------------------------------------------------------


def test_load_result_reads_a_file_or_its_folder(tmp_path):
    write_json(tmp_path / "result.json", {"step": 5})
    assert load_result(tmp_path) == load_result(tmp_path / "result.json") == {"step": 5}


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no result file; run the step first"),
        (b"", "not a valid result file (not JSON"),
        (b'{"step": 5', "not a valid result file (not JSON"),  # truncated
        (b"\xff\xfe\x00 garbage", "not a valid result file (not UTF-8)"),
        (b"[1, 2]", "not a valid result file (JSON an array, not an object)"),
        (b"42", "not a valid result file (JSON a number, not an object)"),
        (b'"text"', "not a valid result file (JSON a string, not an object)"),
        (b"null", "not a valid result file (JSON null, not an object)"),
        (b"[" * 100_000, "not a valid result file (not JSON"),  # nested past the recursion limit
        ("folder", "cannot read it (Is a directory)"),
    ],
    ids=[
        "missing",
        "empty",
        "truncated",
        "not-utf8",
        "array",
        "number",
        "string",
        "null",
        "deep",
        "a-folder",
    ],
)
def test_load_result_refuses_anything_but_a_json_object(tmp_path, content, message):
    path = tmp_path / "result.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(MnistLiteError) as caught:
        load_result(tmp_path)
    assert str(caught.value).startswith(f"{path}: {message}") and "\n" not in str(caught.value)


def test_load_result_of_an_over_long_path(tmp_path):
    path = tmp_path / ("a" * 5000)
    with pytest.raises(MnistLiteError) as caught:
        load_result(path)
    assert str(caught.value) == f"{path}: cannot read it (File name too long)"


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda v: json.dumps(v).encode(),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                lambda inner: (
                    st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
                ),
                max_leaves=20,
            ),
        ),
    )
)
def test_any_bytes_in_result_json_give_a_dict_or_one_error(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("any")
    (folder / "result.json").write_bytes(raw)
    try:
        result = load_result(folder)
    except MnistLiteError as error:
        assert "\n" not in str(error) and str(folder / "result.json") in str(error)
    else:
        assert isinstance(result, dict) and result == json.loads(raw.decode())


# --- seed_summary -----------------------------------------------------------------------------


def test_seed_summary_by_hand():
    summary = seed_summary([seed_run(1, 99.4, 99.3), seed_run(2, 99.5, 99.45), seed_run(3, 99.6, 99.41)])
    assert summary["final_test_acc_mean"] == 99.5
    assert summary["final_test_acc_std"] == 0.1  # sample std: sqrt((0.01 + 0 + 0.01) / 2)
    assert summary["worst_last5_min_test_acc"] == 99.3
    assert [row["seed"] for row in summary["seeds"]] == [1, 2, 3]
    assert summary["seeds"][1] == {
        "seed": 2,
        "best_test_acc": 99.55,
        "final_test_acc": 99.5,
        "last5_test_acc": [99.45, 99.5],
        "last5_min_test_acc": 99.45,
    }
    assert (summary["step"], summary["model"], summary["params"], summary["dtype"]) == (
        5,
        "LiteNet",
        7578,
        "float32",
    )


def test_seed_summary_of_one_run_has_no_spread():
    summary = seed_summary([seed_run(4, 99.47, 99.4)])
    assert summary["final_test_acc_std"] == 0.0 and summary["final_test_acc_mean"] == 99.47


@pytest.mark.parametrize(
    "other",
    [
        dict(dtype="bfloat16"),
        dict(recipe={"step": 5, "lr": 0.05}),
        dict(loader="torchvision"),
        dict(train_limit=5000),
        dict(test_limit=1000),
    ],
    ids=["precision", "recipe", "loader", "train_limit", "test_limit"],
)
def test_seed_summary_refuses_runs_that_differ(other):
    with pytest.raises(MnistLiteError, match="differ in recipe or precision"):
        seed_summary([seed_run(1, 99.4, 99.3), seed_run(2, 99.5, 99.4) | other])


def test_a_run_from_before_the_dtype_option_counts_as_float32():
    old = seed_run(1, 99.4, 99.3)
    del old["dtype"]
    assert seed_summary([old, seed_run(2, 99.5, 99.4)])["dtype"] == "float32"


# --- audits of the committed results/ ---------------------------------------------------------
# One test per claim, over every committed file; a failure lists each file that breaks it.


def committed_results() -> list[Path]:
    paths = sorted(RESULTS.glob("**/result.json"))
    assert paths, f"no result.json under {RESULTS}"
    return paths


def offenders(paths, check) -> list[str]:
    """``check(path)`` on each path; the paths it fails on, each with its failure."""
    failed = []
    for path in paths:
        try:
            check(path)
        except Exception as error:  # noqa: BLE001 - every kind of failure is reported the same way
            failed.append(f"{path.relative_to(RESULTS)}: {type(error).__name__}: {error}"[:300])
    return failed


@pytest.mark.results
def test_every_committed_result_agrees_with_its_own_history():
    def check(path):
        r = load_result(path)
        assert r["error"] is None and r["interrupted"] is False
        assert len(r["history"]) == r["epochs"] == r["recipe"]["epochs"]
        assert [row["epoch"] for row in r["history"]] == list(range(1, r["epochs"] + 1))
        summary = History(r["history"]).summary()
        assert {key: r[key] for key in summary} == summary

    failed = offenders(committed_results(), check)
    assert not failed, "\n".join(failed)


@pytest.mark.results
def test_every_committed_model_is_its_recorded_architecture():
    """The recorded recipe rebuilds the model: its name and parameter count are the recorded ones,
    and the model.pt beside it (where there is one) loads into it strictly."""
    from mnist_lite.checkpoints import load_state
    from mnist_lite.config import model_from_dict
    from mnist_lite.models import count_parameters
    from mnist_lite.steps import DESIGN_BASELINE

    def check(path):
        r = load_result(path)
        if "architecture" in r["recipe"]:
            model = model_from_dict(r["recipe"]["model"], r["recipe"]["architecture"])()
            assert r["model"] == type(model).__name__
        else:  # recorded before recipes named their architecture (previous_step5/): step 5's model then
            model = DESIGN_BASELINE.model()
        assert r["params"] == count_parameters(model)
        if (path.parent / "model.pt").exists():
            model.load_state_dict(load_state(path.parent / "model.pt"))

    failed = offenders(committed_results(), check)
    assert not failed, "\n".join(failed)


@pytest.mark.results
def test_every_committed_seed_summary_is_the_summary_of_its_runs():
    """Every summary but the copies kept from before this version's seed_summary (previous_step5/)."""

    def check(path):
        summary = json.loads(path.read_text())
        runs = [load_result(path.parent / f"seed{row['seed']}") for row in summary["seeds"]]
        assert seed_summary(runs) == summary
        assert sorted(p.name for p in path.parent.glob("seed*")) == sorted(
            f"seed{row['seed']}" for row in summary["seeds"]
        )

    paths = sorted(p for p in RESULTS.glob("**/summary.json") if "previous_step5" not in p.parts)
    failed = offenders(paths, check)
    assert paths and not failed, "\n".join(failed)


STEP_RUNS = sorted(RESULTS.glob("step[1-5]/result.json"))
SWEEPS = sorted(
    {
        path.parent.parent.relative_to(RESULTS).as_posix()
        for pattern in (
            "step[1-5]_seeds*/seed*/result.json",
            "step5_plain/step5_seeds*/seed*/result.json",
            "round4_step5/step5_seeds*/seed*/result.json",
            "replicate*/*/seed*/result.json",
            "round4_step5/replicate*/*/seed*/result.json",
        )
        for path in RESULTS.glob(pattern)
    }
)

# the test-set sweeps of docs/experiments.md's frontier, whose medians the README quotes too, and
# their replicates on other machines: each finished, its summary written
FRONTIER_SWEEPS = sorted(
    path.parent.relative_to(RESULTS).as_posix()
    for pattern in (
        "frontier/*/summary.json",
        "replicate/frontier/*/summary.json",
        "replicate_*/frontier/*/summary.json",
    )
    for path in RESULTS.glob(pattern)
)


@pytest.mark.results
def test_every_step_has_a_run_and_every_quoted_sweep_twenty_seeds():
    """What the next test re-evaluates: each step's run, every seed of the sweeps the README or
    docs/experiments.md quote in full, and the first seed of every frontier sweep they name."""
    seeds = {folder: len(list((RESULTS / folder).glob("seed*/result.json"))) for folder in SWEEPS}
    quoted = (
        "step4_seeds",
        "step5_seeds",
        "round4_step5/step5_seeds",
        "round4_step5/replicate/step5_seeds",
        "round4_step5/replicate_avx2/step5_seeds",
        "replicate_avx2/step5_seeds",
    )
    assert len(STEP_RUNS) == 5 and all(seeds.get(folder, 0) >= 20 for folder in quoted), seeds
    named = set(
        re.findall(
            r"frontier/[a-z0-9_]+_(?:float32|bfloat16)", (REPO / "docs" / "experiments.md").read_text()
        )
    )
    assert named and named <= set(FRONTIER_SWEEPS), sorted(named - set(FRONTIER_SWEEPS))


@pytest.mark.results
@pytest.mark.parametrize("folder", ["steps", *SWEEPS, *FRONTIER_SWEEPS])
def test_every_committed_model_re_evaluates_to_its_recorded_accuracy(folder):
    """The models the README's claims rest on (``steps``: each step's run; otherwise the seeds of a
    sweep, step 4's and step 5's, now and from round 4 to round 18, their replicates and the
    frontier's) score on the 10,000 test images exactly what their result.json records. Each step's
    run is scored the way its recipe scores (step 5's with its test-time shifts, five forward passes
    an image), and so is the first seed of each sweep; every seed of the steps' sweeps, to keep the
    suite short, on its images alone, a score its last epoch records too, which ties the committed
    weights to the run that recorded it. Of the frontier's sweeps only the first seed is scored:
    all their seeds would add minutes to the suite."""
    from mnist_lite.data import EVAL_BATCH_SIZE, TensorLoader, load_mnist
    from mnist_lite.engine import evaluate, evaluate_checkpoint, load_model

    def images_alone(result: dict) -> float:
        return result["history"][-1].get("plain_test_acc", result["history"][-1]["test_acc"])

    def check_run(path):
        scores, images, _ = evaluate_checkpoint(path.parent / "model.pt", device="cpu")
        result = load_result(path)
        assert (images, round(scores.accuracy, 2)) == (10_000, result["final_test_acc"])
        assert round(scores.plain_accuracy, 3) == images_alone(result)

    test_images = TensorLoader(*load_mnist("test"), batch_size=EVAL_BATCH_SIZE, device=torch.device("cpu"))

    def check_seed(path):
        model, _ = load_model(path.parent / "model.pt")  # rebuilt from the result.json beside it
        assert round(evaluate(model, test_images).plain_accuracy, 3) == images_alone(load_result(path))

    if folder == "steps":
        failed = offenders(STEP_RUNS, check_run)
    else:
        seeds = sorted((RESULTS / folder).glob("seed*/result.json"))
        assert seeds
        every_seed = [] if folder in FRONTIER_SWEEPS else seeds
        failed = offenders(seeds[:1], check_run) + offenders(every_seed, check_seed)
    assert not failed, "\n".join(failed)


@pytest.mark.results
def test_the_recorded_timings_of_step5_timed_its_net_as_it_is():
    """``bench`` and tools/perf_trials.py record the architecture they timed; when step 5's net
    changes, timings of the old one must leave results/bench.json and perf_trials.json (round 4's
    are in results/round4_step5/) rather than speak for the new one."""
    runs = json.loads((RESULTS / "bench.json").read_text())
    timed = [  # every setup but the yardstick of "half the time", step 5 before the design search
        setup
        for run in runs
        if run["step"] == 5
        for name, setup in run["setups"].items()
        if name != "previous_step5"
    ]
    trials = json.loads((RESULTS / "perf_trials.json").read_text())
    assert timed and all(model_from_dict(s["model"], s["architecture"]) == STEPS[5].model for s in timed)
    assert model_from_dict(trials["model"], trials["architecture"]) == STEPS[5].model


def test_a_file_of_runs_per_machine_keeps_one_run_for_each_in_its_order(tmp_path):
    """bench.json and frontier/speed.json: a missing file is no runs; a machine timed again is
    replaced where it was, a new one is added after the others."""
    path = tmp_path / "runs.json"
    assert read_machine_runs(path, "timing", "move it away") == []
    write_machine_run(path, [], {"device_name": "a", "seconds": 1})
    write_machine_run(
        path, read_machine_runs(path, "timing", "move it away"), {"device_name": "b", "seconds": 2}
    )
    write_machine_run(
        path, read_machine_runs(path, "timing", "move it away"), {"device_name": "a", "seconds": 3}
    )
    assert read_machine_runs(path, "timing", "move it away") == [
        {"device_name": "a", "seconds": 3},
        {"device_name": "b", "seconds": 2},
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"device_name": null}]', "not a list of timing runs; move it away"),
        ('[{"device_name": "a"}, {}]', "not a list of timing runs; move it away"),
        ("[", "not a timing file (JSONDecodeError); move it away"),
        ("unreadable", "cannot read it (Permission denied); move it away"),
    ],
)
def test_a_file_of_runs_per_machine_it_cannot_add_to_is_one_line(tmp_path, monkeypatch, content, message):
    path = tmp_path / "runs.json"
    path.write_text(content)
    if content == "unreadable":  # as root, a file's mode does not stop reading it

        def refuse(self):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(MnistLiteError) as caught:
        read_machine_runs(path, "timing", "move it away")
    assert str(caught.value) == f"{path}: {message}"
