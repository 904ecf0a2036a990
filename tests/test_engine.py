"""Training: it learns, it repeats, it resumes, it stops cleanly, it keeps older runs' files
until it has something better, and a failed write is said where it can be."""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os

import pytest
import torch
from conftest import (
    copy_run,
    edit_checkpoint,
    every_field_changed,
    interrupt_at_epoch_line,
    quiet,
    read_json,
    tree,
)

from mnist_lite import checkpoints, data, engine, results
from mnist_lite.config import MAX_SEED
from mnist_lite.data import (
    EVAL_BATCH_SIZE,
    TensorLoader,
    load_mnist,
    make_loaders,
    shifted_copies,
    validation_split,
)
from mnist_lite.engine import (
    Diverged,
    Interrupted,
    Settings,
    fit,
    format_epoch,
    make_averaged,
    make_optimizer,
    recipe_from_checkpoint,
)
from mnist_lite.errors import MnistLiteError
from mnist_lite.steps import STEPS

SMALL = dict(train_limit=256, test_limit=256, device="cpu", quiet=True)
# dropout, rotations and a schedule that drops after epoch 1: all the state a resume must restore
TWO_EPOCHS_OF_5 = dataclasses.replace(STEPS[5], epochs=2, milestones=(1,))


def without_seconds(history) -> list[dict]:
    rows = history.epochs if hasattr(history, "epochs") else history
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def as_json(value):
    """``value`` as result.json records it (tuples become lists)."""
    return json.loads(json.dumps(value))


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_epochs_learn():
    """512 images at batch size 16 (32 steps an epoch): from guessing (10%, loss ln 10 = 2.30) to
    43-67% test accuracy on seeds 1-3."""
    recipe = dataclasses.replace(STEPS[3], epochs=2, batch_size=16, lr=0.05)
    run = fit(recipe, seed=1, train_limit=512, test_limit=500, device="cpu", quiet=True, log=quiet)
    first, second = run.history.epochs
    assert second["test_acc"] > 25 and second["train_loss"] < first["train_loss"] < 2.30
    assert [first["epoch"], second["epoch"]] == [1, 2] and first["lr"] == second["lr"] == 0.05
    assert run.result["params"] == sum(p.numel() for p in run.model.parameters())


def test_a_fixed_seed_repeats_exactly():
    first = fit(TWO_EPOCHS_OF_5, seed=7, log=quiet, **SMALL)
    again = fit(TWO_EPOCHS_OF_5, seed=7, log=quiet, **SMALL)
    other = fit(TWO_EPOCHS_OF_5, seed=8, log=quiet, **SMALL)
    assert len(first.history) == 2
    assert without_seconds(first.history) == without_seconds(again.history)
    assert same_weights(first.model.state_dict(), again.model.state_dict())
    assert without_seconds(first.history) != without_seconds(other.history)


def test_fit_writes_its_files(tmp_path):
    lines = []
    run = fit(TWO_EPOCHS_OF_5, seed=3, out=tmp_path, log=lines.append, **SMALL)
    lr = TWO_EPOCHS_OF_5.lr
    assert [row["lr"] for row in run.history.epochs] == pytest.approx(
        [lr, lr / 10]
    )  # the rate each epoch ran at
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "model.pt", "result.json"]
    result = read_json(tmp_path / "result.json")
    assert result == json.loads(json.dumps(run.result))
    assert result["interrupted"] is False and result["error"] is None
    assert result["train_limit"] == 256 and result["test_limit"] == 256 and result["seed"] == 3
    assert result["dtype"] == "float32" and result["eval_split"] == "test"
    assert result["recipe"] == as_json(TWO_EPOCHS_OF_5.as_dict()) and result["model"] == "LiteNet"
    assert result["best_test_acc"] == max(r["test_acc"] for r in result["history"])
    assert result["last5_min_test_acc"] == min(r["test_acc"] for r in result["history"])
    # the log prints exactly the recorded (rounded) figures
    assert lines == [format_epoch(row, 2) for row in result["history"]]
    for line, row in zip(lines, result["history"], strict=True):
        assert f"test loss {row['test_loss']:.5f} acc {row['test_acc']:7.3f}%" in line
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    model = STEPS[5].model()
    model.load_state_dict(state)
    assert same_weights(state, run.model.state_dict())
    checkpoint = checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["format"] == checkpoints.FORMAT and checkpoint["history"] == result["history"]
    assert checkpoint["device"] == "cpu" == result["device"]  # a resume goes on where the run trained
    assert as_json(checkpoint["recipe"]) == result["recipe"]
    assert checkpoint["settings"] == dataclasses.asdict(
        Settings(3, "fast", result["dtype"], 256, 256, "test")
    )


