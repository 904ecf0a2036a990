"""CI: the GitHub workflow is valid and only wraps .ci/run, and .ci/run runs every check: the README's
test command, ruff, and a smoke execution of every step notebook."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mnist_lite.steps import STEPS

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
CI_RUN = REPO / ".ci" / "run"
MARKER = "<!-- test-command -->"


def readme_test_command(readme: str) -> str:
    """The README's test command: the first line of the fenced block right after the marker."""
    lines = readme.splitlines()
    start = lines.index(MARKER) + 1
    fence, command = lines[start : start + 2]
    assert fence.startswith("```"), f"the line after {MARKER} opens no fenced block: {fence!r}"
    return command


def test_workflow_passes_actionlint():
    actionlint = shutil.which("actionlint")
    assert actionlint, "no `actionlint` command: pip install -r requirements.txt"
    proc = subprocess.run([actionlint, WORKFLOW], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_runs_ci_script_and_uploads_what_it_executed():
    """The workflow runs no check of its own, so it cannot drift from .ci/run: its only commands are
    the CPU build of torch (first, so that requirements.txt keeps it) and .ci/run itself."""
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    commands = [step for step in job["steps"] if "run" in step]
    assert len(commands) == 2 and "download.pytorch.org/whl/cpu" in commands[0]["run"], commands
    ci = commands[1]
    assert ci["run"] == "bash .ci/run"
    (upload,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == ci["env"]["EXECUTED_DIR"]


def test_ci_script_runs_every_check_in_order():
    script = CI_RUN.read_text()
    checks = [
        "set -euo pipefail",
        "python -m pip install --quiet --disable-pip-version-check -r requirements.txt",
        'eval "$test_command"',
        "ruff check .",
        "ruff format --check .",
        "MNIST_LITE_SMOKE=1 jupyter nbconvert --to notebook --execute notebooks/*.ipynb --output-dir",
    ]
    missing = [check for check in checks if check not in script]
    assert not missing
    positions = [script.index(check) for check in checks]
    assert positions == sorted(positions)


def test_ci_script_executes_exactly_the_step_notebooks():
    """.ci/run executes ``notebooks/*.ipynb``: that is every step's notebook and nothing else."""
    steps = sorted(REPO / recipe.notebook for recipe in STEPS.values())
    assert sorted(REPO.glob("notebooks/*.ipynb")) == steps


def test_ci_script_reads_the_readme_test_command():
    awk = re.search(r"^test_command=\$\((awk .*)\)$", CI_RUN.read_text(), re.MULTILINE)
    assert awk, "no `test_command=$(awk ...)` line in .ci/run"
    extracted = subprocess.run(["bash", "-c", awk.group(1)], cwd=REPO, capture_output=True, text=True)
    command = readme_test_command((REPO / "README.md").read_text())
    assert extracted.returncode == 0 and extracted.stdout == command + "\n", extracted.stderr
    assert "pytest" in command


def test_pre_commit_runs_the_ruff_of_requirements():
    """The same ruff in the hook and in CI: a formatter's style changes between releases."""
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    (rev,) = [repo["rev"] for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]
    pinned = re.search(r"^ruff==(\S+)", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned and rev == f"v{pinned.group(1)}"


def test_ruff_checks_the_notebooks():
    listed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--show-files", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    checked = {Path(line.strip()).resolve() for line in listed.stdout.splitlines()}
    assert {REPO / recipe.notebook for recipe in STEPS.values()} <= checked
