"""Training and evaluation: ``train_epoch``, ``evaluate`` and ``fit``, which runs a step's recipe.

``fit`` writes, when given an ``out`` folder, after every epoch: ``checkpoint.pt`` (model,
optimiser, scheduler, RNG state and history, to resume from; see ``checkpoints``) and
``result.json``; at the end ``model.pt`` (the state_dict). All writes are atomic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mnist_lite import checkpoints
from mnist_lite.config import MAX_SEED
from mnist_lite.data import (
    EVAL_BATCH_SIZE,
    EVAL_SPLITS,
    LOADERS,
    TensorLoader,
    load_mnist,
    make_loaders,
    shifted_copies,
    without_augmentation,
)
from mnist_lite.device import DTYPES, autocast, device_name, pick_device, resolve_dtype
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.progress import progress
from mnist_lite.results import (
    History,
    ensure_writable,
    load_result,
    run_kind,
    save_torch,
    seed_summary,
    write_json,
)
from mnist_lite.steps import OPTIMIZERS, SCHEDULES, STEPS, Recipe


class Diverged(MnistLiteError):
    """The loss became NaN or infinite."""


class Interrupted(MnistLiteError):
    """Ctrl-C or SIGTERM stopped the run; the completed epochs are kept."""

    exit_code = 130


def train_epoch(
    model,
    loader,
    optimizer,
    scheduler=None,
    *,
    averaged=None,
    dtype=torch.float32,
    label_smoothing=0.0,
    epoch=1,
    quiet=False,
) -> tuple[float, float]:
    """One pass over ``loader``, the forward pass in ``dtype``; returns mean loss and accuracy (%).
    ``averaged`` (see ``make_averaged``), when given, takes in the weights after every step.

    Losses and counts stay on the device: the only host synchronisation is at the end of the
    epoch, where a non-finite batch loss is reported by its batch number.
    """
    model.train()
    device = next(model.parameters()).device
    batch_losses = torch.zeros(len(loader), device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for batch, (x, y) in enumerate(progress(loader, desc=f"epoch {epoch}", disable=quiet)):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if averaged is not None:
            averaged.update_parameters(model)
        loss = loss.detach()
        batch_losses[batch] = loss
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    finite = torch.isfinite(batch_losses)
    if not finite.all():
        bad = int((~finite).nonzero()[0])
        raise Diverged(
            f"epoch {epoch}, batch {bad + 1}/{len(loader)}: the loss is {batch_losses[bad].item()}; "
            "the run diverged (lower the learning rate: train --lr, or the recipe's lr)"
        )
    return loss_sum.item() / seen, 100 * correct.item() / seen


class Scores(NamedTuple):
    """What ``evaluate`` measures: the loss and accuracy (%) of the recipe's way of classifying,
    and the accuracy of each image classified as it is (the same, without test-time shifts)."""

    loss: float
    accuracy: float
    plain_accuracy: float


def log_probabilities(model, x, test_time_shift: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The log class probabilities ``model`` gives the batch ``x``, the way a recipe with
    ``test_time_shift`` scores: with a shift, the log of the mean probabilities over each image
    and its four shifted copies (``data.shifted_copies``); and those of the images alone."""
    views = shifted_copies(x, test_time_shift) if test_time_shift else [x]  # views[0] is x
    per_view = torch.stack([F.log_softmax(model(view), 1) for view in views])
    return torch.logsumexp(per_view, 0) - math.log(len(views)), per_view[0]  # log-mean-exp: no underflow