def test_format_epoch_prints_the_recorded_figures():
    row = dict(
        epoch=3,
        train_loss=0.12345,
        train_acc=98.765,
        test_loss=0.04321,
        test_acc=99.125,
        lr=0.01,
        seconds=12.34,
    )
    assert format_epoch(row, 15) == (
        "epoch  3/15  train loss 0.12345 acc  98.765%  test loss 0.04321 acc  99.125%  lr 0.01  12.3s"
    )


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(seed=-1), "seed -1: expected a whole number from 0 to"),
        (dict(seed=MAX_SEED + 1), f"seed {MAX_SEED + 1}: expected"),
        (dict(loader="pil"), "loader 'pil': expected one of fast, torchvision"),
        (
            dict(dtype="auto"),
            "dtype 'auto': expected one of bfloat16, float32",
        ),  # resolved before it is recorded
        (dict(eval_split="train"), "eval split 'train': expected one of test, validation"),
        (dict(train_limit=-5), "-5"),  # images[:-5] would train on all but five: 59,995 images
        (dict(train_limit=0), "0"),
        (dict(test_limit=-1), "-1"),
        (dict(seed="1"), "'1'"),  # as a damaged checkpoint would hold it
    ],
    ids=[
        "seed-negative",
        "seed-huge",
        "loader",
        "dtype-auto",
        "eval-split",
        "train-limit-negative",
        "train-limit-0",
        "test-limit-negative",
        "seed-a-string",
    ],
)
def test_settings_are_validated(settings, message):
    with pytest.raises(MnistLiteError) as caught:
        Settings(**settings)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_settings_are_frozen_and_default_to_a_plain_run():
    settings = Settings()
    assert dataclasses.asdict(settings) == dict(
        seed=1, loader="fast", dtype="float32", train_limit=None, test_limit=None, eval_split="test"
    )
    assert Settings(seed=0).seed == 0 and Settings(seed=MAX_SEED).seed == MAX_SEED
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 2


def test_a_bad_setting_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(MnistLiteError, match="seed -1"):
        fit(TWO_EPOCHS_OF_5, seed=-1, out=tmp_path / "run", log=quiet, **SMALL)
    assert not (tmp_path / "run").exists()


def test_validation_split_is_what_is_evaluated(tmp_path):
    run = fit(
        dataclasses.replace(STEPS[3], epochs=1), eval_split="validation", out=tmp_path, log=quiet, **SMALL
    )
    assert read_json(tmp_path / "result.json")["eval_split"] == "validation"
    _, (images, labels) = validation_split(*load_mnist("train"))
    held_out = TensorLoader(images[:256], labels[:256], EVAL_BATCH_SIZE, torch.device("cpu"))
    test = TensorLoader(*load_mnist("test", limit=256), EVAL_BATCH_SIZE, torch.device("cpu"))
    loss, accuracy, _ = engine.evaluate(run.model, held_out)
    assert (round(loss, 5), round(accuracy, 3)) == (
        run.history.epochs[0]["test_loss"],
        run.history.epochs[0]["test_acc"],
    )
    assert engine.evaluate(run.model, held_out) != engine.evaluate(run.model, test)


def test_test_time_shifts_average_the_probabilities_of_five_views():
    """With a shift, each image's class is the argmax of the mean softmax over it and its four
    shifted copies, the loss that mean's cross-entropy; the images alone score as without it."""
    torch.manual_seed(0)
    model = STEPS[5].model().eval()
    images, labels = load_mnist("test", limit=300)
    loader = TensorLoader(images, labels, 128, torch.device("cpu"))  # batches of 128, 128 and 44
    x = loader.images
    with torch.no_grad():
        mean = torch.stack([model(view).softmax(1) for view in shifted_copies(x, 1)]).mean(0)
        plain = model(x).argmax(1)
    shifted, alone = engine.evaluate(model, loader, test_time_shift=1), engine.evaluate(model, loader)
    assert shifted.accuracy == pytest.approx(100 * (mean.argmax(1) == labels).float().mean().item())
    assert shifted.loss == pytest.approx(torch.nn.functional.nll_loss(mean.log(), labels).item(), rel=1e-5)
    assert shifted.plain_accuracy == alone.accuracy == alone.plain_accuracy
    assert alone.accuracy == pytest.approx(100 * (plain == labels).float().mean().item())
    assert (mean.argmax(1) != plain).any()  # the shifts change some answers: the check has teeth


def test_a_recipe_with_test_time_shifts_records_both_scores(tmp_path):
    """The history's test accuracy is the recipe's way of scoring; ``plain_test_acc`` is the images
    alone, recorded only for a recipe that shifts (older records keep their shape)."""
    shifting = fit(dataclasses.replace(STEPS[5], epochs=1), seed=3, log=quiet, **SMALL)
    plain = fit(dataclasses.replace(STEPS[5], epochs=1, test_time_shift=0), seed=3, log=quiet, **SMALL)
    row, plain_row = shifting.history.epochs[0], plain.history.epochs[0]
    assert "plain_test_acc" not in plain_row and row["plain_test_acc"] == plain_row["test_acc"]
    assert row["train_loss"] == plain_row["train_loss"]  # scoring draws no random numbers
    _, test_loader = make_loaders("fast", 1000, torch.device("cpu"), test_limit=256, train_limit=1)
    scores = engine.evaluate(shifting.model, test_loader, 1)
    assert (row["test_loss"], row["test_acc"]) == (round(scores.loss, 5), round(scores.accuracy, 3))
    assert row["test_loss"] != plain_row["test_loss"]  # scored otherwise than the images alone
    assert shifting.result["recipe"]["test_time_shift"] == 1


