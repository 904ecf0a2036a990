"""Training and evaluation: ``train_epoch``, ``evaluate`` and ``fit``, which runs a step's recipe.

``fit`` writes, when given an ``out`` folder, after every epoch: ``checkpoint.pt`` (model,
optimiser, scheduler, RNG state and history, to resume from) and ``result.json``; at the end
``model.pt`` (the state_dict). All writes are atomic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mnist_lite.data import EVAL_BATCH_SIZE, TensorLoader, load_mnist, make_loaders
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.results import History, ensure_writable, load_result, save_torch, seed_summary, write_json
from mnist_lite.steps import STEPS, Recipe

CHECKPOINT_FORMAT = "mnist-lite-checkpoint-1"


class Diverged(MnistLiteError):
    """The loss became NaN or infinite."""


class Interrupted(MnistLiteError):
    """Ctrl-C or SIGTERM stopped the run; the completed epochs are kept."""

    exit_code = 130


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, else Apple's MPS, else the CPU; a named device must exist."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if name == "auto":
        return torch.device(next(kind for kind, ok in available.items() if ok))
    if not available.get(name, False):
        raise MnistLiteError(f"--device {name}: not available on this machine (try --device auto)")
    return torch.device(name)


DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def check_dtype(name: str, device: torch.device) -> None:
    """Refuse, before anything is written, a precision that is unknown or that ``device`` lacks."""
    if name not in DTYPES:
        raise MnistLiteError(f"dtype {name!r}: expected one of {', '.join(DTYPES)}")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise MnistLiteError(f"--dtype bfloat16: {torch.cuda.get_device_name(device)} has no bfloat16; use float32")


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to ``dtype`` on ``device``, or nothing at all for float32."""
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)


def device_name(device: torch.device) -> str:
    """The GPU's name; for a CPU its model, the vector instructions PyTorch uses on it (one
    "AMD EPYC" may have AVX2 only, another AVX-512) and the number of threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple GPU (MPS, {platform.machine()})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{model} ({torch.backends.cpu.get_cpu_capability()}, {threads} thread{'s' if threads > 1 else ''})"


def train_epoch(
    model, loader, optimizer, scheduler=None, *, dtype=torch.float32, epoch=1, quiet=False
) -> tuple[float, float]:
    """One pass over ``loader``, the forward pass in ``dtype``; returns mean loss and accuracy (%).

    Losses and counts stay on the device: the only host synchronisation is at the end of the
    epoch, where a non-finite batch loss is reported by its batch number.
    """
    model.train()
    device = next(model.parameters()).device
    batch_losses = torch.zeros(len(loader), device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for batch, (x, y) in enumerate(tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=quiet)):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
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
            "the run diverged (lower --lr)"
        )
    return loss_sum.item() / seen, 100 * correct.item() / seen


@torch.inference_mode()
def evaluate(model, loader) -> tuple[float, float]:
    """Mean loss and accuracy (%) of ``model`` over ``loader``."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    return loss_sum.item() / seen, 100 * correct.item() / seen


def make_optimizer(recipe: Recipe, model: nn.Module, steps_per_epoch: int):
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
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
        raise MnistLiteError(f"unknown schedule {recipe.schedule!r}: constant, onecycle or step")
    return optimizer, scheduler


@dataclass
class Run:
    """What ``fit`` returns: the trained model, its history and the ``result.json`` contents."""

    model: nn.Module
    history: History
    result: dict


def _load_checkpoint(out: Path, recipe: Recipe) -> dict:
    path = out / "checkpoint.pt"
    if not path.exists():
        raise MnistLiteError(f"{path}: no checkpoint to resume from (train into this --out first)")
    checkpoint = load_checkpoint(path)
    if checkpoint["recipe"]["step"] != recipe.step:
        raise MnistLiteError(f"{path}: a checkpoint of step {checkpoint['recipe']['step']}, not step {recipe.step}")
    if checkpoint["recipe"] != recipe.as_dict():
        raise MnistLiteError(f"{path}: trained with another step-{recipe.step} recipe than this one; start afresh")
    return checkpoint


