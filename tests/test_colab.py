"""The notebooks' Colab set-up cell, executed the way Colab executes it, without Colab or a network.

A stand-in ``google.colab`` module, put into the kernel's ``sys.modules`` by a cell run first,
makes the set-up cell take its Colab branch. Its ``REPO_URL`` is pointed, as a user would point
it at a fork, at this repository's folder: the clone holds the committed state, not uncommitted
edits, so these tests check the mechanism rather than the latest changes. The kernel runs in a
virtual environment of the test's own that sees this one's packages, so that the cell's
``pip install -e`` lands there and cannot replace the installation the other tests import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mnist_lite import paths
from mnist_lite.steps import STEPS

tomllib = pytest.importorskip("tomllib")  # Python 3.11 on

REPO = Path(__file__).resolve().parent.parent
COLAB = 'import sys, types\nsys.modules["google.colab"] = types.ModuleType("google.colab")'
# pip without a network: the environment's own packages, no build isolation ("0" turns it off)
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0"}


def setup_cell(step: int):
    """The notebook's first code cell, the Colab set-up."""
    notebook = nbformat.read(REPO / STEPS[step].notebook, as_version=4)
    return next(cell for cell in notebook.cells if cell.cell_type == "code")


def assigned(source: str, name: str) -> str:
    """The string literal assigned to ``name`` at the start of a line of ``source``."""
    (value,) = re.findall(rf'^{name} = "([^"]*)"', source, flags=re.MULTILINE)
    return value


def pointed(source: str, repo_url: str, clone_dir: Path) -> str:
    """``source`` with its REPO_URL and CLONE_DIR changed, as a user would edit them."""
    for name, value in (("REPO_URL", repo_url), ("CLONE_DIR", str(clone_dir))):
        source = source.replace(f'{name} = "{assigned(source, name)}"', f"{name} = {value!r}")
    return source


def test_every_notebook_has_the_same_setup_cell_and_clones_the_projects_repository():
    repository = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    sources = {setup_cell(step).source for step in STEPS}
    assert len(sources) == 1, "the five set-up cells differ"
    assert assigned(sources.pop(), "REPO_URL") == repository
    assert paths.REPOSITORY == repository  # what the README's Colab badges link to


@pytest.fixture
def run_like_colab(tmp_path):
    """Run code cells, after the stand-in ``google.colab``, in a fresh kernel of a virtual
    environment of the test's own; returns the executed notebook."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], check=True
    )
    spec = tmp_path / "kernels" / "colab"
    spec.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel_json = {"argv": argv, "display_name": "colab", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel_json))

    def run(*sources: str):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in (COLAB, *sources)])
        specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
        kernel = KernelManager(kernel_name="colab", kernel_spec_manager=specs)
        try:
            NotebookClient(notebook, km=kernel, timeout=300).execute(env={**os.environ, **OFFLINE_PIP})
        finally:
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)
        return notebook

    return run


def test_colab_setup_clones_installs_and_imports_the_clone_without_a_restart(tmp_path, run_like_colab):
    clone = tmp_path / "mnist-lite"
    notebook = run_like_colab(
        pointed(setup_cell(1).source, str(REPO), clone),
        "import mnist_lite\nprint(mnist_lite.__file__)",
    )
    printed = notebook.cells[-1].outputs[0]["text"].strip()
    assert Path(printed).is_relative_to(clone), printed
    assert (clone / ".git").is_dir()


def test_colab_setup_stops_with_one_line_when_the_clone_fails(tmp_path, run_like_colab):
    clone, nowhere = tmp_path / "mnist-lite", tmp_path / "no-such-repository"
    with pytest.raises(CellExecutionError) as caught:
        run_like_colab(pointed(setup_cell(1).source, str(nowhere), clone), "print('ran on')")
    assert caught.value.ename == "SystemExit"
    assert re.fullmatch(rf"set-up failed: could not clone {nowhere}: fatal: [^\n]*", caught.value.evalue)
    assert not clone.exists()
