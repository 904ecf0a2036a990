"""Training: it learns, it repeats, it resumes, it stops cleanly, and its files are written safely."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from mnist_lite import engine
from mnist_lite.engine import Diverged, Interrupted, fit
from mnist_lite.errors import MnistLiteError
from mnist_lite.results import write_atomic
from mnist_lite.steps import STEPS

SMALL = dict(train_limit=1000, test_limit=500, device="cpu", quiet=True)
# dropout, rotations and a schedule that drops after epoch 1: all the state a resume must restore
TWO_EPOCHS_OF_5 = dataclasses.replace(STEPS[5], epochs=2, milestones=(1,))


def quiet(_line):
    pass


def without_seconds(history) -> list[dict]:
    rows = history.epochs if hasattr(history, "epochs") else history
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def read_json(path):
    return json.loads(path.read_text())


def test_one_epoch_of_step3_learns():
    # 5,000 images are only 40 steps of step 3's constant lr 0.01: about 50-75% test accuracy,
    # seed-dependent. 30,000 (235 steps) reach 95-96% on seeds 1-3, a safe margin over 90%.
    run = fit(dataclasses.replace(STEPS[3], epochs=1), seed=1, train_limit=30000, test_limit=1000,
              device="cpu", quiet=True, log=quiet)
    (row,) = run.history.epochs
    assert row["test_acc"] > 90
    assert row["epoch"] == 1 and row["lr"] == STEPS[3].lr
    assert row["train_loss"] < 2.0  # the epoch's mean, from the 2.30 (ln 10) of guessing
    assert run.result["params"] == sum(p.numel() for p in run.model.parameters())


def test_a_fixed_seed_repeats_exactly():
    first = fit(TWO_EPOCHS_OF_5, seed=7, log=quiet, **SMALL)
    again = fit(TWO_EPOCHS_OF_5, seed=7, log=quiet, **SMALL)
    other = fit(TWO_EPOCHS_OF_5, seed=8, log=quiet, **SMALL)
    assert len(first.history) == 2
    assert without_seconds(first.history) == without_seconds(again.history)
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    assert without_seconds(first.history) != without_seconds(other.history)


def test_fit_writes_its_files(tmp_path):
    lines = []
    run = fit(TWO_EPOCHS_OF_5, seed=3, out=tmp_path, log=lines.append, **SMALL)
    assert [row["lr"] for row in run.history.epochs] == pytest.approx([0.1, 0.01])  # the rate each epoch ran at
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "model.pt", "result.json"]
    result = read_json(tmp_path / "result.json")
    assert result == json.loads(json.dumps(run.result))
    assert result["interrupted"] is False and result["error"] is None
    assert result["train_limit"] == 1000 and result["test_limit"] == 500 and result["seed"] == 3
    assert result["best_test_acc"] == max(r["test_acc"] for r in result["history"])
    assert result["last5_min_test_acc"] == min(r["test_acc"] for r in result["history"])
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    model = STEPS[5].model()
    model.load_state_dict(state)
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(state[name], tensor)
    checkpoint = engine.load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["format"] == engine.CHECKPOINT_FORMAT and checkpoint["history"] == result["history"]


def interrupt_in_second_epoch(monkeypatch):
    """Ctrl-C while epoch 2 trains: epoch 1 is complete and checkpointed."""
    real = engine.train_epoch

    def train_epoch(*args, epoch, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(engine, "train_epoch", train_epoch)
    return quiet


def interrupt_at_second_log_line(monkeypatch):
    """Ctrl-C while epoch 2's line is printed, which comes before its checkpoint is saved."""

    def log(line):
        if line.startswith("epoch  2/"):
            raise KeyboardInterrupt

    return log


