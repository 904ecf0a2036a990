"""The generated sections of README.md and docs/, and the figures they show, from ``results/`` alone.

Each section sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``;
``update_docs`` rewrites what is between them and leaves the hand-written rest alone. A section
is a loader, which reads and checks its files under ``results/``, and a pure renderer (data in,
text out); a figure likewise is a loader and a drawing function of ``mnist_lite.plots``.

The sections live in modules by topic: ``series`` (the steps table and the series), ``sweeps``
(seed sweeps on the test set), ``design`` (the design search and the checks of docs/experiments.md)
and ``speed`` (the benchmark, the speed trials, the reproduce run); ``common`` names the files they
read and holds their schemas. This module says which sections each document has, and fills them.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnist_lite import plots
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import DESIGN_GPU, DESIGN_XEON, REPO, RESULTS
from mnist_lite.report.common import (
    BENCH,
    BENCH_FILE,
    DESIGN_FIGURE,
    PERF_TRIALS,
    REPORTED,
    REPRODUCE,
    REPRODUCE_FILE,
    SEEDS_FIGURE,
    SERIES_FIGURE,
    TEST_FRONTIER_FIGURE,
    TRIALS_FILE,
    reader,
    section,
)
from mnist_lite.report.design import (
    PRECISE_BN_CHECK,
    TTA_CHECK,
    TTA_STEP5_CHECK,
    TTA_TEST_CHECK,
    design_figure,
    design_round_text,
    design_text,
    frontier_speed_table,
    legacy_table,
    load_design,
    load_frontier_speed,
    load_legacy,
    load_one_epoch,
    load_test_frontier,
    one_epoch_table,
    paired_section,
    resolution_text,
)
from mnist_lite.report.series import load_steps, series_figure, series_text, steps_table
from mnist_lite.report.speed import performance_table, reproduce_text, trials_text
from mnist_lite.report.sweeps import (
    bfloat16_text,
    load_replicates,
    load_step_sweeps,
    load_sweeps,
    load_test_sweeps,
    replicate_text,
    robustness_text,
    seeds_figure,
    step_sweeps_text,
    test_sweeps_table,
)
from mnist_lite.results import write_atomic

# --- the documents and figures, and filling them ------------------------------------------------------------


# file (relative to the repository) -> its generated sections
DOCUMENTS = {
    "README.md": {
        "steps": section(load_steps, steps_table),
        "step-sweeps": section(load_step_sweeps, step_sweeps_text),
        "series": section(load_steps, series_text),
        "robustness": section(load_sweeps, robustness_text),
        "performance": section(reader(BENCH, BENCH_FILE), performance_table),
        "reproduce": section(reader(REPRODUCE, REPRODUCE_FILE), reproduce_text),
    },
    "docs/experiments.md": {
        "legacy-experiments": section(load_legacy, legacy_table),
        "experiments": section(load_design, design_text),
        "resolution": section(load_design, resolution_text),
        **{
            name: section(
                lambda results, f=folder: load_design(results, f), lambda d, f=folder: design_round_text(d, f)
            )
            for name, folder in (("experiments-gpu", DESIGN_GPU), ("experiments-xeon", DESIGN_XEON))
        },
        "precise-bn": paired_section(PRECISE_BN_CHECK),
        "tta": paired_section(TTA_CHECK),
        "tta-test": paired_section(TTA_TEST_CHECK),
        "tta-step5": paired_section(TTA_STEP5_CHECK),
        "frontier-speed": section(load_frontier_speed, frontier_speed_table),
        "one-epoch": section(load_one_epoch, one_epoch_table),
        "test-sweeps": section(load_test_sweeps, test_sweeps_table),
        "replicate": section(load_replicates, replicate_text),
    },
    "docs/performance.md": {
        "trials": section(reader(PERF_TRIALS, TRIALS_FILE), trials_text),
        "bfloat16-seeds": section(load_sweeps, bfloat16_text),
        "performance": section(reader(BENCH, BENCH_FILE), performance_table),
    },
}
# figure (relative to the repository) -> (its loader, what draws it); drawn only when the loader finds data
FIGURES = {
    SERIES_FIGURE: (load_steps, series_figure),
    SEEDS_FIGURE: (load_sweeps, seeds_figure),
    DESIGN_FIGURE: (load_design, design_figure),
    TEST_FRONTIER_FIGURE: (
        load_test_frontier,
        lambda frontier: plots.plot_test_frontier(frontier["sweeps"], frontier["timed_on"]),
    ),
}


def draw_figure(name: str, results: Path) -> bytes | None:
    """The PNG of figure ``name`` from ``results``, or None when there is nothing to draw."""
    load, draw = FIGURES[name]
    data = load(results)
    return plots.render_png(draw, data) if data else None


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"


def render(
    text: str, results: Path, sections: dict = DOCUMENTS["README.md"], source: str = "the document"
) -> str:
    """``text`` with what lies between each of ``sections``' markers rewritten from ``results``,
    and everything outside the markers kept as it is.

    Each marker must be there exactly once, the opening one ending its line and the closing one
    starting a line, and no two sections may overlap: anything else could lose hand-written text,
    so it is refused (naming ``source``) before ``results`` is read.
    """
    spans = []  # (start of the section's body, end of it, name)
    for name in sections:
        opening, closing = _markers(name)
        counts = text.count(opening), text.count(closing)
        if counts == (0, 0):
            raise MnistLiteError(f"{source}: no {opening} ... {closing} markers to fill")
        if counts != (1, 1):
            raise MnistLiteError(
                f"{source}: {opening} is there {counts[0]} times and {closing} "
                f"{counts[1]} times; each must be there once"
            )
        start, end = text.index(opening) + len(opening) + 1, text.index(closing)
        if text[start - 1 : start] != "\n" or end < start or text[start:end][-1:] not in ("", "\n"):
            raise MnistLiteError(f"{source}: {opening} must end its line, and {closing} start a later one")
        spans.append((start, end, name))
    every_marker = [marker for name in sections for marker in _markers(name)]
    for start, end, name in spans:  # each marker is there once: sections overlap if one holds a marker
        inside = [marker for marker in every_marker if marker in text[start:end]]
        if inside:
            raise MnistLiteError(
                f"{source}: the generated section {name} holds {inside[0]}: sections must not overlap"
            )
    pieces, done = [], 0
    for start, end, name in sorted(spans):
        made = sections[name](results)
        if any(marker in made for marker in every_marker):
            raise MnistLiteError(f"{source}: the generated section {name} would hold a section marker")
        pieces += [text[done:start], made, "\n"]
        done = end
    return "".join([*pieces, text[done:]])


def render_all(repo: Path | None, results: Path) -> dict[Path, bytes]:
    """Every file the report writes (the documents with their sections filled, the figures that
    have data), as it is to be written: all made before any is written, so that a failure
    leaves every one as it was."""
    if repo is None or results is None:
        raise MnistLiteError("no repository checkout here: the report rewrites its README.md and docs/")
    if not os.path.isdir(results):  # os.path's: False, not an error, for a name too long to look up
        raise MnistLiteError(f"{results}: no such folder of results; pass --results FOLDER")
    try:
        recorded = any((Path(results) / name).exists() for name in REPORTED)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise MnistLiteError(f"{results}: cannot read it ({reason})") from None
    if not recorded:
        raise MnistLiteError(
            f"{results}: no recorded results in it (none of "
            f"{', '.join(REPORTED[:3])}, ...); pass --results FOLDER"
        )
    files = {}
    for name, sections in DOCUMENTS.items():
        path = repo / name
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8"
            raise MnistLiteError(f"{path}: cannot read it ({reason})") from None
        files[path] = render(text, results, sections, source=str(path)).encode()
    for name in FIGURES:
        png = draw_figure(name, results)
        if png is not None:
            files[repo / name] = png
    return files


def update_docs(repo: Path | None = REPO, results: Path = RESULTS) -> None:
    """Rewrite the generated sections of every file in ``DOCUMENTS`` and the figures in ``FIGURES``."""
    for path, data in render_all(repo, results).items():
        write_atomic(path, data)