# --- resume ---------------------------------------------------------------------------------------


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
    return interrupt_at_epoch_line(2)


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
    assert without_seconds(stopped["history"]) == without_seconds(straight.history)[:1]
    assert len(checkpoints.load_checkpoint(out / "checkpoint.pt")["history"]) == 1
    assert not (out / "model.pt").exists()

    # seed and limits come from the checkpoint, whatever is passed now
    resumed = fit(TWO_EPOCHS_OF_5, seed=99, out=out, resume=True, device="cpu", quiet=True, log=quiet)
    assert without_seconds(resumed.history) == without_seconds(straight.history)
    final = read_json(out / "result.json")
    assert final["interrupted"] is False and final["seed"] == 5 and final["train_limit"] == 256
    assert without_seconds(final["history"]) == without_seconds(
        read_json(tmp_path / "a" / "result.json")["history"]
    )
    assert same_weights(torch.load(tmp_path / "a" / "model.pt"), torch.load(out / "model.pt"))


@pytest.mark.parametrize("interrupt", [interrupt_in_second_epoch, interrupt_at_second_log_line])
def test_interrupted_result_matches_its_checkpoint(tmp_path, monkeypatch, interrupt):
    """After Ctrl-C, result.json claims only the epochs the checkpoint holds."""
    with pytest.raises(Interrupted) as caught:
        fit(TWO_EPOCHS_OF_5, out=tmp_path, log=interrupt(monkeypatch), **SMALL)
    assert str(caught.value).startswith("interrupted after 1 complete epoch(s)")
    assert (
        read_json(tmp_path / "result.json")["history"]
        == checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")["history"]
    )


@pytest.mark.parametrize("loader", ["fast", "torchvision"])
def test_the_last_clean_epochs_train_on_the_images_as_they_are(monkeypatch, loader):
    """With ``clean_epochs`` the augmentation runs in every batch of the first epochs and in none
    of the last ones, in either pipeline."""
    augmented = {}  # epoch -> how many training images were augmented in it
    original_run_epoch = engine.run_epoch

    def counting_run_epoch(recipe, trainer, train_loader, eval_loader, settings, epoch, quiet):
        augmented[epoch] = 0  # from here on, what is augmented counts for this epoch
        return original_run_epoch(recipe, trainer, train_loader, eval_loader, settings, epoch, quiet)

    original_affine = data.affine

    def counting_affine(images, *args, **kwargs):
        augmented[max(augmented)] += len(images)
        return original_affine(images, *args, **kwargs)

    original_transform = data.torchvision_transform

    def counting_transform(augment):
        transform = original_transform(augment)

        def counted(image):
            augmented[max(augmented)] += 1
            return transform(image)

        return counted

    monkeypatch.setattr(engine, "run_epoch", counting_run_epoch)
    monkeypatch.setattr(data, "affine", counting_affine)
    monkeypatch.setattr(data, "torchvision_transform", counting_transform)
    # the classic pipeline's workers would count in their own processes: none here
    monkeypatch.setattr(data, "torchvision_loader", functools.partial(data.torchvision_loader, workers=0))
    monkeypatch.setitem(data.LOADERS, "torchvision", data.torchvision_loader)
    recipe = dataclasses.replace(STEPS[5], epochs=3, clean_epochs=2, test_time_shift=0)
    fit(recipe, loader=loader, log=quiet, **SMALL)
    assert augmented == {1: 256, 2: 0, 3: 0}


def test_every_recipe_field_is_restored_and_the_resume_is_exact(tmp_path):
    """Architecture, a warm-up, label smoothing, shifts and the weight average (EMA): a
    checkpoint restores them all, and the resumed run ends exactly like an uninterrupted one."""
    recipe = every_field_changed()
    straight = fit(recipe, seed=2, out=tmp_path / "a", log=quiet, **SMALL)
    with pytest.raises(Interrupted):
        fit(recipe, seed=2, out=tmp_path / "b", log=interrupt_at_epoch_line(2), **SMALL)
    assert (
        recipe_from_checkpoint(checkpoints.load_checkpoint(tmp_path / "b" / "checkpoint.pt"), "b") == recipe
    )
    resumed = fit(recipe, out=tmp_path / "b", resume=True, log=quiet, device="cpu", quiet=True)
    assert without_seconds(resumed.history) == without_seconds(straight.history)
    assert same_weights(torch.load(tmp_path / "a" / "model.pt"), torch.load(tmp_path / "b" / "model.pt"))


@pytest.mark.parametrize(
    "changes",
    [
        dict(epochs=3, schedule="onecycle"),  # its rate rises and falls within the run, batch by batch
        dict(epochs=3, warmup_epochs=2, milestones=(2,)),  # stopped with the warm-up half done
    ],
    ids=["onecycle", "mid-warm-up"],
)
def test_a_schedule_that_moves_every_batch_resumes_exactly(tmp_path, changes):
    recipe = dataclasses.replace(STEPS[5], batch_size=64, **changes)  # four batches an epoch
    straight = fit(recipe, seed=3, out=tmp_path / "a", log=quiet, **SMALL)
    with pytest.raises(Interrupted):
        fit(recipe, seed=3, out=tmp_path / "b", log=interrupt_at_epoch_line(2), **SMALL)
    resumed = fit(recipe, out=tmp_path / "b", resume=True, log=quiet, device="cpu", quiet=True)
    assert without_seconds(resumed.history) == without_seconds(straight.history)
    assert len({row["lr"] for row in straight.history.epochs}) == recipe.epochs  # it did move
    assert same_weights(torch.load(tmp_path / "a" / "model.pt"), torch.load(tmp_path / "b" / "model.pt"))


