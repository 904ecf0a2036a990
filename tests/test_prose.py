"""Every number quoted in a notebook's Target or Analysis is a recorded number.

A markdown cell may name the result files it quotes beyond the step's own ``result.json`` in
an HTML comment, ``<!-- sources: results/step4/result.json results/step5_seeds/summary.json -->``.
A quoted number passes if some number in those files, or in the step's recipe, shows as it
at the precision quoted (``99.47`` matches 99.472, ``2%`` matches a dropout of 0.02).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from mnist_lite.steps import PARAM_BUDGET, STEP5_BUDGET, STEPS, TARGET_ACCURACY

REPO = Path(__file__).resolve().parent.parent
SOURCES = re.compile(r"<!--\s*sources:(.*?)-->", re.S)
# a decimal number, a percentage, or a number with thousands separators; not part of a word or file name
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+(?=\s?%))(?![\w])")
# numbers that are facts of the design rather than of a run, with the reason they need no result file
ALLOWED = {
    "99.4": "the target accuracy (steps.TARGET_ACCURACY)",
    "10,000": "the parameter budget of steps 2-5 and the size of the test set",
    "8,000": "the parameter budget of step 5",
    "60,000": "the size of the training set",
    "50,000": "the training images left when the validation split is held out",
    "100": "a percentage's scale",
}


def numbers_in(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers_in(item)]
    if isinstance(value, (list, tuple)):
        return [n for item in value for n in numbers_in(item)]
    return []


def shows_as(quoted: str, value: float) -> bool:
    text = quoted.replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return any(f"{candidate:.{decimals}f}" == text for candidate in (value, value * 100))


def prose_cells(step: int):
    notebook = nbformat.read(REPO / STEPS[step].notebook, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith(("## Target", "## Analysis")):
            yield cell.source


def known_numbers(step: int, cell: str) -> list[float]:
    paths = [REPO / "results" / f"step{step}" / "result.json"]
    for match in SOURCES.finditer(cell):
        paths += [REPO / name for name in match.group(1).split()]
    numbers = [TARGET_ACCURACY, PARAM_BUDGET, STEP5_BUDGET] + numbers_in(STEPS[step].as_dict())
    for path in paths:
        assert path.is_file(), f"step {step}: the prose names {path}, which does not exist"
        numbers += numbers_in(json.loads(path.read_text()))
    return numbers


@pytest.mark.results
@pytest.mark.parametrize("step", sorted(STEPS))
def test_every_quoted_number_is_recorded(step):
    unsourced = []
    for cell in prose_cells(step):
        known = known_numbers(step, cell)
        text = SOURCES.sub("", cell)
        for quoted in NUMBER.findall(text):
            if quoted not in ALLOWED and not any(shows_as(quoted, value) for value in known):
                unsourced.append(quoted)
    assert not unsourced, f"step {step}: numbers in Target/Analysis found in no result file: {unsourced}"


def test_the_audit_catches_a_number_that_is_not_recorded():
    assert shows_as("99.47", 99.472) and not shows_as("99.48", 99.472)
    # step 3's old slip: the record holds 0.02555, which shows as 0.0255, not the 0.0256 once quoted
    assert shows_as("0.0255", 0.02555) and not shows_as("0.0256", 0.02555)
    assert shows_as("2", 0.02) and shows_as("7,578", 7578) and not shows_as("7,854", 7578)
    assert NUMBER.findall("ends at 99.77% against 99.48%, with 7,578 parameters, 2% dropout, epoch 9") == [
        "99.77",
        "99.48",
        "7,578",
        "2",
    ]