@pytest.mark.parametrize("interrupt", [interrupt_in_second_epoch, interrupt_at_second_log_line])
def test_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch, interrupt):
    straight = fit(TWO_EPOCHS_OF_5, seed=5, out=tmp_path / "a", log=quiet, **SMALL)

    out = tmp_path / "b"
    with monkeypatch.context() as patch:
        log = interrupt(patch)
        with pytest.raises(Interrupted) as caught:
            fit(TWO_EPOCHS_OF_5, seed=5, out=out, log=log, **SMALL)
    assert caught.value.exit_code == 130
    assert "\n" not in str(caught.value) and f"--resume {out}" in str(caught.value)
    stopped = read_json(out / "result.json")
    assert stopped["interrupted"] is True and stopped["error"] is None
    assert len(stopped["history"]) >= 1
    assert without_seconds(stopped["history"][:1]) == without_seconds(straight.history)[:1]
    assert len(engine.load_checkpoint(out / "checkpoint.pt")["history"]) == 1
    assert not (out / "model.pt").exists()

    # seed and limits come from the checkpoint, whatever is passed now
    resumed = fit(TWO_EPOCHS_OF_5, seed=99, out=out, resume=True, device="cpu", quiet=True, log=quiet)
    assert without_seconds(resumed.history) == without_seconds(straight.history)
    final = read_json(out / "result.json")
    assert final["interrupted"] is False and final["seed"] == 5 and final["train_limit"] == 1000
    assert without_seconds(final["history"]) == without_seconds(read_json(tmp_path / "a" / "result.json")["history"])
    a, b = torch.load(tmp_path / "a" / "model.pt"), torch.load(out / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("interrupt", [interrupt_in_second_epoch, interrupt_at_second_log_line])
def test_interrupted_result_matches_its_checkpoint(tmp_path, monkeypatch, interrupt):
    """After Ctrl-C, result.json claims only the epochs the checkpoint holds."""
    with pytest.raises(Interrupted) as caught:
        fit(TWO_EPOCHS_OF_5, out=tmp_path, log=interrupt(monkeypatch), **SMALL)
    assert str(caught.value).startswith("interrupted after 1 complete epoch(s)")
    assert read_json(tmp_path / "result.json")["history"] == engine.load_checkpoint(tmp_path / "checkpoint.pt")["history"]


def test_resume_needs_a_checkpoint_of_the_same_step(tmp_path):
    with pytest.raises(MnistLiteError, match="no checkpoint to resume from"):
        fit(TWO_EPOCHS_OF_5, out=tmp_path, resume=True, log=quiet, **SMALL)
    fit(dataclasses.replace(STEPS[2], epochs=1), out=tmp_path, log=quiet, train_limit=256, test_limit=256,
        device="cpu", quiet=True)
    with pytest.raises(MnistLiteError, match="a checkpoint of step 2, not step 5"):
        fit(TWO_EPOCHS_OF_5, out=tmp_path, resume=True, log=quiet, **SMALL)


def test_resume_refuses_a_changed_recipe(tmp_path):
    fit(dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1), out=tmp_path, log=quiet, **SMALL)
    with pytest.raises(MnistLiteError, match="trained with another step-5 recipe"):
        fit(dataclasses.replace(TWO_EPOCHS_OF_5, lr=0.05), out=tmp_path, resume=True, log=quiet, **SMALL)


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    first = fit(TWO_EPOCHS_OF_5, out=tmp_path, log=quiet, **SMALL)
    again = fit(TWO_EPOCHS_OF_5, out=tmp_path, resume=True, log=quiet, **SMALL)
    assert again.history.epochs == first.history.epochs
    assert read_json(tmp_path / "result.json") == first.result


def test_seed_sweep_skips_finished_seeds_and_summarises(tmp_path, capsys):
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1)
    options = dict(train_limit=512, test_limit=256, device="cpu", quiet=True)
    summary = engine.sweep_seeds(recipe, [1, 2], tmp_path, **options)
    assert [row["seed"] for row in summary["seeds"]] == [1, 2]
    assert read_json(tmp_path / "summary.json") == summary
    finals = [read_json(tmp_path / f"seed{s}" / "result.json")["final_test_acc"] for s in (1, 2)]
    assert summary["final_test_acc_mean"] == pytest.approx(sum(finals) / 2, abs=1e-3)
    assert summary["worst_last5_min_test_acc"] == min(finals)
    capsys.readouterr()
    assert engine.sweep_seeds(recipe, [1, 2], tmp_path, **options) == summary
    assert capsys.readouterr().out.count("already done, skipped") == 2


def test_divergence_in_the_first_epoch(tmp_path):
    recipe = dataclasses.replace(STEPS[2], lr=1e6, epochs=2)
    with pytest.raises(Diverged) as caught:
        fit(recipe, out=tmp_path, log=quiet, train_limit=512, test_limit=256, device="cpu", quiet=True)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("epoch 1, batch ") and "/4: the loss is" in message
    assert caught.value.exit_code == 1
    result = read_json(tmp_path / "result.json")
    assert result["error"] == message and result["history"] == [] and result["interrupted"] is False
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "checkpoint.pt").exists()


def test_divergence_keeps_the_epochs_before_it(tmp_path, monkeypatch):
    """A real blow-up in epoch 2: the learning rate is raised to 1e6 once epoch 1 is done."""
    optimizers = []
    real = engine.make_optimizer

    def make_optimizer(*args, **kwargs):
        optimizer, scheduler = real(*args, **kwargs)
        optimizers.append(optimizer)
        return optimizer, scheduler

    def log(line):
        for group in optimizers[0].param_groups:
            group["lr"] = 1e6

    monkeypatch.setattr(engine, "make_optimizer", make_optimizer)
    with pytest.raises(Diverged) as caught:
        fit(dataclasses.replace(STEPS[2], epochs=3), out=tmp_path, log=log, train_limit=512, test_limit=256,
            device="cpu", quiet=True)
    assert str(caught.value).startswith("epoch 2, batch ")
    result = read_json(tmp_path / "result.json")
    assert result["error"] == str(caught.value)
    assert [row["epoch"] for row in result["history"]] == [1] and result["best_test_acc"] > 0
    assert engine.load_checkpoint(tmp_path / "checkpoint.pt")["history"] == result["history"]