def test_resume_needs_a_checkpoint_of_the_same_step(tmp_path):
    with pytest.raises(ValueError, match="^resume=True needs out, the folder that holds checkpoint.pt$"):
        fit(TWO_EPOCHS_OF_5, resume=True, log=quiet, **SMALL)
    with pytest.raises(MnistLiteError, match="no checkpoint to resume from"):
        fit(TWO_EPOCHS_OF_5, out=tmp_path, resume=True, log=quiet, **SMALL)
    fit(dataclasses.replace(STEPS[2], epochs=1), out=tmp_path, log=quiet, **SMALL)
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
    assert read_json(tmp_path / "result.json") == as_json(first.result)
    assert again.result == first.result  # with its history and summary, though no epoch was left


def test_a_torchvision_run_cannot_be_resumed(tmp_path):
    """Its DataLoader workers' seeds are not in the checkpoint: a resume would see other batches."""
    with pytest.raises(Interrupted) as interrupted:
        fit(TWO_EPOCHS_OF_5, loader="torchvision", out=tmp_path, log=interrupt_at_epoch_line(2), **SMALL)
    assert str(interrupted.value) == (
        "interrupted after 1 complete epoch(s); a run with --loader torchvision cannot be resumed: "
        "train afresh"
    )
    before = tree(tmp_path)
    with pytest.raises(MnistLiteError) as caught:
        fit(TWO_EPOCHS_OF_5, out=tmp_path, resume=True, log=quiet, **SMALL)
    assert str(caught.value) == (
        f"{tmp_path / 'checkpoint.pt'}: a run with --loader torchvision cannot be resumed exactly; train "
        "afresh"
    )
    assert tree(tmp_path) == before


def test_an_interrupted_torchvision_run_may_be_trained_over_and_its_sweep_goes_on(tmp_path, monkeypatch):
    """It cannot be resumed, so it is not an unfinished run that a fresh one must keep: the
    same seeds command, run again as its message says, trains the seed afresh."""
    monkeypatch.setitem(data.LOADERS, "torchvision", functools.partial(data.torchvision_loader, workers=0))
    with pytest.raises(Interrupted) as caught:
        engine.sweep_seeds(
            TWO_EPOCHS_OF_5, [1], tmp_path, loader="torchvision", log=interrupt_at_epoch_line(2), **SMALL
        )
    assert str(caught.value) == (
        "seed 1: interrupted after 1 complete epoch(s); run the same seeds command again to go on"
    )
    assert not checkpoints.is_unfinished(tmp_path / "seed1" / "checkpoint.pt")
    summary = engine.sweep_seeds(TWO_EPOCHS_OF_5, [1], tmp_path, loader="torchvision", log=quiet, **SMALL)
    result = read_json(tmp_path / "seed1" / "result.json")
    assert len(result["history"]) == 2 and not result["interrupted"] and result["loader"] == "torchvision"
    assert summary["seeds"][0]["seed"] == 1


# --- a fresh run into a folder that holds another ------------------------------------------------


def test_a_fresh_run_keeps_the_older_model_until_its_first_epoch_is_complete(tmp_path, finished_run):
    out = copy_run(finished_run, tmp_path / "run")
    before = tree(out)
    with pytest.raises(Interrupted):
        fit(TWO_EPOCHS_OF_5, seed=4, out=out, log=interrupt_at_epoch_line(1), **SMALL)
    assert (out / "model.pt").read_bytes() == before["model.pt"]
    assert (out / "checkpoint.pt").read_bytes() == before["checkpoint.pt"]


def test_the_kept_model_still_has_its_own_result_beside_it(tmp_path, finished_run):
    """``evaluate model.pt`` rebuilds the model from the result.json beside it: a fresh run that
    stops before its first epoch is complete must not leave another run's result.json there."""
    out = copy_run(finished_run, tmp_path / "run")
    before = tree(out)
    with pytest.raises(Interrupted):
        fit(dataclasses.replace(STEPS[2], epochs=1), out=out, log=interrupt_at_epoch_line(1), **SMALL)
    assert (out / "model.pt").read_bytes() == before["model.pt"]
    assert read_json(out / "result.json") == json.loads(before["result.json"])
    assert engine.evaluate_checkpoint(out / "model.pt", device="cpu")[2].step == 5


def test_after_its_first_epoch_a_fresh_run_replaces_the_older_one(tmp_path, finished_run):
    out = copy_run(finished_run, tmp_path / "run")
    with pytest.raises(Interrupted):
        fit(TWO_EPOCHS_OF_5, seed=4, out=out, log=interrupt_at_epoch_line(2), **SMALL)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt",
        "result.json",
    ]  # the older weights are gone
    result = read_json(out / "result.json")
    assert result["seed"] == 4 and result["interrupted"] is True
    assert checkpoints.load_checkpoint(out / "checkpoint.pt")["history"] == result["history"]


