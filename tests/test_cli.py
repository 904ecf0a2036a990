"""``python -m mnist_lite`` as a user runs it: real subprocesses, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from mnist_lite.models import count_parameters
from mnist_lite.steps import STEPS

RESULT_KEYS = {
    "step", "name", "params", "seed", "device", "loader", "epochs", "history",
    "best_train_acc", "best_test_acc", "last5_min_test_acc", "torch_version",
}
ROW_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}


def read_json(path):
    return json.loads(path.read_text())


def assert_clean_error(proc, code, *fragments):
    """Exit ``code``; stderr's last line is the error, names what it is about, and has no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    last = lines[-1]
    if code == 2:  # argparse: a usage line, then "prog: error: ..."
        assert proc.stderr.startswith("usage: ") and ": error: " in last, proc.stderr
    else:
        assert last.startswith("error: ") and len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    return last


@pytest.fixture(scope="module")
def step5_run(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("step5")
    proc = run_cli("train", "--step", 5, "--epochs", 1, "--train-limit", 5000, "--test-limit", 1000,
                   "--out", out, "--quiet", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def step1_run(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("step1")
    proc = run_cli("train", "--step", 1, "--epochs", 1, "--train-limit", 256, "--test-limit", 256,
                   "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_train_writes_result_and_model(step5_run):
    out, proc = step5_run
    result = read_json(out / "result.json")
    assert RESULT_KEYS <= set(result)
    assert result["step"] == 5 and result["name"] == STEPS[5].slug and result["epochs"] == 1
    assert result["params"] == count_parameters(STEPS[5].model())
    assert result["seed"] == 1 and result["device"] == "cpu" and result["loader"] == "fast"
    assert result["dtype"] == "float32"  # the default precision
    assert result["torch_version"] == torch.__version__
    assert result["train_limit"] == 5000 and result["test_limit"] == 1000 and result["interrupted"] is False
    (row,) = result["history"]
    assert set(row) == ROW_KEYS and row["epoch"] == 1 and row["seconds"] > 0
    for key in ("train_acc", "test_acc"):
        assert 0 <= row[key] <= 100
    assert result["best_test_acc"] == result["last5_min_test_acc"] == row["test_acc"]
    assert result["best_train_acc"] == row["train_acc"]
    state = torch.load(out / "model.pt", weights_only=True)
    model = STEPS[5].model()
    model.load_state_dict(state)  # strict: every key, every shape
    assert f"{row['test_acc']:.2f}%" in proc.stdout and f"wrote {out}/result.json" in proc.stdout


def test_summary_prints_torchsummary_table(run_cli):
    proc = run_cli("summary", "--step", 5)
    assert proc.returncode == 0, proc.stderr
    params = count_parameters(STEPS[5].model())
    assert "Total params" in proc.stdout
    total = re.search(r"Total params: ([\d,]+)", proc.stdout)
    assert total and int(total.group(1).replace(",", "")) == params
    assert f"{params:,} parameters" in proc.stdout


def test_evaluate_prints_accuracy(run_cli, step5_run):
    out, _ = step5_run
    proc = run_cli("evaluate", out / "model.pt", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"step 5: test loss [\d.]+, accuracy ([\d.]+)% on 10,000 test images", proc.stdout)
    assert match and 0 <= float(match.group(1)) <= 100, proc.stdout
    same = run_cli("evaluate", out / "checkpoint.pt", "--step", 5, "--device", "cpu")
    assert same.returncode == 0 and same.stdout == proc.stdout


# --- errors: the exit code, one line, no traceback ------------------------------------------------


@pytest.mark.parametrize("args, fragment", [
    (["train", "--step", "9"], "invalid choice: 9"),
    (["train", "--step", "5", "--epochs", "0"], "--epochs: must be at least 1"),
    (["train", "--step", "5", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["train", "--step", "5", "--lr", "-1"], "--lr: must be positive"),
    (["train", "--quiet"], "give --step N, or --resume DIR"),
    (["summary", "--step", "0"], "invalid choice: 0"),
    (["train", "--step", "5", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["train", "--resume", "runs/x", "--epochs", "3", "--seed", "2"], "--epochs, --seed: not with --resume"),
    (["train", "--resume", "runs/x", "--dtype", "bfloat16"], "--dtype: not with --resume"),
])
def test_bad_arguments_exit_2(run_cli, args, fragment):
    assert_clean_error(run_cli(*args), 2, fragment)


def test_evaluate_missing_checkpoint(run_cli, tmp_path):
    missing = tmp_path / "nothing.pt"
    assert_clean_error(run_cli("evaluate", missing), 1, str(missing), "file not found")


def test_evaluate_garbage(run_cli, tmp_path):
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(os.urandom(2048))
    assert_clean_error(run_cli("evaluate", garbage, "--step", 5), 1, str(garbage), "not a PyTorch checkpoint")


def test_evaluate_a_model_of_another_step(run_cli, step1_run):
    assert_clean_error(run_cli("evaluate", step1_run / "model.pt", "--step", 5), 1,
                       str(step1_run / "model.pt"), "does not fit step 5's DropoutNet")


def test_evaluate_a_checkpoint_with_the_wrong_step(run_cli, step5_run):
    out, _ = step5_run
    assert_clean_error(run_cli("evaluate", out / "checkpoint.pt", "--step", 3), 1,
                       str(out / "checkpoint.pt"), "a checkpoint of step 5, not step 3")


def test_out_is_not_writable(run_cli, tmp_path):
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "sub"
    proc = run_cli("train", "--step", 5, "--epochs", 1, "--train-limit", 256, "--test-limit", 256,
                   "--out", out, "--quiet")
    assert_clean_error(proc, 1, str(out), "cannot write here")


def test_corrupted_data_dir(run_cli, data_copy):
    import gzip

    folder = data_copy()
    labels = folder / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: same size, different bytes
    labels.write_bytes(gzip.compress(bytes(raw)))
    proc = run_cli("train", "--step", 5, "--epochs", 1, "--train-limit", 256, "--test-limit", 256,
                   "--data-dir", folder, "--out", folder.parent / "run", "--quiet")
    assert_clean_error(proc, 1, str(labels), "SHA-256 mismatch")
    assert not (folder.parent / "run" / "result.json").exists()


def test_resume_without_checkpoint(run_cli, tmp_path):
    assert_clean_error(run_cli("train", "--resume", tmp_path, "--quiet"), 1,
                       str(tmp_path / "checkpoint.pt"), "file not found")


def test_resume_with_another_step(run_cli, step1_run):
    assert_clean_error(run_cli("train", "--resume", step1_run, "--step", 2, "--quiet"), 1,
                       "holds a run of step 1, not step 2")


def test_train_will_not_overwrite_a_resumable_run(run_cli, step1_run):
    assert_clean_error(run_cli("train", "--step", 1, "--out", step1_run, "--quiet"), 1,
                       f"{step1_run}: holds a run already; --resume {step1_run}")


def test_divergence(run_cli, tmp_path):
    proc = run_cli("train", "--step", 2, "--lr", "1e6", "--epochs", 2, "--train-limit", 512, "--test-limit", 256,
                   "--out", tmp_path, "--quiet")
    last = assert_clean_error(proc, 1, "epoch 1, batch ", "the run diverged")
    result = read_json(tmp_path / "result.json")
    assert last == f"error: {result['error']}" and result["history"] == []


# --- signals -----------------------------------------------------------------------------------


def _like_a_foreground_run():
    # A shell that starts a command in the background (`pytest ... &`) makes it, and so this child,
    # ignore SIGINT; a run a user started in a terminal takes Ctrl-C, which these tests imitate.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(out, epochs, train_limit):
    env = {k: v for k, v in os.environ.items() if k != "MNIST_LITE_DATA"}
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_lite", "train", "--step", "5", "--epochs", str(epochs),
         "--train-limit", str(train_limit), "--test-limit", "1000", "--out", str(out), "--quiet"],
        cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_like_a_foreground_run,
    )


def wait_for_epochs(proc, result, epochs, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.exists() and len(read_json(result)["history"]) >= epochs:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no epoch {epochs} in {timeout}s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_and_resume_completes(run_cli, tmp_path, signum):
    out = tmp_path / "run"
    proc = start_training(out, epochs=3, train_limit=20000)
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
    assert stopped["interrupted"] is True and 1 <= len(stopped["history"]) < 3
    assert not (out / "model.pt").exists()
    if signum == signal.SIGTERM:
        return  # the same path as SIGINT from here on; resume once

    resumed = run_cli("train", "--resume", out, "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = read_json(out / "result.json")
    assert final["interrupted"] is False and [row["epoch"] for row in final["history"]] == [1, 2, 3]
    assert final["history"][0] == stopped["history"][0]
    assert (out / "model.pt").exists()
