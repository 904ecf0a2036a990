"""Shared helpers and fixtures: the repository root, copies of the real MNIST files, small real
runs to start from, hostile files, and a real CLI subprocess."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# One intra-op thread unless the caller says otherwise: on a small machine that is busy with other
# work, OpenMP's spinning threads make a 2-thread torch ~20x slower than a 1-thread one. Set before
# torch is imported so that every subprocess (CLI, notebook kernels) inherits it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
TINY = dict(train_limit=256, test_limit=256, device="cpu", quiet=True)  # what the shared runs train on


def load_tool(name: str):
    """``tools/NAME.py`` as a module (the tools are scripts, not a package; they import each
    other as a script run from tools/ would)."""
    if str(REPO / "tools") not in sys.path:
        sys.path.insert(0, str(REPO / "tools"))
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def paired_check_record(seed: int, starts: dict[str, float], trained=None, **fields) -> dict:
    """A record of a paired check (tools/paired.py) that ``trained`` a recipe (round 4's recipe of
    step 5 if none) on the validation split, whose score each way rises by 0.01 an epoch from that
    way's value in ``starts``; ``fields`` add the tool's own fields or replace common ones."""
    from mnist_lite.steps import ROUND4_PLAIN

    recipe = trained or ROUND4_PLAIN
    history = [
        {"epoch": epoch, **{way: start + epoch / 100 for way, start in starts.items()}}
        for epoch in range(1, recipe.epochs + 1)
    ]
    record = {
        "seed": seed,
        "recipe": recipe.as_dict(),
        "train_limit": None,
        "eval_split": "validation",
        "dtype": "float32",
        "device_name": "a CPU (AVX512, 1 thread)",
        "torch_version": "2.3.0",
        "history": history,
    }
    return record | fields


def read_json(path):
    return json.loads(Path(path).read_text())


def environment() -> dict:
    """A copy of this process's environment without ``MNIST_LITE_DATA``: a subprocess reads the
    checkout's data/ (or its ``--data-dir``) whatever the shell that started the tests had set."""
    return {key: value for key, value in os.environ.items() if key != "MNIST_LITE_DATA"}


def assert_clean_error(proc, code, *fragments):
    """Exit ``code``; stderr's last line is the error, names what it is about, and has no traceback.

    Exit 2 is argparse's: a usage line, then ``prog: error: ...``; any other code: exactly one
    line on stderr, ``error: ...``.
    """
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


def quiet(_line):
    """A ``log`` for ``fit`` that prints nothing."""


def interrupt_at_epoch_line(epoch: int):
    """A ``log`` for ``fit`` that stops the run (Ctrl-C) while epoch ``epoch``'s line is printed,
    which comes before that epoch's checkpoint is saved: ``epoch - 1`` epochs are complete."""

    def log(line):
        if line.startswith(f"epoch {epoch:2d}/"):
            raise KeyboardInterrupt

    return log