def test_a_finished_run_may_be_trained_over(tmp_path, finished_run):
    out = copy_run(finished_run, tmp_path / "run")
    old_model = torch.load(out / "model.pt", weights_only=True)
    run = fit(dataclasses.replace(STEPS[5], epochs=1), seed=9, out=out, log=quiet, **SMALL)
    assert read_json(out / "result.json")["seed"] == 9
    assert same_weights(torch.load(out / "model.pt", weights_only=True), run.model.state_dict())
    assert not same_weights(torch.load(out / "model.pt", weights_only=True), old_model)


def test_a_fresh_run_refuses_a_folder_holding_an_unfinished_run(tmp_path, unfinished_run):
    out = copy_run(unfinished_run, tmp_path / "run")
    before = tree(out)
    for recipe in (dataclasses.replace(STEPS[5], epochs=2), dataclasses.replace(STEPS[1], epochs=1)):
        with pytest.raises(MnistLiteError) as caught:
            fit(recipe, out=out, log=quiet, **SMALL)
        assert (
            str(caught.value)
            == f"{out}: holds an unfinished run; resume it (--resume {out}), or choose another --out"
        )
    assert tree(out) == before


# --- failures -------------------------------------------------------------------------------------


def full_disk_for(monkeypatch, name, *, after=0):
    """Writes of files called ``name`` fail as on a full disk, after ``after`` that succeed."""
    real, done = results.os.replace, []

    def replace(src, dst):
        if os.path.basename(dst) == name:
            done.append(dst)
            if len(done) > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(results.os, "replace", replace)


def test_a_write_error_during_fit_is_recorded_in_result_json(tmp_path, monkeypatch):
    full_disk_for(monkeypatch, "checkpoint.pt", after=1)  # epoch 1 is saved, epoch 2's checkpoint is not
    with pytest.raises(MnistLiteError) as caught:
        fit(TWO_EPOCHS_OF_5, out=tmp_path, log=quiet, **SMALL)
    message = str(caught.value)
    path = tmp_path / "checkpoint.pt"
    assert message == f"{path}: could not write it (No space left on device); the old file is unchanged"
    result = read_json(tmp_path / "result.json")
    assert result["error"] == message and result["interrupted"] is False
    assert [row["epoch"] for row in result["history"]] == [1]  # epoch 2 has no checkpoint: not complete
    assert checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")["history"] == result["history"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt",
        "result.json",
    ]  # no temporary files


