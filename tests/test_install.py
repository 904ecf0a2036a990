"""Installed, not only cloned: ``pip install .`` (not editable) into a fresh virtual environment,
then the command line from a folder outside the checkout, with only the installed package to go on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from mnist_lite.steps import STEPS

REPO = Path(__file__).resolve().parent.parent


def run(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_package_runs_from_any_folder(tmp_path, data_copy):
    # What a source distribution holds, copied, so that the build writes nothing into the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "mnist_lite", source / "mnist_lite", ignore=shutil.ignore_patterns("__pycache__"))
    # The system's site-packages stay visible for torch and pip; nothing is fetched (--no-index).
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
        check=True,
        timeout=300,
    )
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("MNIST_LITE_DATA", "PYTHONPATH")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = run(
        python,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        source,
        cwd=elsewhere,
        env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    where = run(
        python, "-c", "import mnist_lite.paths as p; print(p.PACKAGE, p.REPO)", cwd=elsewhere, env=env
    )
    assert where.returncode == 0, where.stderr
    package, repo = where.stdout.split()
    assert Path(package).is_relative_to(venv) and repo == "None"  # the installed copy, not the checkout
    assert (Path(package) / "SHA256SUMS").is_file()  # package data
    # every subpackage (pyproject.toml lists them), which the checkout's editable install, visible
    # through the system's site-packages, would otherwise stand in for on import
    assert (Path(package) / "report" / "__init__.py").is_file()

    summary = run(python, "-m", "mnist_lite", "summary", "--step", 5, cwd=elsewhere, env=env)
    assert summary.returncode == 0, summary.stderr
    assert re.search(r"step 5 \(\w+\): [\d,]+ parameters", summary.stdout), summary.stdout

    model = tmp_path / "model.pt"
    torch.save(STEPS[5].model().state_dict(), model)  # untrained: about 10%, but a real evaluation
    evaluate = run(
        python,
        "-m",
        "mnist_lite",
        "evaluate",
        model,
        "--step",
        5,
        "--data-dir",
        data_copy(),
        cwd=elsewhere,
        env=env,
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert re.search(r"accuracy \d+\.\d\d% .*on 10,000 test images", evaluate.stdout), evaluate.stdout

    # With no checkout beside the package there is no default data folder: one line says what to pass.
    unnamed = run(python, "-m", "mnist_lite", "evaluate", model, "--step", 5, cwd=elsewhere, env=env)
    assert unnamed.returncode == 1 and "Traceback" not in unnamed.stderr
    assert len(unnamed.stderr.strip().splitlines()) == 1 and "--data-dir" in unnamed.stderr
