"""Every subcommand against hostile input, as a real subprocess: one table, one test.

Each case builds its files in a folder of its own, beside a private copy of the package's
checkout (``repo/``: the package, pyproject.toml, README.md, docs/, a link to data/ and an empty
results/), and runs ``python -m mnist_lite`` there, so that a command that writes into "its"
repository (report, draw, reproduce) writes into the copy. Every case must:

* exit non-zero with one line on stderr, ``error: ...`` (or argparse's usage and
  ``prog: error: ...`` for exit 2), naming what it is about, and no traceback;
* leave every file that was there before it ran, byte for byte (the copy's README and docs
  included): a failed command loses nothing;
* never run the payload of a crafted pickle (it would create ``ran``), nor execute a notebook.

The cases run concurrently (they are subprocesses) before the first one is checked; each is
checked, and reported, on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import REPO, assert_clean_error, crafted_checkpoint, edit_checkpoint, tree

TRAIN = (
    "--epochs",
    1,
    "--train-limit",
    256,
    "--test-limit",
    256,
    "--quiet",
)  # a case that trains, trains little
GARBAGE = bytes(range(256)) * 8  # no pickle, no zip, no gzip, no JSON, not UTF-8
HUGE = "99999999999999999999999"


class Ctx:
    """A case's folder: ``work/`` for its files, ``repo/`` the checkout it runs in."""

    def __init__(self, root: Path, template: Path, finished: Path, unfinished: Path):
        self.root, self.finished_run, self.unfinished_run = root, finished, unfinished
        self.repo = root / "repo"
        shutil.copytree(template, self.repo, symlinks=True)
        self.work = root / "work"
        self.work.mkdir()
        self.marker = self.work / "ran"  # what a crafted pickle's payload, or a notebook, would create
        self.long = self.work / "/".join(["x" * 99] * 50)  # 5,000 characters, each part a legal name
        self.nodata = self.folder("nodata")  # a --data-dir that stops any case that got as far as training

    def path(self, rel: str) -> Path:
        return self.work / rel

    def file(self, rel: str, content: bytes | str = b"") -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def folder(self, rel: str) -> Path:
        path = self.path(rel)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def finished(self, rel: str, *names: str) -> Path:
        """A copy of a finished run (of ``names`` only, if given)."""
        target = self.folder(rel)
        for path in self.finished_run.iterdir():
            if not names or path.name in names:
                shutil.copy(path, target / path.name)
        return target

    def unfinished(self, rel: str) -> Path:
        target = self.path(rel)
        shutil.copytree(self.unfinished_run, target)
        return target

    def checkpoint(self, rel: str, change) -> Path:
        """An unfinished run whose checkpoint is changed by ``change(checkpoint)``."""
        folder = self.unfinished(rel)
        edit_checkpoint(folder / "checkpoint.pt", change)
        return folder

    def torch_file(self, rel: str, obj) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, path)
        return path

    def truncated(self, rel: str, source: Path) -> Path:
        return self.file(rel, source.read_bytes()[: source.stat().st_size // 2])

    def crafted(self, rel: str) -> Path:
        return crafted_checkpoint(self.path(rel), self.marker)

    def notebook(self, step: int = 1) -> Path:
        """A notebook at the checkout's step-``step`` place whose one cell creates the marker."""
        import nbformat

        from mnist_lite.steps import STEPS

        path = self.repo / STEPS[step].notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        cell = nbformat.v4.new_code_cell(f"open({str(self.marker)!r}, 'w').close()")
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
        return path


@dataclass(frozen=True)
class Case:
    id: str
    code: int  # 2: argparse refuses it; 1: the command does
    build: Callable[[Ctx], tuple]  # ctx -> (argv, fragments the error line must contain)


def case(id, code, build):
    return Case(id, code, build)


def beside(folder: Path, name: str, content) -> Path:
    """``folder`` with ``name`` in it holding ``content`` (a folder of that name for None)."""
    folder.mkdir(parents=True, exist_ok=True)
    if content is None:
        (folder / name).mkdir()
    else:
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def reproduce_with_a_garbage_record(c: Ctx):
    """A notebook to execute, and a results/reproduce.json that cannot be read: refused before
    the notebook runs."""
    c.notebook(1)
    beside(c.repo / "results", "reproduce.json", GARBAGE)
    return ["reproduce", "--steps", 1], ["reproduce.json"]


def reproduce_into_a_results_file(c: Ctx):
    """A notebook to execute, and a file where results/ should be: refused before the notebook runs."""
    c.notebook(1)
    shutil.rmtree(c.repo / "results")
    (c.repo / "results").write_text("a file")
    return ["reproduce", "--steps", 1], ["results"]


def older_format(checkpoint):
    checkpoint["format"] = "mnist-lite-checkpoint-1"


CASES = [
    # --- train ---------------------------------------------------------------------------------
    case(
        "train/missing-data-dir-keeps-the-older-run",
        1,
        lambda c: (
            [
                "train",
                "--step",
                5,
                *TRAIN,
                "--out",
                c.finished("out", "model.pt", "result.json"),
                "--data-dir",
                c.path("nope"),
            ],
            [str(c.path("nope")), "no such folder"],
        ),
    ),
    case(
        "train/data-dir-is-a-file",
        1,
        lambda c: (
            ["train", "--step", 5, *TRAIN, "--out", c.path("out"), "--data-dir", c.file("data.gz", GARBAGE)],
            [str(c.path("data.gz")), "not a folder"],
        ),
    ),
    case(
        "train/out-is-a-file",
        1,
        lambda c: (
            ["train", "--step", 5, *TRAIN, "--out", c.file("out", "a file")],
            [str(c.path("out")), "cannot write here"],
        ),
    ),
    case(
        "train/out-over-long",
        1,
        lambda c: (["train", "--step", 5, *TRAIN, "--out", c.long], ["cannot write here"]),
    ),
    case(
        "train/out-holds-an-unfinished-run",
        1,
        lambda c: (
            ["train", "--step", 5, *TRAIN, "--out", c.unfinished("out")],
            ["holds an unfinished run", "--resume"],
        ),
    ),
    case(
        "train/out-holds-a-crafted-checkpoint",
        1,
        lambda c: (
            [
                "train",
                "--step",
                5,
                *TRAIN,
                "--out",
                c.crafted("out/checkpoint.pt").parent,
                "--data-dir",
                c.nodata,
            ],
            # not a run that can be resumed, so a fresh run may start over it; the data stops this one
            # first, and the file is left as it was, its payload never run (checked for every case)
            ["holds none of the four MNIST files"],
        ),
    ),
    case(
        "train/out-holds-an-older-checkpoint",
        1,
        lambda c: (
            [
                "train",
                "--step",
                5,
                *TRAIN,
                "--out",
                c.checkpoint("out", older_format),
                "--data-dir",
                c.nodata,
            ],
            ["holds none of the four MNIST files"],
        ),
    ),
    case(
        "train/out-result-json-is-a-folder",
        1,
        lambda c: (
            ["train", "--step", 5, *TRAIN, "--out", c.folder("out/result.json").parent],
            ["result.json"],
        ),
    ),
    case("train/epochs-0", 2, lambda c: (["train", "--step", 5, "--epochs", 0], ["--epochs"])),
    case("train/epochs-negative", 2, lambda c: (["train", "--step", 5, "--epochs", -3], ["--epochs"])),
    case("train/seed-negative", 2, lambda c: (["train", "--step", 5, "--seed", -1], ["--seed"])),
    case("train/seed-huge", 2, lambda c: (["train", "--step", 5, "--seed", HUGE], ["--seed"])),
    case("train/lr-nan", 2, lambda c: (["train", "--step", 5, "--lr", "nan"], ["--lr"])),
    case(
        "train/lr-inf",
        2,
        lambda c: (["train", "--step", 5, *TRAIN, "--lr", "inf", "--data-dir", c.nodata], ["--lr"]),
    ),
    case("train/batch-size-0", 2, lambda c: (["train", "--step", 5, "--batch-size", 0], ["--batch-size"])),
    case(
        "train/train-limit-negative",
        2,
        lambda c: (["train", "--step", 5, "--train-limit", -5], ["--train-limit"]),
    ),
    case("train/test-limit-0", 2, lambda c: (["train", "--step", 5, "--test-limit", 0], ["--test-limit"])),
    case("train/step-huge", 2, lambda c: (["train", "--step", HUGE], ["--step"])),
    # --- train --resume --------------------------------------------------------------------------
    case(
        "resume/a-file-not-a-folder",
        1,
        lambda c: (
            ["train", "--resume", c.file("run", "a file"), "--quiet"],
            [str(c.path("run")), "file not found"],
        ),
    ),
    case(
        "resume/empty-checkpoint",
        1,
        lambda c: (
            ["train", "--resume", c.file("run/checkpoint.pt").parent, "--quiet"],
            ["not a PyTorch checkpoint"],
        ),
    ),
    case(
        "resume/checkpoint-is-a-folder",
        1,
        lambda c: (
            ["train", "--resume", c.folder("run/checkpoint.pt").parent, "--quiet"],
            ["checkpoint.pt", "(a folder)"],
        ),
    ),
    case(
        "resume/garbage-checkpoint",
        1,
        lambda c: (
            ["train", "--resume", c.file("run/checkpoint.pt", GARBAGE).parent, "--quiet"],
            ["not a PyTorch checkpoint"],
        ),
    ),
    case(
        "resume/truncated-checkpoint",
        1,
        lambda c: (
            [
                "train",
                "--resume",
                c.truncated("run/checkpoint.pt", c.unfinished_run / "checkpoint.pt").parent,
                "--quiet",
            ],
            ["not a PyTorch checkpoint"],
        ),
    ),
    case(
        "resume/a-list-not-a-checkpoint",
        1,
        lambda c: (
            ["train", "--resume", c.torch_file("run/checkpoint.pt", [1, 2]).parent, "--quiet"],
            ["not an mnist-lite training checkpoint"],
        ),
    ),
    case(
        "resume/older-format",
        1,
        lambda c: (
            ["train", "--resume", c.checkpoint("run", older_format), "--quiet"],
            ["a checkpoint of another mnist-lite version"],
        ),
    ),
    case(
        "resume/crafted-pickle",
        1,
        lambda c: (
            ["train", "--resume", c.crafted("run/checkpoint.pt").parent, "--quiet"],
            ["not a PyTorch checkpoint this project can load"],
        ),
    ),
    case("resume/over-long", 1, lambda c: (["train", "--resume", c.long, "--quiet"], [])),
    case(
        "resume/with-epochs",
        2,
        lambda c: (
            ["train", "--resume", c.unfinished("run"), "--epochs", 3],
            ["--epochs: not with --resume"],
        ),
    ),
    case(
        "resume/torchvision-run",
        1,
        lambda c: (
            [
                "train",
                "--resume",
                c.checkpoint("run", lambda k: k["settings"].update(loader="torchvision")),
                "--quiet",
            ],
            ["--loader torchvision cannot be resumed"],
        ),
    ),
    case(
        "resume/weights-of-another-model",
        1,
        lambda c: (
            [
                "train",
                "--resume",
                c.checkpoint("run", lambda k: k.update(model={"w": torch.zeros(1)})),
                "--quiet",
            ],
            ["do not fit this recipe"],
        ),
    ),
    case(
        "resume/architecture-not-an-object",
        1,
        lambda c: (
            [
                "train",
                "--resume",
                c.checkpoint("run", lambda k: k["recipe"].update(architecture=[8, 16])),
                "--quiet",
            ],
            ["checkpoint"],
        ),
    ),
    case(
        "resume/lr-not-a-number",
        1,
        lambda c: (
            ["train", "--resume", c.checkpoint("run", lambda k: k["recipe"].update(lr="fast")), "--quiet"],
            ["checkpoint"],
        ),
    ),
    case(
        "resume/seed-not-a-number",
        1,
        lambda c: (
            ["train", "--resume", c.checkpoint("run", lambda k: k["settings"].update(seed="1")), "--quiet"],
            ["checkpoint"],
        ),
    ),
    case(
        "resume/history-rows-not-objects",
        1,
        lambda c: (
            ["train", "--resume", c.checkpoint("run", lambda k: k.update(history=[1])), "--quiet"],
            ["checkpoint"],
        ),
    ),
    # --- evaluate ---------------------------------------------------------------------------------
    case(
        "evaluate/missing",
        1,
        lambda c: (["evaluate", c.path("model.pt")], [str(c.path("model.pt")), "file not found"]),
    ),
    case("evaluate/a-folder", 1, lambda c: (["evaluate", c.folder("model.pt")], ["(a folder)"])),
    case(
        "evaluate/truncated-model",
        1,
        lambda c: (
            ["evaluate", c.truncated("m/model.pt", c.finished_run / "model.pt"), "--step", 5],
            ["not a PyTorch checkpoint"],
        ),
    ),
    case(
        "evaluate/a-list-not-weights",
        1,
        lambda c: (["evaluate", c.torch_file("m/model.pt", [1, 2]), "--step", 5], ["does not fit step 5"]),
    ),
    case(
        "evaluate/older-checkpoint",
        1,
        lambda c: (
            ["evaluate", c.checkpoint("run", older_format) / "checkpoint.pt"],
            ["another mnist-lite version"],
        ),
    ),
    case(
        "evaluate/crafted-pickle",
        1,
        lambda c: (
            ["evaluate", c.crafted("m/model.pt"), "--step", 5],
            ["not a PyTorch checkpoint this project can load"],
        ),
    ),
    case("evaluate/over-long", 1, lambda c: (["evaluate", c.long / "model.pt"], [])),
    case(
        "evaluate/result-beside-not-utf8",
        1,
        lambda c: (
            ["evaluate", beside(c.finished("m", "model.pt"), "result.json", GARBAGE) / "model.pt"],
            ["result.json", "not a valid result file"],
        ),
    ),
    case(
        "evaluate/result-beside-a-list",
        1,
        lambda c: (
            ["evaluate", beside(c.finished("m", "model.pt"), "result.json", "[]") / "model.pt"],
            ["result.json"],
        ),
    ),
    case("evaluate/step-9", 2, lambda c: (["evaluate", c.path("model.pt"), "--step", 9], ["--step"])),
    # --- summary ----------------------------------------------------------------------------------
    case("summary/no-step", 2, lambda c: (["summary"], ["--step"])),
    case("summary/step-0", 2, lambda c: (["summary", "--step", 0], ["--step"])),
    case("summary/step-huge", 2, lambda c: (["summary", "--step", HUGE], ["--step"])),
    # --- seeds ------------------------------------------------------------------------------------
    case(
        "seeds/out-is-a-file",
        1,
        lambda c: (
            ["seeds", "--seeds", 1, "--out", c.file("sweep", "a file"), "--data-dir", c.nodata, "--quiet"],
            [str(c.path("sweep")), "cannot write here"],
        ),
    ),
    case(
        "seeds/seed-folder-is-a-file",
        1,
        lambda c: (
            [
                "seeds",
                "--seeds",
                1,
                "--out",
                c.file("sweep/seed1", "a file").parent,
                "--data-dir",
                c.nodata,
                "--quiet",
            ],
            ["seed1"],
        ),
    ),
    case(
        "seeds/result-not-utf8",
        1,
        lambda c: (
            [
                "seeds",
                "--seeds",
                1,
                "--out",
                beside(c.finished("sweep/seed1", "model.pt"), "result.json", GARBAGE).parent,
                "--data-dir",
                c.nodata,
            ],
            ["result.json", "not a valid result file"],
        ),
    ),
    case(
        "seeds/result-a-folder",
        1,
        lambda c: (
            [
                "seeds",
                "--seeds",
                1,
                "--out",
                beside(c.finished("sweep/seed1", "model.pt"), "result.json", None).parent,
                "--data-dir",
                c.nodata,
            ],
            ["result.json"],
        ),
    ),
    case(
        "seeds/crafted-checkpoint",
        1,
        lambda c: (
            [
                "seeds",
                "--seeds",
                1,
                "--out",
                c.crafted("sweep/seed1/checkpoint.pt").parent.parent,
                "--data-dir",
                c.nodata,
            ],
            ["not a PyTorch checkpoint this project can load"],
        ),
    ),
    case(
        "seeds/seed-negative", 2, lambda c: (["seeds", "--seeds=-1", "--out", c.path("sweep")], ["--seeds"])
    ),
    case("seeds/seed-huge", 2, lambda c: (["seeds", "--seeds", HUGE, "--out", c.path("sweep")], ["--seeds"])),
    case(
        "seeds/range-past-the-largest-seed",
        2,
        lambda c: (
            ["seeds", "--seeds", f"0-{HUGE}", "--out", c.path("sweep"), "--data-dir", c.nodata],
            ["--seeds"],
        ),
    ),
    case(
        "seeds/range-of-every-seed",
        2,
        lambda c: (
            ["seeds", "--seeds", f"1-{2**63 - 1}", "--out", c.path("sweep"), "--data-dir", c.nodata],
            ["--seeds"],
        ),
    ),
    case("seeds/step-9", 2, lambda c: (["seeds", "--step", 9], ["--step"])),
    # --- bench ------------------------------------------------------------------------------------
    case(
        "bench/out-a-folder",
        1,
        lambda c: (
            ["bench", "--train-limit", 256, "--out", c.folder("bench.json"), "--data-dir", c.nodata],
            ["a folder"],
        ),
    ),
    case(
        "bench/out-garbage",
        1,
        lambda c: (
            ["bench", "--train-limit", 256, "--out", c.file("bench.json", GARBAGE), "--data-dir", c.nodata],
            ["not a benchmark file"],
        ),
    ),
    case(
        "bench/out-an-object",
        1,
        lambda c: (
            [
                "bench",
                "--train-limit",
                256,
                "--out",
                c.file("bench.json", '{"device_name": "x"}'),
                "--data-dir",
                c.nodata,
            ],
            ["not a list of benchmark runs"],
        ),
    ),
    case(
        "bench/out-over-long",
        1,
        lambda c: (
            ["bench", "--train-limit", 256, "--out", c.long / "bench.json", "--data-dir", c.nodata],
            [],
        ),
    ),
    case(
        "bench/out-parent-is-a-file",
        1,
        lambda c: (
            ["bench", "--train-limit", 256, "--out", c.file("f", "x") / "bench.json"],
            [str(c.path("f"))],
        ),
    ),
    case("bench/repeats-0", 2, lambda c: (["bench", "--repeats", 0], ["--repeats"])),
    case("bench/repeats-negative", 2, lambda c: (["bench", "--repeats", -1], ["--repeats"])),
    case("bench/train-limit-negative", 2, lambda c: (["bench", "--train-limit", -5], ["--train-limit"])),
    # --- report: reads --results, writes the checkout's README.md and docs/ -------------------------
    case(
        "report/results-missing",
        1,
        lambda c: (["report", "--results", c.path("nope")], [str(c.path("nope"))]),
    ),
    case(
        "report/results-is-a-file",
        1,
        lambda c: (["report", "--results", c.file("results", "x")], [str(c.path("results"))]),
    ),
    case("report/results-over-long", 1, lambda c: (["report", "--results", c.long], [])),
    case(
        "report/result-not-utf8",
        1,
        lambda c: (
            ["report", "--results", c.file("results/step1/result.json", GARBAGE).parent.parent],
            ["result.json", "not a valid result file"],
        ),
    ),
    case(
        "report/result-a-list",
        1,
        lambda c: (
            ["report", "--results", c.file("results/step1/result.json", "[]").parent.parent],
            ["result.json", "not a valid result file"],
        ),
    ),
    case(
        "report/bench-truncated",
        1,
        lambda c: (
            ["report", "--results", c.file("results/bench.json", '[{"device_name": ').parent],
            ["bench.json"],
        ),
    ),
    case(
        "report/bench-an-object",
        1,
        lambda c: (
            ["report", "--results", c.file("results/bench.json", '{"device_name": "x"}').parent],
            ["bench.json"],
        ),
    ),
    case(
        "report/seed-summary-empty",
        1,
        lambda c: (
            ["report", "--results", c.file("results/step5_seeds/summary.json").parent.parent],
            ["summary.json"],
        ),
    ),
    # --- draw -------------------------------------------------------------------------------------
    case(
        "draw/out-folder-missing",
        1,
        lambda c: (["draw", "--out", c.path("nope/net.png")], [str(c.path("nope"))]),
    ),
    case(
        "draw/out-a-folder", 1, lambda c: (["draw", "--out", c.folder("net.png")], [str(c.path("net.png"))])
    ),
    case(
        "draw/out-parent-is-a-file",
        1,
        lambda c: (["draw", "--out", c.file("f", "x") / "net.png"], [str(c.path("f"))]),
    ),
    case("draw/out-over-long", 1, lambda c: (["draw", "--out", c.long / "net.png"], [])),
    case("draw/step-9", 2, lambda c: (["draw", "--step", 9, "--out", c.path("net.png")], ["--step"])),
    # --- reproduce: only what must fail before any notebook runs ------------------------------------
    case("reproduce/steps-9", 2, lambda c: (["reproduce", "--steps", 9], ["--steps"])),
    case("reproduce/no-notebooks", 1, lambda c: (["reproduce", "--steps", 1], ["01_setup.ipynb"])),
    case(
        "reproduce/garbage-record",
        1,
        reproduce_with_a_garbage_record,
    ),
    case(
        "reproduce/results-is-a-file",
        1,
        reproduce_into_a_results_file,
    ),
]


@pytest.fixture(scope="session")
def checkout_template(tmp_path_factory) -> Path:
    """A private checkout: the package, pyproject.toml, README.md and docs/, data/ as a link, no results."""
    root = tmp_path_factory.mktemp("checkout") / "repo"
    root.mkdir()
    shutil.copytree(REPO / "mnist_lite", root / "mnist_lite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "docs", root / "docs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    (root / "data").symlink_to(REPO / "data", target_is_directory=True)
    (root / "results").mkdir()
    return root


@pytest.fixture(scope="session")
def outcomes(request, run_cli, tmp_path_factory, checkout_template, finished_run, unfinished_run):
    """The selected cases, prepared, then run concurrently:
    id -> (ctx, argv, fragments, files before, process)."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_hostile_input"
    ]
    prepared = {}
    for c in selected:
        ctx = Ctx(
            tmp_path_factory.mktemp(re.sub(r"\W", "_", c.id)), checkout_template, finished_run, unfinished_run
        )
        argv, fragments = c.build(ctx)
        assert argv, f"{c.id}: no command"
        prepared[c.id] = ctx, argv, fragments, tree(ctx.root)

    def run(item):
        ctx, argv, *_ = item
        try:
            return run_cli(*argv, cwd=ctx.repo, timeout=240)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(
                argv, "timeout", error.stdout or "", f"timed out after {error.timeout}s"
            )

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        procs = list(pool.map(run, prepared.values()))
    return {
        key: (ctx, argv, fragments, before, proc)
        for (key, (ctx, argv, fragments, before)), proc in zip(prepared.items(), procs, strict=True)
    }


@pytest.mark.xdist_group("hostile")  # one worker runs the whole table: `outcomes` prepares every case
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_hostile_input(case, outcomes):
    ctx, argv, fragments, before, proc = outcomes[case.id]
    command = "python -m mnist_lite " + " ".join(map(str, argv))
    try:
        assert_clean_error(proc, case.code, *fragments)
    except AssertionError as failure:
        raise AssertionError(f"{command}\n{failure}") from None
    after = tree(ctx.root)
    lost = sorted(path for path in before if path not in after)
    changed = sorted(path for path in before if path in after and after[path] != before[path])
    assert not lost and not changed, (command, "lost", lost, "changed", changed)
    assert not ctx.marker.exists(), (command, "a payload or a notebook ran")