def test_when_nothing_can_be_written_the_first_error_is_raised(tmp_path, monkeypatch):
    full_disk_for(monkeypatch, "checkpoint.pt")
    full_disk_for(monkeypatch, "result.json")
    with pytest.raises(
        MnistLiteError, match=r"checkpoint\.pt: could not write it \(No space left on device\)"
    ):
        fit(TWO_EPOCHS_OF_5, out=tmp_path, log=quiet, **SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("folder", ["empty", "finished"])
def test_divergence_in_the_first_epoch_leaves_the_folder_as_it_was(tmp_path, finished_run, folder):
    """Before its first epoch is complete a fresh run has nothing to record: whatever the folder
    held (here nothing, or a finished run) is left as it was."""
    out = copy_run(finished_run, tmp_path / "run") if folder == "finished" else tmp_path / "run"
    before = tree(out) if out.exists() else {}
    recipe = dataclasses.replace(STEPS[2], lr=1e6, epochs=2, batch_size=128)
    with pytest.raises(Diverged) as caught:
        fit(recipe, out=out, log=quiet, train_limit=512, test_limit=256, device="cpu", quiet=True)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("epoch 1, batch ") and "/4: the loss is" in message
    assert message.endswith("the run diverged (lower the learning rate: train --lr, or the recipe's lr)")
    assert caught.value.exit_code == 1
    assert tree(out) == before


def test_make_optimizer_builds_what_the_recipe_names():
    model = STEPS[5].model()
    sgd, _ = make_optimizer(STEPS[5], model, steps_per_epoch=10)
    nesterov, _ = make_optimizer(dataclasses.replace(STEPS[5], optimizer="nesterov"), model, 10)
    adam_recipe = dataclasses.replace(STEPS[5], optimizer="adam", lr=0.01, momentum=0.8)
    adam, _ = make_optimizer(adam_recipe, model, 10)
    assert type(sgd) is type(nesterov) is torch.optim.SGD and type(adam) is torch.optim.Adam
    assert not sgd.defaults["nesterov"] and nesterov.defaults["nesterov"]
    assert sgd.defaults["momentum"] == nesterov.defaults["momentum"] == STEPS[5].momentum
    assert adam.defaults["betas"] == (0.8, 0.999) and adam.defaults["lr"] == 0.01
    with pytest.raises(MnistLiteError, match="unknown optimizer 'rmsprop'"):
        make_optimizer(dataclasses.replace(STEPS[5], optimizer="rmsprop"), model, 10)


def rates(recipe, steps_per_epoch: int) -> list[float]:
    """The rate of every batch of ``recipe``'s run, as its optimizer and schedule set it."""
    optimizer, scheduler = make_optimizer(recipe, STEPS[5].model(), steps_per_epoch)
    seen = []
    for _ in range(recipe.epochs * steps_per_epoch):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_a_warm_up_raises_the_rate_linearly_and_keeps_the_milestones():
    """Two epochs of three batches: the factor on the rate climbs from a sixth by equal steps
    and reaches 1 with the first batch after the warm-up; the milestone after epoch 1 still
    divides by 10 inside it, and after it the step schedule is what it is without one."""
    recipe = dataclasses.replace(STEPS[5], epochs=4, lr=0.3, milestones=(1, 3))
    warmed = rates(dataclasses.replace(recipe, warmup_epochs=2), steps_per_epoch=3)
    factors = [1 / 6 + 5 / 6 * batch / 6 for batch in range(6)]
    assert warmed[:6] == pytest.approx([0.3 * f for f in factors[:3]] + [0.03 * f for f in factors[3:]])
    assert warmed[6:] == pytest.approx(rates(recipe, steps_per_epoch=3)[6:]) == [0.03] * 3 + [0.003] * 3
    constant = dataclasses.replace(recipe, schedule="constant", milestones=(), warmup_epochs=1)
    assert rates(constant, steps_per_epoch=2) == pytest.approx([0.15, 0.225] + [0.3] * 6)
    with pytest.raises(MnistLiteError, match="warmup_epochs with the onecycle schedule"):
        make_optimizer(dataclasses.replace(recipe, schedule="onecycle", warmup_epochs=1), STEPS[5].model(), 3)


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
        fit(
            dataclasses.replace(STEPS[2], epochs=3, batch_size=128),
            out=tmp_path,
            log=log,
            train_limit=512,
            test_limit=256,
            device="cpu",
            quiet=True,
        )
    assert str(caught.value).startswith("epoch 2, batch ")
    result = read_json(tmp_path / "result.json")
    assert result["error"] == str(caught.value)
    assert [row["epoch"] for row in result["history"]] == [1] and result["best_test_acc"] > 0
    assert checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")["history"] == result["history"]


# --- the weight average ---------------------------------------------------------------------------


def test_make_averaged_is_an_exponential_moving_average_of_weights_and_buffers():
    assert make_averaged(STEPS[5], STEPS[5].model()) is None  # ema_decay 0: no average
    torch.manual_seed(0)
    model = STEPS[5].model()
    averaged = make_averaged(dataclasses.replace(STEPS[5], ema_decay=0.75), model)
    start = {k: v.clone() for k, v in averaged.module.state_dict().items()}
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(1.0)
    averaged.update_parameters(model)  # the first update copies
    averaged.update_parameters(model)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            # copied (start + 1), then 0.75 * (start + 1) + 0.25 * (start + 1): still start + 1
            assert torch.allclose(averaged.module.state_dict()[name], start[name] + 1), name
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(4.0)
    averaged.update_parameters(model)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():  # BatchNorm's running statistics included
            assert torch.allclose(averaged.module.state_dict()[name], start[name] + 2), name


def test_with_ema_the_average_is_what_is_evaluated_and_kept(tmp_path):
    unaveraged = dataclasses.replace(STEPS[5], epochs=1, batch_size=64)  # 4 steps: the average lags
    averaged = dataclasses.replace(unaveraged, ema_decay=0.9)
    raw = fit(unaveraged, seed=3, log=quiet, **SMALL)
    run = fit(averaged, seed=3, out=tmp_path, log=quiet, **SMALL)
    assert not same_weights(run.model.state_dict(), raw.model.state_dict())  # the same training, averaged
    assert same_weights(torch.load(tmp_path / "model.pt", weights_only=True), run.model.state_dict())
    _, test_loader = make_loaders("fast", 128, torch.device("cpu"), train_limit=1, test_limit=256)
    scores = engine.evaluate(run.model, test_loader, averaged.test_time_shift)
    row = run.history.epochs[0]
    assert (round(scores.loss, 5), round(scores.accuracy, 3)) == (row["test_loss"], row["test_acc"])


# --- seeds ----------------------------------------------------------------------------------------


def test_seed_sweep_skips_finished_seeds_and_summarises(tmp_path, capsys):
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1)
    summary = engine.sweep_seeds(recipe, [1, 2], tmp_path, **SMALL)
    assert [row["seed"] for row in summary["seeds"]] == [1, 2]
    assert read_json(tmp_path / "summary.json") == summary
    finals = [read_json(tmp_path / f"seed{s}" / "result.json")["final_test_acc"] for s in (1, 2)]
    assert summary["final_test_acc_mean"] == pytest.approx(sum(finals) / 2, abs=1e-3)
    assert summary["worst_last5_min_test_acc"] == min(finals)
    capsys.readouterr()
    assert engine.sweep_seeds(recipe, [1, 2], tmp_path, **SMALL) == summary
    assert capsys.readouterr().out.count("already done, skipped") == 2


def test_seed_sweep_counts_a_finished_seed_without_its_checkpoint(tmp_path, capsys):
    """As in a clone, where results/ keeps result.json and model.pt but no checkpoint: the seed is
    done, with this recipe and precision, and is skipped."""
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1)
    summary = engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **SMALL)
    (tmp_path / "seed1" / "checkpoint.pt").unlink()
    before = tree(tmp_path / "seed1")
    capsys.readouterr()
    assert engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **SMALL) == summary
    assert capsys.readouterr().out.startswith("seed 1: already done, skipped")
    assert tree(tmp_path / "seed1") == before