class _Payload:
    """Unpickling this creates ``marker``: the stand-in for any code a hostile file would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def crafted_checkpoint(path, marker) -> Path:
    """A file that looks like an mnist-lite checkpoint (format tag, plausible keys) and whose
    unpickling would create ``marker``: loading it the unsafe way runs the payload (checked
    here on a twin file, so that asserting the marker's absence can fail)."""
    from mnist_lite import checkpoints
    from mnist_lite.steps import STEPS

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    twin = path.with_name(path.name + ".twin")
    twin_marker = path.with_name(path.name + ".twin-ran")
    for target, flag in ((twin, twin_marker), (path, Path(marker))):
        payload = {
            "format": checkpoints.FORMAT,
            "recipe": STEPS[5].as_dict(),
            "history": [],
            "model": _Payload(flag),
        }
        torch.save(payload, target)
    torch.load(twin, weights_only=False)
    assert twin_marker.exists(), "the crafted payload does not run even when loaded unsafely"
    twin.unlink()
    twin_marker.unlink()
    return path


def every_field_changed():
    """Step 5's recipe with every value a run trains with changed, architecture included; each
    differs from step 5's (checked here), so a round trip that drops one cannot pass."""
    from mnist_lite.config import Augment, Lite
    from mnist_lite.steps import STEPS

    base = STEPS[5]
    recipe = dataclasses.replace(
        base,
        model=Lite(
            full_resolution=(6,),
            padding=0,
            transition=4,
            low_resolution=(8, 10),
            second_pool=1,
            # step 5 dilates its last convolution, and this net is too small for a second one: the
            # round trip of STEPS[5] itself (test_steps) shows that ``dilated`` is recorded
            dilated=0,
            separable=True,
            batch_norm=False,
            dropout=0.05,
            activation="silu",
        ),
        epochs=2,
        batch_size=64,
        lr=0.03,
        momentum=0.8,
        weight_decay=1e-4,
        optimizer="nesterov",
        # not step 5's "step", and not "onecycle", which has a warm-up of its own
        schedule="constant",
        milestones=(1,),
        warmup_epochs=1,
        augment=Augment(degrees=5.0, translate=0.05, scale=0.05, elastic_alpha=20.0, elastic_sigma=3.0),
        clean_epochs=1,
        label_smoothing=0.1,
        ema_decay=0.9,
        test_time_shift=2,
    )
    texts = {"step", "slug", "title", "target_template"}
    same = [
        f.name
        for f in dataclasses.fields(recipe)
        if f.name not in texts and getattr(recipe, f.name) == getattr(base, f.name)
    ]
    assert not same, f"fields left as step 5's: {same}"
    for field in dataclasses.fields(base.model):
        assert getattr(recipe.model, field.name) != getattr(base.model, field.name), field.name
    for field in dataclasses.fields(base.augment):
        assert getattr(recipe.augment, field.name) != getattr(base.augment, field.name), field.name
    return recipe


def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (links not followed, caches skipped): relative path -> bytes."""
    files = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(folder))] = path.read_bytes()
    return files


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _no_data_override(monkeypatch):
    """Tests read the repository's data/ unless they point elsewhere themselves."""
    monkeypatch.delenv("MNIST_LITE_DATA", raising=False)


@pytest.fixture
def data_copy(tmp_path):
    """``data_copy(names=None, folder="data")``: a fresh folder holding copies of the shipped
    ``.gz`` files (all four, or those named), to break one of them in a test."""

    def make(names=None, folder="data") -> Path:
        target = tmp_path / folder
        target.mkdir()
        for path in sorted(DATA.glob("*.gz")):
            if names is None or path.name in names:
                shutil.copy(path, target / path.name)
        return target

    return make


def _run_cli(*args, cwd, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_lite", *map(str, args)],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def run_cli(tmp_path_factory):
    """``run_cli(*args, cwd=None, timeout=300)``: ``python -m mnist_lite ARGS`` as a real subprocess
    (in a scratch folder unless ``cwd`` is given), returning the ``CompletedProcess``."""
    scratch = tmp_path_factory.mktemp("cwd")

    def run(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
        return _run_cli(*args, cwd=cwd or scratch, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished real run of step 5 (one epoch of 256 images): checkpoint.pt, result.json and
    model.pt. Shared: copy it (``copy_run``) before changing anything in it."""
    from mnist_lite.engine import fit
    from mnist_lite.steps import STEPS

    out = tmp_path_factory.mktemp("finished") / "run"
    fit(dataclasses.replace(STEPS[5], epochs=1), seed=1, out=out, log=quiet, **TINY)
    return out


@pytest.fixture(scope="session")
def unfinished_run(tmp_path_factory) -> Path:
    """A real run of step 5 stopped after epoch 1 of 2: checkpoint.pt and result.json, no model.pt.
    Shared: copy it (``copy_run``) before changing anything in it."""
    from mnist_lite.engine import Interrupted, fit
    from mnist_lite.steps import STEPS

    out = tmp_path_factory.mktemp("unfinished") / "run"
    with pytest.raises(Interrupted):
        fit(dataclasses.replace(STEPS[5], epochs=2), seed=1, out=out, log=interrupt_at_epoch_line(2), **TINY)
    assert sorted(path.name for path in out.iterdir()) == ["checkpoint.pt", "result.json"]
    return out


def copy_run(run: Path, target) -> Path:
    """A private copy of a shared run folder at ``target``."""
    shutil.copytree(run, target)
    return Path(target)


def edit_checkpoint(path, change) -> None:
    """Load ``path``, apply ``change(checkpoint)`` and save it back: a damaged or foreign checkpoint."""
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, path)


def seed_run(seed, final, last5_min, dtype="float32"):
    return {
        "step": 5,
        "model": "LiteNet",
        "params": 7578,
        "epochs": 15,
        "dtype": dtype,
        "device_name": "a CPU",
        "seed": seed,
        "recipe": {"step": 5, "lr": 0.1},
        "best_test_acc": final + 0.05,
        "final_test_acc": final,
        "last5_test_acc": [last5_min, final],
        "last5_min_test_acc": last5_min,
    }