def load_checkpoint(path) -> dict:
    """A training checkpoint written by ``fit``; a clear error for anything else."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise MnistLiteError(f"{path}: file not found") from None
    except Exception as error:  # noqa: BLE001 - torch.load raises many kinds for a bad file
        raise MnistLiteError(f"{path}: not a PyTorch checkpoint ({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise MnistLiteError(f"{path}: not an mnist-lite training checkpoint")
    return checkpoint


def recipe_from_checkpoint(checkpoint: dict) -> Recipe:
    """The recipe a checkpointed run used, flag overrides included."""
    saved = checkpoint["recipe"]
    return dataclasses.replace(
        STEPS[saved["step"]], epochs=saved["epochs"], lr=saved["lr"], batch_size=saved["batch_size"]
    )


def fit(
    recipe: Recipe,
    *,
    seed: int = 1,
    device: str | torch.device = "auto",
    loader: str = "fast",
    dtype: str = "float32",
    train_limit: int | None = None,
    test_limit: int | None = None,
    data_dir=None,
    out=None,
    resume: bool = False,
    quiet: bool = False,
    log=print,
) -> Run:
    """Train ``recipe`` from scratch, or from ``out/checkpoint.pt`` with ``resume``.

    With a fixed ``seed`` a CPU run repeats exactly, and a resumed run ends with the same
    history as one never interrupted. ``dtype`` (a key of ``DTYPES``) is the precision of the
    forward pass in training, bfloat16 by autocast; weights, updates and evaluation stay float32.
    """
    device = device if isinstance(device, torch.device) else pick_device(device)
    check_dtype(dtype, device)
    out = Path(out) if out is not None else None
    if out is not None:
        ensure_writable(out)
    checkpoint = _load_checkpoint(out, recipe) if resume else None
    if out is not None and not resume:
        (out / "model.pt").unlink(missing_ok=True)  # an older run's weights, not this run's
    if checkpoint:
        seed, loader = checkpoint["seed"], checkpoint["loader"]
        dtype = checkpoint.get("dtype", "float32")  # what runs before the option trained in
        train_limit, test_limit = checkpoint["train_limit"], checkpoint["test_limit"]
    torch.manual_seed(seed)
    train_loader, test_loader = make_loaders(
        loader, recipe.batch_size, device, recipe.augment, data_dir, train_limit, test_limit
    )
    model = recipe.model().to(device)
    optimizer, scheduler = make_optimizer(recipe, model, len(train_loader))
    history = History()
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        history = History(checkpoint["history"])
        torch.set_rng_state(checkpoint["rng"])
        if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
        log(f"resuming {out} after epoch {len(history)}")

    result = {
        "step": recipe.step,
        "name": recipe.slug,
        "title": recipe.title,
        "model": recipe.model.__name__,
        "params": count_parameters(model),
        "seed": seed,
        "device": device.type,
        "device_name": device_name(device),
        "loader": loader,
        "dtype": dtype,
        "epochs": recipe.epochs,
        "train_limit": train_limit,
        "test_limit": test_limit,
        "recipe": recipe.as_dict(),
        "torch_version": torch.__version__,
        "interrupted": False,
        "error": None,
    }

    def record(**status) -> None:
        result.update(status, history=history.epochs, **history.summary())
        if out is not None:
            write_json(out / "result.json", result)

    saved = len(history)  # epochs whose checkpoint is on disk: what a resume starts after
    try:
        for epoch in range(len(history) + 1, recipe.epochs + 1):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]  # the rate of the epoch's first batch
            train_loss, train_acc = train_epoch(
                model, train_loader, optimizer, scheduler, dtype=DTYPES[dtype], epoch=epoch, quiet=quiet
            )
            test_loss, test_acc = evaluate(model, test_loader)
            row = dict(
                epoch=epoch,
                train_loss=round(train_loss, 5),
                train_acc=round(train_acc, 3),
                test_loss=round(test_loss, 5),
                test_acc=round(test_acc, 3),
                lr=lr,
                seconds=round(time.perf_counter() - start, 2),
            )
            history.append(row)
            log(
                f"epoch {epoch:2d}/{recipe.epochs}  train loss {train_loss:.4f} acc {train_acc:6.2f}%  "
                f"test loss {test_loss:.4f} acc {test_acc:6.2f}%  lr {lr:.4g}  {row['seconds']:.1f}s"
            )
            if out is not None:
                save_torch(
                    out / "checkpoint.pt",
                    {
                        "format": CHECKPOINT_FORMAT,
                        "recipe": recipe.as_dict(),
                        "seed": seed,
                        "loader": loader,
                        "dtype": dtype,
                        "train_limit": train_limit,
                        "test_limit": test_limit,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        "history": history.epochs,
                    },
                )
            saved = len(history)
            record()
    except KeyboardInterrupt:
        if out is not None:
            del history.epochs[saved:]  # an epoch without its checkpoint is not complete
        record(interrupted=True)
        hint = f"; resume with --resume {out}" if out is not None else ""
        raise Interrupted(f"interrupted after {len(history)} complete epoch(s){hint}") from None
    except Diverged as error:
        record(error=str(error))
        raise
    record()
    if out is not None:
        save_torch(out / "model.pt", {name: tensor.cpu() for name, tensor in model.state_dict().items()})
    return Run(model, history, result)


def evaluate_checkpoint(path, step=None, device="auto", data_dir=None) -> tuple[float, float, int, int]:
    """Test loss, accuracy, number of test images and step of a saved ``model.pt`` or ``checkpoint.pt``.

    The step comes from ``step``, else from the checkpoint, else from the ``result.json`` beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise MnistLiteError(f"{path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load raises many kinds for a bad file
        raise MnistLiteError(f"{path}: not a PyTorch checkpoint ({type(error).__name__})") from None
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        saved_step = state["recipe"]["step"]
        if step is not None and step != saved_step:
            raise MnistLiteError(f"{path}: a checkpoint of step {saved_step}, not step {step}")
        step, state = saved_step, state["model"]
    if step is None:
        beside = path.parent / "result.json"
        if not beside.exists():
            raise MnistLiteError(f"{path}: cannot tell which step's model this is; pass --step N")
        step = load_result(beside)["step"]
    model = STEPS[step].model()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        # load_state_dict's message is a header line, then one line per mismatch: show the first mismatch
        lines = [line.strip() for line in str(error).strip().splitlines()] or [type(error).__name__]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise MnistLiteError(f"{path}: does not fit step {step}'s {type(model).__name__} ({detail})") from None
    device = pick_device(device) if not isinstance(device, torch.device) else device
    test_loader = TensorLoader(*load_mnist("test", data_dir), batch_size=EVAL_BATCH_SIZE, device=device)
    loss, accuracy = evaluate(model.to(device), test_loader)
    return loss, accuracy, len(test_loader.labels), step


def sweep_seeds(recipe: Recipe, seeds, out, *, dtype="float32", **options) -> dict:
    """Train ``recipe`` once per seed into ``out/seedS``; a seed that finished with this recipe
    and precision is skipped, one that was interrupted is resumed. Writes and returns
    ``out/summary.json``.
    """
    out = Path(out)
    for seed in seeds:
        folder = out / f"seed{seed}"
        resume, done = (folder / "checkpoint.pt").exists(), (folder / "model.pt").exists()
        if resume or done:  # a run to go on with, or to count: only of this recipe and precision
            previous = load_checkpoint(folder / "checkpoint.pt") if resume else load_result(folder)
            if previous["recipe"] != recipe.as_dict() or previous.get("dtype", "float32") != dtype:
                raise MnistLiteError(f"{folder}: holds a run of another recipe or precision; choose another --out")
        if done:
            print(f"seed {seed}: already done, skipped")
            continue
        print(f"seed {seed}: {'resuming' if resume else 'training'} into {folder}")
        try:
            fit(recipe, seed=seed, out=folder, resume=resume, dtype=dtype, **options)
        except Interrupted as error:
            raise Interrupted(f"seed {seed}: {str(error).split(';')[0]}; run the same seeds command again to go on") from None
    summary = seed_summary([load_result(out / f"seed{seed}") for seed in seeds])
    write_json(out / "summary.json", summary)
    return summary