def test_evaluate_checkpoint_of_a_fit(tmp_path):
    run = fit(TWO_EPOCHS_OF_5, seed=2, out=tmp_path, log=quiet, **SMALL)
    from_model = engine.evaluate_checkpoint(tmp_path / "model.pt", device="cpu")
    _, images, recipe = from_model
    assert images == 10000 and recipe == TWO_EPOCHS_OF_5
    _, test_loader = make_loaders("fast", 1000, torch.device("cpu"), test_limit=256, train_limit=1)
    scores = engine.evaluate(run.model, test_loader, TWO_EPOCHS_OF_5.test_time_shift)
    row = run.history.epochs[-1]
    assert (round(scores.accuracy, 3), round(scores.plain_accuracy, 3)) == (
        row["test_acc"],
        row["plain_test_acc"],
    )
    assert engine.evaluate_checkpoint(tmp_path / "checkpoint.pt", step=5, device="cpu") == from_model


def test_evaluate_checkpoint_of_a_custom_architecture(tmp_path):
    """The recipe comes from the checkpoint (or the result.json beside model.pt): a model that is
    not its step's default architecture still loads."""
    recipe = every_field_changed()  # two epochs, the second without augmentation
    fit(recipe, out=tmp_path, log=quiet, **SMALL)
    by_checkpoint = engine.evaluate_checkpoint(tmp_path / "checkpoint.pt", device="cpu")
    assert by_checkpoint == engine.evaluate_checkpoint(tmp_path / "model.pt", device="cpu")
    with pytest.raises(MnistLiteError, match="does not fit step 5's LiteNet"):
        engine.evaluate_checkpoint(_alone(tmp_path / "model.pt"), step=5, device="cpu")


def _alone(path):
    """``path`` copied into a folder of its own: no result.json beside it to say what it is."""
    target = path.parent / "alone" / path.name
    target.parent.mkdir()
    target.write_bytes(path.read_bytes())
    return target


# --- precision ------------------------------------------------------------------------------------


def test_bfloat16_changes_the_forward_pass_and_is_recorded(tmp_path):
    runs = {
        dtype: fit(TWO_EPOCHS_OF_5, seed=4, dtype=dtype, out=tmp_path / dtype, log=quiet, **SMALL)
        for dtype in ("float32", "bfloat16")
    }
    for dtype, run in runs.items():
        assert run.result["dtype"] == dtype == read_json(tmp_path / dtype / "result.json")["dtype"]
        assert checkpoints.load_checkpoint(tmp_path / dtype / "checkpoint.pt")["settings"]["dtype"] == dtype
        assert all(param.dtype == torch.float32 for param in run.model.parameters())  # autocast, not a cast
    assert without_seconds(runs["float32"].history) != without_seconds(runs["bfloat16"].history)


def test_a_resumed_run_keeps_its_checkpoints_precision(tmp_path, monkeypatch):
    straight = fit(TWO_EPOCHS_OF_5, seed=4, dtype="bfloat16", out=tmp_path / "a", log=quiet, **SMALL)
    with monkeypatch.context() as patch, pytest.raises(Interrupted):
        fit(
            TWO_EPOCHS_OF_5,
            seed=4,
            dtype="bfloat16",
            out=tmp_path / "b",
            log=interrupt_in_second_epoch(patch),
            **SMALL,
        )
    resumed = fit(TWO_EPOCHS_OF_5, out=tmp_path / "b", resume=True, dtype="float32", log=quiet, **SMALL)
    assert resumed.result["dtype"] == "bfloat16"
    assert without_seconds(resumed.history) == without_seconds(straight.history)


def test_an_unknown_dtype_is_refused_before_anything_is_written(tmp_path, finished_run):
    out = copy_run(finished_run, tmp_path / "run")
    before = tree(out)
    with pytest.raises(MnistLiteError, match="dtype 'bf16': expected auto or one of bfloat16, float32"):
        fit(TWO_EPOCHS_OF_5, dtype="bf16", out=out, log=quiet, **SMALL)
    assert tree(out) == before


@pytest.mark.parametrize("stage", ["finished", "interrupted"])
def test_seed_sweep_refuses_a_folder_of_another_precision(tmp_path, monkeypatch, stage):
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=2)
    if stage == "finished":
        engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **SMALL)
        (tmp_path / "seed1" / "checkpoint.pt").unlink()  # as in a clone: results/ keeps no checkpoints
    else:
        with monkeypatch.context() as patch, pytest.raises(Interrupted):
            interrupt_in_second_epoch(patch)
            engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **SMALL)
    before = tree(tmp_path / "seed1")
    with pytest.raises(MnistLiteError, match="seed1: holds a run of another recipe, precision or data"):
        engine.sweep_seeds(recipe, [1], tmp_path, dtype="bfloat16", **SMALL)
    assert tree(tmp_path / "seed1") == before