@torch.inference_mode()
def evaluate(model, loader, test_time_shift: int = 0) -> Scores:
    """``model``'s scores over ``loader``, each image classified the way ``log_probabilities``
    says; the loss is the cross-entropy of those probabilities."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    plain_correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        scored, plain = log_probabilities(model, x, test_time_shift)
        loss_sum += F.nll_loss(scored, y, reduction="sum")
        correct += (scored.argmax(1) == y).sum()
        plain_correct += (plain.argmax(1) == y).sum()
        seen += len(y)
    return Scores(loss_sum.item() / seen, 100 * correct.item() / seen, 100 * plain_correct.item() / seen)


def make_optimizer(recipe: Recipe, model: nn.Module, steps_per_epoch: int):
    if recipe.warmup_epochs and recipe.schedule == "onecycle":
        raise MnistLiteError("warmup_epochs with the onecycle schedule, which has its own warm-up")
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(
            model.parameters(), lr=recipe.lr, betas=(recipe.momentum, 0.999), weight_decay=recipe.weight_decay
        )
    elif recipe.optimizer in ("sgd", "nesterov"):
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            nesterov=recipe.optimizer == "nesterov",
        )
    else:
        raise MnistLiteError(f"unknown optimizer {recipe.optimizer!r}: one of {', '.join(OPTIMIZERS)}")
    # schedulers step once per batch, so every milestone is counted in batches
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch
        )
    elif recipe.schedule == "step":
        milestones = [epoch * steps_per_epoch for epoch in recipe.milestones]
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    elif recipe.schedule == "constant":
        scheduler = None
    else:
        raise MnistLiteError(f"unknown schedule {recipe.schedule!r}: {', '.join(SCHEDULES)}")
    if recipe.warmup_epochs:
        # from 1/n of the rate in the first batch to all of it after n batches; chained, the two
        # factors multiply, so a milestone inside the warm-up still divides the rate by 10
        warmup_steps = recipe.warmup_epochs * steps_per_epoch
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, 1 / warmup_steps, total_iters=warmup_steps)
        scheduler = torch.optim.lr_scheduler.ChainedScheduler(
            [warmup] + ([scheduler] if scheduler is not None else []), optimizer=optimizer
        )
    return optimizer, scheduler


def make_averaged(recipe: Recipe, model: nn.Module):
    """The exponential moving average of ``model``'s weights and BatchNorm statistics that the
    recipe asks for (``ema_decay``), or None."""
    if not recipe.ema_decay:
        return None
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True
    )


@dataclass(frozen=True)
class Settings:
    """What fixes a run's numbers besides its recipe; recorded in ``result.json`` and checkpoints,
    so that a resumed run goes on with exactly these."""

    seed: int = 1
    loader: str = "fast"  # a key of data.LOADERS
    dtype: str = "float32"  # the forward pass's precision, a key of DTYPES (never "auto" here)
    train_limit: int | None = None  # train on the first N images only
    test_limit: int | None = None  # evaluate on the first N images only
    eval_split: str = "test"  # or "validation": 10,000 images held out of the training set

    def __post_init__(self):
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise MnistLiteError(f"seed {self.seed!r}: expected a whole number from 0 to {MAX_SEED}")
        for name, limit in (("train limit", self.train_limit), ("test limit", self.test_limit)):
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                raise MnistLiteError(f"{name} {limit!r}: expected none or a whole number of at least 1")
        for name, value, allowed in (
            ("loader", self.loader, LOADERS),
            ("dtype", self.dtype, DTYPES),
            ("eval split", self.eval_split, EVAL_SPLITS),
        ):
            if value not in allowed:
                raise MnistLiteError(f"{name} {value!r}: expected one of {', '.join(allowed)}")


@dataclass
class Run:
    """What ``fit`` returns: the trained model, its history and the ``result.json`` contents."""

    model: nn.Module
    history: History
    result: dict


@dataclass
class Trainer:
    """What a checkpoint saves and a resume restores besides the history: the model, the average
    of its weights the recipe may keep, the optimiser and the schedule."""

    model: nn.Module
    averaged: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: object | None

    @property
    def kept(self) -> nn.Module:
        """What is evaluated, saved as model.pt and returned: the average if there is one."""
        return self.averaged.module if self.averaged is not None else self.model


def recipe_from_checkpoint(checkpoint: dict, path) -> Recipe:
    """The recipe a checkpointed run used, architecture and flag overrides included."""
    try:
        return Recipe.from_dict(checkpoint["recipe"])
    except (KeyError, TypeError, ValueError) as error:
        raise MnistLiteError(
            f"{path}: a recipe this version cannot read ({type(error).__name__}: {error})"
        ) from None


def _resumable(out: Path, recipe: Recipe, device: torch.device) -> dict:
    path = out / "checkpoint.pt"
    if not path.exists():
        raise MnistLiteError(f"{path}: no checkpoint to resume from (train into this --out first)")
    checkpoint = checkpoints.load_checkpoint(path)
    _check_same_device(checkpoint, device, path)
    if checkpoint["recipe"].get("step") != recipe.step:
        raise MnistLiteError(
            f"{path}: a checkpoint of step {checkpoint['recipe'].get('step')}, not step {recipe.step}"
        )
    if checkpoint["recipe"] != recipe.as_dict():
        raise MnistLiteError(
            f"{path}: trained with another step-{recipe.step} recipe than this one; start afresh"
        )
    if not checkpoints.resumable(checkpoint["settings"]):
        raise MnistLiteError(
            f"{path}: a run with --loader torchvision cannot be resumed exactly; train afresh"
        )
    return checkpoint


def _check_same_device(checkpoint: dict, device: torch.device, path: Path) -> None:
    """A resumed run stays on the device it started on: elsewhere its numerics and random streams
    differ, so it would not end as the run never interrupted, and its record would name one device
    for epochs trained on two."""
    if checkpoint["device"] != device.type:
        raise MnistLiteError(
            f"{path}: trained on {checkpoint['device']!r}, not {device.type!r}; a resumed run stays on "
            f"its device: resume it on a machine with {checkpoint['device']!r}, or choose another --out"
        )


def _settings_of(checkpoint: dict, path: Path) -> Settings:
    """The settings a checkpoint recorded, every one of them: a default must not stand in for a
    setting that is missing, or a resumed run would go on with other numbers than it started with."""
    recorded, expected = checkpoint["settings"], {field.name for field in dataclasses.fields(Settings)}
    try:
        if set(recorded) != expected:
            raise TypeError(f"fields {sorted(recorded)}, expected {sorted(expected)}")
        return Settings(**recorded)
    except (TypeError, MnistLiteError) as error:
        raise MnistLiteError(f"{path}: a damaged checkpoint (its settings: {error}); train afresh") from None


def _restore(checkpoint: dict, trainer: Trainer, device: torch.device, path: Path) -> History:
    """Load a checkpoint's states into the fresh objects; its history is returned."""
    try:
        trainer.model.load_state_dict(checkpoint["model"])
        if trainer.averaged is not None:
            trainer.averaged.load_state_dict(checkpoint["averaged"])
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        if trainer.scheduler is not None:
            trainer.scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        if device.type == "cuda" and checkpoint["cuda_rng"] is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        raise MnistLiteError(
            f"{path}: its weights or optimiser state do not fit this recipe ({first_line(error)})"
        ) from None
    return History(checkpoint["history"])