def test_evaluate_checkpoint_of_a_fit(tmp_path):
    run = fit(TWO_EPOCHS_OF_5, seed=2, out=tmp_path, log=quiet, **SMALL)
    _, _, images, step = engine.evaluate_checkpoint(tmp_path / "model.pt", device="cpu")
    assert images == 10000 and step == 5
    _, test_loader = engine.make_loaders("fast", 1000, torch.device("cpu"), test_limit=500, train_limit=1)
    assert engine.evaluate(run.model, test_loader)[1] == run.history.epochs[-1]["test_acc"]
    from_checkpoint = engine.evaluate_checkpoint(tmp_path / "checkpoint.pt", step=5, device="cpu")
    assert from_checkpoint == engine.evaluate_checkpoint(tmp_path / "model.pt", device="cpu")


# --- files -------------------------------------------------------------------------------------


def test_write_atomic_replaces_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_atomic(path, b"old")
    assert path.read_bytes() == b"old"
    write_atomic(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert os.listdir(path.parent) == ["result.json"]


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


# --- devices -------------------------------------------------------------------------------------


def test_pick_device_cpu():
    assert engine.pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert engine.pick_device("auto").type == expected  # the preference order: cuda, mps, cpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_pick_device_cuda_without_cuda():
    with pytest.raises(MnistLiteError, match="--device cuda: not available"):
        engine.pick_device("cuda")
    assert engine.pick_device("auto") != torch.device("cuda")


# --- precision -----------------------------------------------------------------------------------


def test_bfloat16_changes_the_forward_pass_and_is_recorded(tmp_path):
    runs = {dtype: fit(TWO_EPOCHS_OF_5, seed=4, dtype=dtype, out=tmp_path / dtype, log=quiet, **SMALL)
            for dtype in ("float32", "bfloat16")}
    for dtype, run in runs.items():
        assert run.result["dtype"] == dtype == read_json(tmp_path / dtype / "result.json")["dtype"]
        assert engine.load_checkpoint(tmp_path / dtype / "checkpoint.pt")["dtype"] == dtype
        assert all(param.dtype == torch.float32 for param in run.model.parameters())  # autocast, not a cast
    assert without_seconds(runs["float32"].history) != without_seconds(runs["bfloat16"].history)


def test_a_resumed_run_keeps_its_checkpoints_precision(tmp_path, monkeypatch):
    straight = fit(TWO_EPOCHS_OF_5, seed=4, dtype="bfloat16", out=tmp_path / "a", log=quiet, **SMALL)
    with monkeypatch.context() as patch, pytest.raises(Interrupted):
        fit(TWO_EPOCHS_OF_5, seed=4, dtype="bfloat16", out=tmp_path / "b", log=interrupt_in_second_epoch(patch),
            **SMALL)
    resumed = fit(TWO_EPOCHS_OF_5, out=tmp_path / "b", resume=True, dtype="float32", log=quiet, **SMALL)
    assert resumed.result["dtype"] == "bfloat16"
    assert without_seconds(resumed.history) == without_seconds(straight.history)


def test_an_unknown_dtype_is_refused_before_anything_is_written(tmp_path):
    first = fit(dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1), out=tmp_path, log=quiet, **SMALL)
    (tmp_path / "checkpoint.pt").unlink()  # a finished run: only result.json and model.pt
    with pytest.raises(MnistLiteError, match="dtype 'bf16': expected one of bfloat16, float32"):
        fit(TWO_EPOCHS_OF_5, dtype="bf16", out=tmp_path, log=quiet, **SMALL)
    assert (tmp_path / "model.pt").exists() and read_json(tmp_path / "result.json") == first.result


@pytest.mark.parametrize("stage", ["finished", "interrupted"])
def test_seed_sweep_refuses_a_folder_of_another_precision(tmp_path, monkeypatch, stage):
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=2)
    options = dict(train_limit=256, test_limit=256, device="cpu", quiet=True)
    if stage == "finished":
        engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **options)
        (tmp_path / "seed1" / "checkpoint.pt").unlink()  # as in a clone: results/ keeps no checkpoints
    else:
        with monkeypatch.context() as patch, pytest.raises(Interrupted):
            interrupt_in_second_epoch(patch)
            engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **options)
    before = {path.name: path.read_bytes() for path in (tmp_path / "seed1").iterdir()}
    with pytest.raises(MnistLiteError, match="seed1: holds a run of another recipe or precision"):
        engine.sweep_seeds(recipe, [1], tmp_path, dtype="bfloat16", **options)
    assert {path.name: path.read_bytes() for path in (tmp_path / "seed1").iterdir()} == before