def test_seed_sweep_refuses_a_folder_of_another_loader_before_training_any_seed(tmp_path):
    """Found only when summing up, after every missing seed had trained, the mismatch would cost
    the whole sweep and leave no summary."""
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1)
    engine.sweep_seeds(recipe, [1], tmp_path, **SMALL)
    before = tree(tmp_path)
    with pytest.raises(MnistLiteError) as caught:
        engine.sweep_seeds(recipe, [2, 1], tmp_path, loader="torchvision", **SMALL)  # seed 2 comes first
    assert str(caught.value) == (
        f"{tmp_path / 'seed1'}: holds a run of another recipe, precision or data (loader, split, image "
        "limits); choose another --out"
    )
    assert tree(tmp_path) == before  # seed 2 was not trained


@pytest.mark.parametrize("checkpoint", ["kept", "removed"])
def test_seed_sweep_refuses_a_seed_without_a_recorded_recipe_in_one_line(tmp_path, checkpoint):
    """A finished seed is judged by its record, which the summary reads, whether or not its
    checkpoint (which still names the recipe) is there too."""
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=1)
    engine.sweep_seeds(recipe, [1], tmp_path, **SMALL)
    if checkpoint == "removed":  # as in a clone: the record is all there is
        (tmp_path / "seed1" / "checkpoint.pt").unlink()
    result = read_json(tmp_path / "seed1" / "result.json")
    del result["recipe"]
    (tmp_path / "seed1" / "result.json").write_text(json.dumps(result))
    with pytest.raises(MnistLiteError, match="seed1: holds a run of another recipe, precision or data"):
        engine.sweep_seeds(recipe, [1], tmp_path, **SMALL)


def test_a_seed_that_diverges_is_named(tmp_path):
    recipe = dataclasses.replace(STEPS[2], lr=1e6, epochs=2, batch_size=128)
    with pytest.raises(Diverged) as caught:
        engine.sweep_seeds(recipe, [3], tmp_path, train_limit=512, test_limit=256, device="cpu", quiet=True)
    assert str(caught.value).startswith("seed 3: epoch 1, batch ") and "\n" not in str(caught.value)


def test_seed_sweep_refuses_a_seed_named_twice(tmp_path):
    with pytest.raises(MnistLiteError, match=r"seeds \[1, 2, 1\]: a seed named more than once"):
        engine.sweep_seeds(TWO_EPOCHS_OF_5, [1, 2, 1], tmp_path, **SMALL)
    assert not any(tmp_path.iterdir())


def test_seed_sweep_refuses_a_checkpoint_with_damaged_settings_in_one_line(tmp_path, monkeypatch):
    recipe = dataclasses.replace(TWO_EPOCHS_OF_5, epochs=2)
    with monkeypatch.context() as patch, pytest.raises(Interrupted):
        interrupt_in_second_epoch(patch)
        engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **SMALL)
    edit_checkpoint(
        tmp_path / "seed1" / "checkpoint.pt", lambda k: k.update(settings={"precision": "float32"})
    )
    before = tree(tmp_path / "seed1")
    with pytest.raises(MnistLiteError, match="seed1/checkpoint.pt: a damaged checkpoint"):
        engine.sweep_seeds(recipe, [1], tmp_path, dtype="float32", **SMALL)
    assert tree(tmp_path / "seed1") == before


def test_a_run_resumes_only_on_the_device_it_started_on(tmp_path, unfinished_run, monkeypatch):
    """A checkpoint from a GPU is not gone on with on the CPU, neither by ``fit`` nor by a sweep,
    which refuses it before any seed trains; nothing in the folders changes."""
    out = copy_run(unfinished_run, tmp_path / "run")
    edit_checkpoint(out / "checkpoint.pt", lambda k: k.update(device="cuda"))
    before = tree(out)
    with pytest.raises(MnistLiteError) as caught:
        fit(dataclasses.replace(STEPS[5], epochs=2), out=out, resume=True, log=quiet, **SMALL)
    assert str(caught.value) == (
        f"{out / 'checkpoint.pt'}: trained on 'cuda', not 'cpu'; a resumed run stays on its device: "
        "resume it on a machine with 'cuda', or choose another --out"
    )
    sweep = tmp_path / "sweep"
    copy_run(out, sweep / "seed2")
    monkeypatch.setattr(
        engine, "fit", lambda *args, **kwargs: pytest.fail("trained before checking every seed")
    )
    with pytest.raises(MnistLiteError, match=r"seed2/checkpoint.pt: trained on 'cuda', not 'cpu'"):
        engine.sweep_seeds(dataclasses.replace(STEPS[5], epochs=2), [1, 2], sweep, **SMALL)
    assert tree(out) == before and sorted(path.name for path in sweep.iterdir()) == ["seed2"]


def test_resume_refuses_a_checkpoint_missing_a_setting_rather_than_guess_it(tmp_path, unfinished_run):
    """A checkpoint whose settings lack the precision must not resume in the default float32: the run
    would go on with other numbers than it started with."""
    out = copy_run(unfinished_run, tmp_path / "run")
    edit_checkpoint(out / "checkpoint.pt", lambda k: k["settings"].pop("dtype"))
    before = tree(out)
    with pytest.raises(MnistLiteError, match=r"checkpoint.pt: a damaged checkpoint \(its settings: fields"):
        fit(
            dataclasses.replace(STEPS[5], epochs=2), out=out, resume=True, log=quiet, device="cpu", quiet=True
        )
    assert tree(out) == before
