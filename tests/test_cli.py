"""``python -m mnist_lite`` as a user runs it: real subprocesses, exit codes and one-line errors.

The matrix of hostile inputs for every subcommand is in ``test_hostile.py``; here are the
normal runs and the errors that tell the user what to do next.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import (
    REPO,
    TINY,
    assert_clean_error,
    copy_run,
    edit_checkpoint,
    environment,
    interrupt_at_epoch_line,
    read_json,
    tree,
)

from mnist_lite.cli import main, run_cleanly
from mnist_lite.engine import Interrupted, fit
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.steps import STEPS

RESULT_KEYS = {
    "step",
    "name",
    "title",
    "model",
    "params",
    "seed",
    "device",
    "device_name",
    "loader",
    "dtype",
    "epochs",
    "train_limit",
    "test_limit",
    "eval_split",
    "recipe",
    "torch_version",
    "interrupted",
    "error",
    "history",
    "best_train_acc",
    "best_test_acc",
    "last5_test_acc",
    "last5_min_test_acc",
    "final_test_acc",
    "train_seconds",
}
ROW_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}
LIMITS = ("--train-limit", 256, "--test-limit", 256)


@pytest.fixture(scope="module")
def step5_run(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("step5")
    proc = run_cli(
        *"train --step 5 --epochs 1 --train-limit 512 --test-limit 256 --quiet --device cpu".split(),
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet: no progress bars, no warnings
    return out, proc


@pytest.fixture(scope="module")
def step1_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("step1") / "run"
    fit(dataclasses.replace(STEPS[1], epochs=1), out=out, log=lambda line: None, **TINY)
    return out


def test_train_writes_result_and_model(step5_run):
    out, proc = step5_run
    result = read_json(out / "result.json")
    assert set(result) == RESULT_KEYS
    assert result["step"] == 5 and result["name"] == STEPS[5].slug and result["epochs"] == 1
    assert result["params"] == count_parameters(STEPS[5].model()) and result["model"] == "LiteNet"
    assert result["seed"] == 1 and result["device"] == "cpu" and result["loader"] == "fast"
    assert result["dtype"] == "float32"  # the default precision
    assert result["torch_version"] == torch.__version__
    assert result["train_limit"] == 512 and result["test_limit"] == 256 and result["interrupted"] is False
    (row,) = result["history"]
    # step 5 scores with test-time shifts, so its rows also keep the images scored alone
    assert set(row) == ROW_KEYS | {"plain_test_acc"} and row["epoch"] == 1 and row["seconds"] > 0
    for key in ("train_acc", "test_acc", "plain_test_acc"):
        assert 0 <= row[key] <= 100
    assert result["best_test_acc"] == result["last5_min_test_acc"] == row["test_acc"]
    assert result["best_train_acc"] == row["train_acc"]
    state = torch.load(out / "model.pt", weights_only=True)
    model = STEPS[5].model()
    model.load_state_dict(state)  # strict: every key, every shape
    assert f"{row['test_acc']:.2f}%" in proc.stdout and f"wrote {out}/result.json" in proc.stdout
    assert (
        f"test loss {row['test_loss']:.5f} acc {row['test_acc']:7.3f}%" in proc.stdout
    )  # the recorded figures


def test_summary_prints_torchsummary_table(run_cli):
    proc = run_cli("summary", "--step", 5)
    assert proc.returncode == 0, proc.stderr
    params = count_parameters(STEPS[5].model())
    total = re.search(r"Total params: ([\d,]+)", proc.stdout)
    assert total and int(total.group(1).replace(",", "")) == params
    assert f"step 5 (LiteNet): {params:,} parameters" in proc.stdout


def test_evaluate_prints_accuracy(run_cli, step5_run):
    out, _ = step5_run
    proc = run_cli("evaluate", out / "model.pt", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    match = re.search(
        r"step 5: test loss [\d.]+, accuracy ([\d.]+)% \(mean over the image and its four copies shifted "
        r"by 1 pixel; ([\d.]+)% the image alone\) on 10,000 test images",
        proc.stdout,
    )
    assert match and 0 <= float(match.group(1)) <= 100 and 0 <= float(match.group(2)) <= 100, proc.stdout
    same = run_cli("evaluate", out / "checkpoint.pt", "--step", 5, "--device", "cpu")
    assert same.returncode == 0 and same.stdout == proc.stdout


# --- errors: the exit code, one line, no traceback ------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--step", "9"], "invalid choice: 9"),
        (["train", "--step", "5", "--epochs", "0"], "--epochs: must be at least 1"),
        (["train", "--step", "5", "--batch-size", "0"], "--batch-size: must be at least 1"),
        (["train", "--step", "5", "--lr", "-1"], "--lr: must be a positive number"),
        (["train", "--step", "5", "--seed", "-1"], "--seed: must be from 0 to 9223372036854775807, got -1"),
        (["train", "--step", "5", "--seed", "2.5"], "--seed: expected a whole number, got '2.5'"),
        (["train", "--quiet"], "give --step N, or --resume DIR"),
        (["summary", "--step", "0"], "invalid choice: 0"),
        (["train", "--step", "5", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
        (["seeds", "--seeds", "3-1"], "'3-1' names no seed"),
        (["seeds", "--seeds", "1,2,1"], "'1,2,1' names a seed more than once"),
        (["seeds", "--seeds", "1,x"], "expected a range like 1-5 or a list like 1,3,7, got '1,x'"),
        (
            ["train", "--resume", "runs/x", "--epochs", "3", "--seed", "2"],
            "--epochs, --seed: not with --resume",
        ),
        (["train", "--resume", "runs/x", "--dtype", "bfloat16"], "--dtype: not with --resume"),
        (["train", "--resume", "runs/x", "--out", "runs/y"], "--out: not with --resume"),
        (["train", "--resume", "runs/x", "--loader", "fast"], "--loader: not with --resume"),
        (["train", "--resume", "runs/x", "--device", "cpu"], "--device: not with --resume"),
        (
            [
                "train",
                "--resume",
                "runs/x",
                "--lr",
                "0.1",
                "--batch-size",
                "64",
                "--train-limit",
                "5",
                "--test-limit",
                "5",
            ],
            "--lr, --batch-size, --train-limit, --test-limit: not with --resume",
        ),
    ],
)
def test_bad_arguments_exit_2(run_cli, args, fragment):
    assert_clean_error(run_cli(*args), 2, fragment)


def test_resume_takes_step_data_dir_and_quiet(run_cli, tmp_path):
    """The flags --resume allows get past the argument check, to the checkpoint it needs."""
    proc = run_cli("train", "--resume", tmp_path, "--step", 5, "--data-dir", tmp_path, "--quiet")
    assert_clean_error(proc, 1, f"{tmp_path / 'checkpoint.pt'}: file not found")


def test_evaluate_a_model_of_another_step(run_cli, step1_run):
    assert_clean_error(
        run_cli("evaluate", step1_run / "model.pt", "--step", 5),
        1,
        str(step1_run / "model.pt"),
        "a checkpoint of step 1, not step 5",
    )


def test_evaluate_a_bare_model_of_another_step(run_cli, step1_run, tmp_path):
    """Without a result.json beside it, --step says what it is; a mismatch is named."""
    (tmp_path / "model.pt").write_bytes((step1_run / "model.pt").read_bytes())
    assert_clean_error(
        run_cli("evaluate", tmp_path / "model.pt", "--step", 5),
        1,
        str(tmp_path / "model.pt"),
        "does not fit step 5's LiteNet",
    )


def test_evaluate_a_checkpoint_with_the_wrong_step(run_cli, step5_run):
    out, _ = step5_run
    assert_clean_error(
        run_cli("evaluate", out / "checkpoint.pt", "--step", 3),
        1,
        str(out / "checkpoint.pt"),
        "a checkpoint of step 5, not step 3",
    )


def test_out_is_not_writable(run_cli, tmp_path):
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "sub"
    proc = run_cli("train", "--step", 5, "--epochs", 1, *LIMITS, "--out", out, "--quiet")
    assert_clean_error(proc, 1, str(out), "cannot write here")


def test_corrupted_data_dir(run_cli, data_copy):
    import gzip

    folder = data_copy()
    labels = folder / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: same size, different bytes
    labels.write_bytes(gzip.compress(bytes(raw)))
    proc = run_cli(
        "train",
        "--step",
        5,
        "--epochs",
        1,
        *LIMITS,
        "--data-dir",
        folder,
        "--out",
        folder.parent / "run",
        "--quiet",
    )
    assert_clean_error(proc, 1, str(labels), "SHA-256 mismatch")
    assert not (folder.parent / "run" / "result.json").exists()


def test_resume_without_checkpoint(run_cli, tmp_path):
    assert_clean_error(
        run_cli("train", "--resume", tmp_path, "--quiet"),
        1,
        str(tmp_path / "checkpoint.pt"),
        "file not found",
    )


def test_resume_with_another_step(run_cli, step1_run):
    assert_clean_error(
        run_cli("train", "--resume", step1_run, "--step", 2, "--quiet"),
        1,
        "holds a run of step 1, not step 2",
    )


def test_train_refuses_a_folder_holding_an_unfinished_run(run_cli, unfinished_run, tmp_path):
    out = copy_run(unfinished_run, tmp_path / "run")
    before = tree(out)
    proc = run_cli("train", "--step", 5, "--epochs", 1, *LIMITS, "--out", out, "--quiet")
    assert_clean_error(
        proc, 1, f"{out}: holds an unfinished run; resume it (--resume {out}), or choose another --out"
    )
    assert tree(out) == before


def test_train_over_a_finished_run(run_cli, finished_run, tmp_path):
    """A finished run's folder may be trained over: the new run replaces it."""
    out = copy_run(finished_run, tmp_path / "run")
    proc = run_cli("train", "--step", 1, "--epochs", 1, *LIMITS, "--seed", 2, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = read_json(out / "result.json")
    assert (result["step"], result["seed"], len(result["history"])) == (1, 2, 1)
    STEPS[1].model().load_state_dict(torch.load(out / "model.pt", weights_only=True))


def test_resume_of_a_torchvision_run_is_refused(run_cli, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Interrupted):  # epoch 1 of 2 is complete
        fit(
            dataclasses.replace(STEPS[5], epochs=2),
            loader="torchvision",
            out=out,
            log=interrupt_at_epoch_line(2),
            **TINY,
        )
    before = tree(out)
    assert_clean_error(
        run_cli("train", "--resume", out, "--quiet"),
        1,
        str(out / "checkpoint.pt"),
        "a run with --loader torchvision cannot be resumed exactly",
    )
    assert tree(out) == before


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available here")
def test_resume_trains_on_the_device_the_checkpoint_records(run_cli, unfinished_run, tmp_path):
    """A checkpoint saved on an Apple GPU resumes there, not wherever --device auto points now."""
    out = copy_run(unfinished_run, tmp_path / "run")
    edit_checkpoint(out / "checkpoint.pt", lambda checkpoint: checkpoint.update(device="mps"))
    before = tree(out)
    assert_clean_error(
        run_cli("train", "--resume", out, "--quiet"), 1, "trained on 'mps', which this machine lacks"
    )
    assert tree(out) == before


def test_resume_completes_the_run(run_cli, unfinished_run, tmp_path):
    out = copy_run(unfinished_run, tmp_path / "run")
    stopped = read_json(out / "result.json")
    proc = run_cli("train", "--resume", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {out} after epoch 1" in proc.stdout
    final = read_json(out / "result.json")
    assert [row["epoch"] for row in final["history"]] == [1, 2] and final["history"][0] == stopped["history"][
        0
    ]
    assert (final["seed"], final["train_limit"], final["dtype"]) == (stopped["seed"], 256, stopped["dtype"])
    assert (out / "model.pt").exists()


def test_divergence(run_cli, tmp_path):
    """Before its first epoch is complete the run has nothing to record: the error is said on stderr."""
    args = "train --step 2 --lr 1e6 --batch-size 128 --epochs 2 --train-limit 512 --test-limit 256 --quiet"
    proc = run_cli(*args.split(), "--out", tmp_path)
    assert_clean_error(
        proc,
        1,
        "epoch 1, batch ",
        "the run diverged (lower the learning rate: train --lr, or the recipe's lr)",
    )
    assert list(tmp_path.iterdir()) == []


# --- signals -----------------------------------------------------------------------------------


def _like_a_foreground_run():
    # A shell that starts a command in the background (`pytest ... &`) makes it, and so this child,
    # ignore SIGINT; a run a user started in a terminal takes Ctrl-C, which these tests imitate.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(out, epochs, train_limit):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnist_lite",
            "train",
            "--step",
            "5",
            "--epochs",
            str(epochs),
            "--train-limit",
            str(train_limit),
            "--test-limit",
            "256",
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=out.parent,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_like_a_foreground_run,
    )


def wait_for_epochs(proc, result, epochs, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.exists() and len(read_json(result)["history"]) >= epochs:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no epoch {epochs} in {timeout}s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_and_resume_completes(run_cli, tmp_path, signum):
    out = tmp_path / "run"
    epochs = 6  # 512 images an epoch: the signal comes while epoch 2 or 3 trains, well before the end
    proc = start_training(out, epochs=epochs, train_limit=512)
    try:
        wait_for_epochs(proc, out / "result.json", 1)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert_clean_error(done, 130, "interrupted after", f"--resume {out}")
    stopped = read_json(out / "result.json")
    assert stopped["interrupted"] is True and 1 <= len(stopped["history"]) < epochs
    assert not (out / "model.pt").exists()
    if signum == signal.SIGTERM:
        return  # the same path as SIGINT from here on; resume once

    resumed = run_cli("train", "--resume", out, "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = read_json(out / "result.json")
    assert final["interrupted"] is False and [row["epoch"] for row in final["history"]] == list(
        range(1, epochs + 1)
    )
    assert final["history"][0] == stopped["history"][0]
    assert (out / "model.pt").exists()


@pytest.mark.parametrize(
    "raised, code, line",
    [
        (MnistLiteError("no such folder"), 1, "error: no such folder\n"),
        (Interrupted("interrupted in epoch 3; resume with --resume out"), 130, None),
        (KeyboardInterrupt(), 130, "error: interrupted\n"),
        (
            PermissionError(13, "Permission denied", "out/result.json"),
            1,
            "error: out/result.json: Permission denied\n",
        ),
    ],
)
def test_run_cleanly_ends_a_users_problem_in_one_line_and_its_exit_status(raised, code, line, capsys):
    def command():
        raise raised

    assert run_cleanly(command) == code
    assert capsys.readouterr().err == (line or f"error: {raised}\n")
    assert run_cleanly(lambda: None) == 0


def test_run_cleanly_turns_sigterm_into_an_interrupt_while_the_command_runs_only(capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert run_cleanly(lambda: os.kill(os.getpid(), signal.SIGTERM)) == 130
    assert capsys.readouterr().err == "error: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    "tool",
    [["design.py", "--time", "previous"], ["tta.py", "--seeds", "999"], ["precise_bn.py", "--seeds", "999"]],
)
def test_the_tools_end_a_users_problem_in_one_line_too(tool, tmp_path):
    """The design tools run their ``main`` through ``run_cleanly``: missing data is one line, not a
    traceback (an empty MNIST_LITE_DATA fails before anything trains or is written)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / tool[0]), *tool[1:]],
        env=dict(environment(), MNIST_LITE_DATA=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean_error(proc, 1, "holds none of the four MNIST files")


def test_reproduce_without_the_notebook_tools_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nbclient", None)  # as if not installed: importing it fails
    monkeypatch.delitem(sys.modules, "mnist_lite.reproduce", raising=False)
    assert main(["reproduce", "--steps", "1"]) == 1
    assert capsys.readouterr().err == "error: reproduce needs nbclient: pip install -r requirements.txt\n"


def test_reproduce_lets_a_fault_of_the_package_itself_surface(monkeypatch):
    """Only a missing notebook tool is the user's to install; a broken import inside mnist_lite is a
    bug, and is not dressed up as one."""
    monkeypatch.setitem(sys.modules, "mnist_lite.reproduce", None)
    with pytest.raises(ModuleNotFoundError):
        main(["reproduce", "--steps", "1"])