def first_line(error: Exception) -> str:
    """The informative line of an exception: load_state_dict puts a header line before the mismatches."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [
        type(error).__name__
    ]
    return lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]


def fit(
    recipe: Recipe,
    *,
    seed: int = 1,
    device: str | torch.device = "auto",
    loader: str = "fast",
    dtype: str = "float32",
    train_limit: int | None = None,
    test_limit: int | None = None,
    eval_split: str = "test",
    data_dir=None,
    out=None,
    resume: bool = False,
    quiet: bool = False,
    log=print,
) -> Run:
    """Train ``recipe`` from scratch, or from ``out/checkpoint.pt`` with ``resume``.

    With a fixed ``seed`` a run on the same CPU with the ``fast`` loader repeats exactly, and a resumed run
    ends with the same history as one never interrupted (on a CPU or CUDA; on Apple's MPS the
    checkpoint does not hold the device's random state); a run with the ``torchvision`` loader
    is not resumable (its workers' seeds are not part of the checkpoint), and CUDA repeats only
    approximately (cuDNN and GAP's backward pass are not deterministic). ``dtype`` is the
    precision of the forward pass in training (float32, bfloat16, or "auto": bfloat16 where the
    device has it natively); weights, updates and evaluation stay float32. A fresh run keeps an older run's
    files in ``out`` until its own first epoch is complete, and refuses an unfinished one.
    """
    device = pick_device(device)
    if resume and out is None:
        raise ValueError("resume=True needs out, the folder that holds checkpoint.pt")
    out = Path(out) if out is not None else None
    checkpoint = _resumable(out, recipe, device) if resume else None
    if checkpoint:
        settings = _settings_of(checkpoint, out / "checkpoint.pt")
    else:
        settings = Settings(seed, loader, resolve_dtype(dtype, device), train_limit, test_limit, eval_split)
    if out is not None and not resume:
        _check_fresh(out)
    torch.manual_seed(settings.seed)
    train_loader, eval_loader = make_loaders(
        settings.loader,
        recipe.batch_size,
        device,
        recipe.augment,
        data_dir,
        train_limit=settings.train_limit,
        test_limit=settings.test_limit,
        eval_split=settings.eval_split,
    )
    clean_loader = without_augmentation(train_loader, device) if recipe.clean_epochs else train_loader
    model = recipe.model().to(device)
    trainer = Trainer(model, make_averaged(recipe, model), *make_optimizer(recipe, model, len(train_loader)))
    history = _restore(checkpoint, trainer, device, out / "checkpoint.pt") if checkpoint else History()
    if checkpoint:
        log(f"resuming {out} after epoch {len(history)}")
    result = _run_record(recipe, settings, model, device)

    def record(**status) -> None:
        result.update(status, history=history.epochs, **history.summary())
        if out is not None and (resume or saved):  # before its first epoch, a fresh run leaves out/ as it was
            write_json(out / "result.json", result)

    def record_stop(**status) -> None:
        """Why the run stopped, in result.json if it can still be written (not on a full disk), with
        the complete epochs only: an epoch whose checkpoint is not on disk is not complete."""
        del history.epochs[saved:]
        with contextlib.suppress(MnistLiteError):
            record(**status)

    saved = len(history)  # epochs whose checkpoint is on disk: what a resume starts after
    if history:  # a resume: its result holds the epochs so far, even if none are left to train
        result.update(history=history.epochs, **history.summary())
    try:
        for epoch in range(len(history) + 1, recipe.epochs + 1):
            loader = clean_loader if epoch > recipe.epochs - recipe.clean_epochs else train_loader
            history.append(run_epoch(recipe, trainer, loader, eval_loader, settings, epoch, quiet))
            log(format_epoch(history.epochs[-1], recipe.epochs))
            if out is not None:
                _save_checkpoint(out / "checkpoint.pt", recipe, settings, device, trainer, history)
                (out / "model.pt").unlink(missing_ok=True)  # an older run's weights, or none
            saved = len(history)
            record()
    except KeyboardInterrupt:
        record_stop(interrupted=True)
        if out is None:
            hint = ""
        elif checkpoints.resumable(dataclasses.asdict(settings)):
            hint = f"; resume with --resume {out}"
        else:
            hint = f"; a run with --loader {settings.loader} cannot be resumed: train afresh"
        raise Interrupted(f"interrupted after {len(history)} complete epoch(s){hint}") from None
    except MnistLiteError as error:  # diverged, or a write failed (a full disk)
        record_stop(error=str(error))
        raise
    if out is not None:
        save_torch(
            out / "model.pt", {name: tensor.cpu() for name, tensor in trainer.kept.state_dict().items()}
        )
    return Run(trainer.kept, history, result)


def _check_fresh(out: Path) -> None:
    """A fresh run may write into ``out``: it can, and it would not overwrite a run to resume."""
    ensure_writable(out)
    if checkpoints.is_unfinished(out / "checkpoint.pt"):
        raise MnistLiteError(
            f"{out}: holds an unfinished run; resume it (--resume {out}), or choose another --out"
        )


def _run_record(recipe: Recipe, settings: Settings, model: nn.Module, device: torch.device) -> dict:
    """The head of ``result.json``: what ran, how and where; ``fit`` adds the history and summary."""
    return {
        "step": recipe.step,
        "name": recipe.slug,
        "title": recipe.title,
        "model": recipe.model.name,
        "params": count_parameters(model),
        **dataclasses.asdict(settings),
        "device": device.type,
        "device_name": device_name(device),
        "epochs": recipe.epochs,
        "recipe": recipe.as_dict(),
        "torch_version": torch.__version__,
        "interrupted": False,
        "error": None,
    }


def _save_checkpoint(
    path, recipe: Recipe, settings: Settings, device, trainer: Trainer, history: History
) -> None:
    checkpoints.save_checkpoint(
        path,
        recipe=recipe.as_dict(),
        settings=dataclasses.asdict(settings),
        device=device.type,
        model=trainer.model.state_dict(),
        averaged=trainer.averaged.state_dict() if trainer.averaged is not None else None,
        optimizer=trainer.optimizer.state_dict(),
        scheduler=trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        history=history.epochs,
    )


def run_epoch(
    recipe: Recipe, trainer: Trainer, train_loader, eval_loader, settings: Settings, epoch: int, quiet
) -> dict:
    """Train one epoch and evaluate what the run keeps (the average, if the recipe has one): the
    history row, rounded as ``result.json`` records it."""
    start = time.perf_counter()
    lr = trainer.optimizer.param_groups[0]["lr"]  # the rate of the epoch's first batch
    train_loss, train_acc = train_epoch(
        trainer.model,
        train_loader,
        trainer.optimizer,
        trainer.scheduler,
        averaged=trainer.averaged,
        dtype=DTYPES[settings.dtype],
        label_smoothing=recipe.label_smoothing,
        epoch=epoch,
        quiet=quiet,
    )
    scores = evaluate(trainer.kept, eval_loader, recipe.test_time_shift)
    return dict(
        epoch=epoch,
        train_loss=round(train_loss, 5),
        train_acc=round(train_acc, 3),
        test_loss=round(scores.loss, 5),
        test_acc=round(scores.accuracy, 3),
        # with test-time shifts, what the images alone score: the same run's accuracy without them
        **({"plain_test_acc": round(scores.plain_accuracy, 3)} if recipe.test_time_shift else {}),
        lr=lr,
        seconds=round(time.perf_counter() - start, 2),
    )


def format_epoch(row: dict, epochs: int) -> str:
    """The per-epoch log line: the recorded figures, at the precision ``result.json`` keeps them."""
    return (
        f"epoch {row['epoch']:2d}/{epochs}  train loss {row['train_loss']:.5f} acc {row['train_acc']:7.3f}%  "
        f"test loss {row['test_loss']:.5f} acc {row['test_acc']:7.3f}%"
        + (f" (plain {row['plain_test_acc']:.3f}%)" if "plain_test_acc" in row else "")
        + f"  lr {row['lr']:.4g}  "
        f"{row['seconds']:.1f}s"
    )


def load_model(path, step=None) -> tuple[nn.Module, Recipe]:
    """The model saved in ``model.pt`` or ``checkpoint.pt`` at ``path``, rebuilt from its recipe,
    and that recipe.

    The recipe comes from the checkpoint, else from the ``result.json`` beside it, else from
    ``step``'s recipe; ``step``, when given, must agree with the first two.
    """
    path = Path(path)
    state = checkpoints.load_state(path)
    recipe = None
    if isinstance(state, dict) and str(state.get("format", "")).startswith("mnist-lite-checkpoint"):
        checkpoint = checkpoints.load_checkpoint(path)
        recipe, state = recipe_from_checkpoint(checkpoint, path), checkpoints.kept_weights(checkpoint)
    elif (path.parent / "result.json").exists():
        recipe = _recipe_beside(path)
    if recipe is not None and step is not None and step != recipe.step:
        raise MnistLiteError(f"{path}: a checkpoint of step {recipe.step}, not step {step}")
    if recipe is None:
        if step is None:
            raise MnistLiteError(f"{path}: cannot tell which step's model this is; pass --step N")
        recipe = STEPS[step]
    model = recipe.model()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError) as error:
        raise MnistLiteError(
            f"{path}: does not fit step {recipe.step}'s {recipe.model.name} ({first_line(error)})"
        ) from None
    return model, recipe


def evaluate_checkpoint(path, step=None, device="auto", data_dir=None) -> tuple[Scores, int, Recipe]:
    """The test scores of the model saved at ``path`` (see ``load_model``), scored the way its
    recipe scores (``test_time_shift``), the number of test images, and the recipe."""
    model, recipe = load_model(path, step)
    device = pick_device(device)
    test_loader = TensorLoader(*load_mnist("test", data_dir), batch_size=EVAL_BATCH_SIZE, device=device)
    scores = evaluate(model.to(device), test_loader, recipe.test_time_shift)
    return scores, len(test_loader.labels), recipe


def _recipe_beside(path: Path) -> Recipe:
    beside = path.parent / "result.json"
    result = load_result(beside)
    if "recipe" not in result:
        raise MnistLiteError(f"{beside}: has no recipe, so the model cannot be rebuilt; pass --step N")
    return recipe_from_checkpoint(result, beside)


def _sweep_resumes(folder: Path, wanted: tuple, device: torch.device) -> bool | None:
    """For one seed of a sweep: None if ``folder`` holds a finished run, else whether to resume the
    run there (an interrupted one that can be resumed: ``checkpoints.resumable``) or train afresh.
    A run there of another kind than ``wanted`` (``results.run_kind``), or one to resume that
    started on another device, is refused."""

    def refuse_another_kind(record: dict) -> None:
        if run_kind(record) != wanted:
            raise MnistLiteError(
                f"{folder}: holds a run of another recipe, precision or data (loader, split, image "
                "limits); choose another --out"
            )

    if (folder / "model.pt").exists():  # finished: its checkpoint, if kept, is not read
        refuse_another_kind(load_result(folder))  # the record the sweep's summary reads
        return None
    path = folder / "checkpoint.pt"
    if not path.exists():
        return False
    checkpoint = checkpoints.load_checkpoint(path)
    recorded = {**dataclasses.asdict(_settings_of(checkpoint, path)), "recipe": checkpoint["recipe"]}
    refuse_another_kind(recorded)
    if not checkpoints.resumable(recorded):
        return False  # trained afresh: its epochs cannot be gone on with
    _check_same_device(checkpoint, device, path)
    return True


def sweep_seeds(recipe: Recipe, seeds, out, *, dtype="float32", device="auto", **options) -> dict:
    """Train ``recipe`` once per seed into ``out/seedS``; a seed that finished with this recipe,
    precision and data (``results.run_kind``) is skipped, one that was interrupted is resumed (or
    trained afresh, if it cannot be resumed: ``checkpoints.resumable``). Writes and returns
    ``out/summary.json``.
    """
    out = Path(out)
    device = pick_device(device)
    dtype = resolve_dtype(dtype, device)
    settings = Settings(
        dtype=dtype, **{f.name: options[f.name] for f in dataclasses.fields(Settings) if f.name in options}
    )
    wanted = run_kind({**dataclasses.asdict(settings), "recipe": recipe.as_dict()})
    seeds = list(seeds)
    if len(set(seeds)) < len(seeds):
        raise MnistLiteError(f"seeds {seeds}: a seed named more than once would be counted more than once")
    # every folder checked before any seed trains, so that a mismatch costs no training
    plan = {seed: _sweep_resumes(out / f"seed{seed}", wanted, device) for seed in seeds}
    for seed, resume in plan.items():
        folder = out / f"seed{seed}"
        if resume is None:
            print(f"seed {seed}: already done, skipped")
            continue
        print(f"seed {seed}: {'resuming' if resume else 'training'} into {folder}")
        try:
            fit(recipe, seed=seed, out=folder, resume=resume, dtype=dtype, device=device, **options)
        except Interrupted as error:
            raise Interrupted(
                f"seed {seed}: {str(error).split(';')[0]}; run the same seeds command again to go on"
            ) from None
        except Diverged as error:
            raise Diverged(f"seed {seed}: {error}") from None
    summary = seed_summary([load_result(out / f"seed{seed}") for seed in seeds])
    write_json(out / "summary.json", summary)
    return summary
