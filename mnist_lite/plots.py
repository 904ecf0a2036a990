"""Figures for the notebooks and ``architecture.png``; each function returns its matplotlib Figure."""

from __future__ import annotations

import collections
import io
import itertools
import statistics

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "inline", "nbagg", "widget")):
    matplotlib.use("Agg")  # headless outside Jupyter: the CLI only writes files

import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker
import torch

from mnist_lite.data import MEAN, STD
from mnist_lite.models import count_parameters, layer_table
from mnist_lite.results import History
from mnist_lite.steps import MEDIAN_BAR, STEP5_BUDGET, TARGET_ACCURACY, shifted_views


def plot_history(history: History, title: str = "", show_lr: bool = False):
    """Train and test loss and accuracy per epoch; with ``show_lr``, the learning rate too.

    Accuracy gets two panels: the whole range, so that early epochs are not cut off, and the
    top range, where the differences that matter (99.0 against 99.5%) would be a pixel apart
    on the whole one.
    """
    epochs = [row["epoch"] for row in history.epochs]
    panels = 4 if show_lr else 3
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8))
    loss_ax, acc_ax, top_ax = axes[:3]
    for split, style in (("train", "o-"), ("test", "s-")):
        loss_ax.plot(epochs, [row[f"{split}_loss"] for row in history.epochs], style, label=split)
        for ax in (acc_ax, top_ax):
            ax.plot(epochs, [row[f"{split}_acc"] for row in history.epochs], style, label=split)
    accuracies = [row[f"{split}_acc"] for row in history.epochs for split in ("train", "test")]
    for ax in (acc_ax, top_ax):
        ax.axhline(TARGET_ACCURACY, color="grey", linestyle="--", linewidth=1, label=f"{TARGET_ACCURACY}%")
    loss_ax.set(ylabel="loss", yscale="log", title="loss")
    acc_ax.set(ylabel="accuracy (%)", title="accuracy")
    top_ax.set(ylabel="accuracy (%)", title="accuracy, top range", ylim=top_range(accuracies))
    if show_lr:
        lr_ax = axes[3]
        lr_ax.plot(epochs, [row["lr"] for row in history.epochs], "o-", color="tab:green", label="lr")
        lr_ax.set(ylabel="learning rate", yscale="log", title="learning rate (at the epoch's start)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def top_range(accuracies: list[float], span: float = 0.6, margin: float = 0.15) -> tuple[float, float]:
    """The y range of a zoomed accuracy panel: the best ``span`` points of ``accuracies`` and
    the target, with a margin; never above 100%."""
    best = max(accuracies)
    high = min(100.0, max(best, TARGET_ACCURACY) + margin)
    return min(best - span, TARGET_ACCURACY - span) - margin, high


def show_images(images: torch.Tensor, captions: list[str], columns: int = 12, title: str = ""):
    """A grid of images (uint8 ``[N, 28, 28]`` or normalised ``[N, 1, 28, 28]``) with captions."""
    images = images.detach().cpu().float()
    if images.dim() == 4:
        images = images[:, 0] * STD + MEAN
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        ax.imshow(image, cmap="gray_r")
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_architecture(model: torch.nn.Module, path=None):
    """One box per block of ``model.features`` with its output shape, receptive field and
    parameters, and the total; written to ``path`` when given."""
    rows = layer_table(model)
    fig, ax = plt.subplots(figsize=(13, 0.55 * len(rows) + 1.6))
    ax.set_xlim(0, 13)
    ax.set_ylim(-len(rows) - 0.8, 1.2)
    ax.axis("off")
    ax.text(0.1, 0.6, f"{type(model).__name__}: input 1x28x28", fontsize=12, weight="bold")
    headers = ["block", "layers", "output (C x H x W)", "receptive field", "parameters"]
    columns = [0.25, 1.8, 6.6, 9.0, 11.3]
    for x, header in zip(columns, headers, strict=False):
        ax.text(x, -0.05, header, fontsize=10, weight="bold", va="center")
    colours = {"Conv2d": "#cfe2f3", "MaxPool2d": "#fce5cd", "AdaptiveAvgPool2d": "#d9ead3"}
    for i, row in enumerate(rows, start=1):
        y = -i
        ax.add_patch(plt.Rectangle((0.1, y - 0.38), 12.7, 0.76, color=colours.get(row.kind, "#eeeeee")))
        shape = " x ".join(str(n) for n in row.out_shape)
        cells = [
            row.name,
            row.description,
            shape,
            f"{row.receptive_field} x {row.receptive_field}",
            f"{row.params:,}",
        ]
        for x, text in zip(columns, cells, strict=False):
            ax.text(x, y, text, fontsize=10, va="center", family="monospace")
    ax.text(
        0.1, -len(rows) - 0.75, f"total: {count_parameters(model):,} parameters", fontsize=11, weight="bold"
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


# --- the report's figures: data in, figure out; ``render_png`` makes the file -------------------------------

SERIES_RANGE = (98.0, 99.8)  # the accuracies where the steps differ; anything beyond sits on the edge, listed


def plot_series(series: dict[str, list[dict]], ylim: tuple[float, float] = SERIES_RANGE):
    """Test (solid) and train (dashed) accuracy per epoch of several runs (label -> history rows),
    one colour per run, zoomed to ``ylim``. A point beyond the range is drawn on its edge as a
    triangle pointing out of the chart, and a note under the chart lists those points."""
    low, high = ylim
    fig, ax = plt.subplots(figsize=(10, 5.6))
    notes = []
    for colour, (label, rows) in zip(plt.cm.tab10.colors, series.items(), strict=False):
        epochs = [row["epoch"] for row in rows]
        off_scale = []
        for split, line in (("test", "-"), ("train", "--")):
            accs = [row[f"{split}_acc"] for row in rows]
            ax.plot(
                epochs,
                [min(max(a, low), high) for a in accs],
                line,
                color=colour,
                markersize=3.5,
                marker="o" if split == "test" else None,
                label=label if split == "test" else None,
            )
            below = [(epoch, a) for epoch, a in zip(epochs, accs, strict=False) if a < low]
            above = [(epoch, a) for epoch, a in zip(epochs, accs, strict=False) if a > high]
            for off, edge, marker, words, extreme in (
                (below, low, "v", "down to", min),
                (above, high, "^", "up to", max),
            ):
                if off:
                    ax.plot(
                        [epoch for epoch, _ in off],
                        [edge] * len(off),
                        marker,
                        color=colour,
                        markersize=7,
                        clip_on=False,
                    )
                    furthest = extreme(a for _, a in off)
                    off_scale.append(f"{split} in {len(off)} epoch(s), {words} {furthest:.2f}%")
        if off_scale:
            notes.append(f"{label}: {', '.join(off_scale)}")
    ax.axhline(TARGET_ACCURACY, color="black", linewidth=1, linestyle=":", label=f"{TARGET_ACCURACY}%")
    ax.plot([], [], "-", color="grey", label="test")
    ax.plot([], [], "--", color="grey", label="train")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=ylim, title="Accuracy per epoch, step by step")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    if notes:
        notes.insert(0, f"Off the scale, drawn on its edge (▼ below {low:g}%, ▲ above {high:g}%):")
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=8, va="bottom")
    fig.tight_layout(rect=(0, 0.028 * len(notes), 1, 1))
    return fig


def _panels_in_a_row(widths: list[float], margin: float, per_width: float, height: float):
    """A figure of one row of panels sharing their y axis, each as wide as its ``widths`` entry
    (in units of ``per_width`` inches, plus ``margin`` inches for the labels), and its axes."""
    fig, axes = plt.subplots(
        1,
        len(widths),
        figsize=(margin + per_width * sum(widths), height),
        sharey=True,
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    return fig, axes[0]


def plot_seeds(summaries: list[dict]):
    """Each seed's last test accuracies (one panel per seed sweep, as ``seed_summary`` wrote it),
    side by side around the seed's number, one colour per epoch, and the target line."""
    fig, axes = _panels_in_a_row([max(len(s["seeds"]), 6) for s in summaries], 3, 0.45, 4.6)
    for ax, summary in zip(axes, summaries, strict=False):
        last = max(len(row["last5_test_acc"]) for row in summary["seeds"])
        for back in reversed(range(last)):  # epochs before the final one: oldest first, the final one darkest
            colour = plt.cm.viridis(0.85 * back / max(last - 1, 1))
            points = [
                (row["seed"], row["last5_test_acc"][-1 - back])
                for row in summary["seeds"]
                if back < len(row["last5_test_acc"])
            ]
            offset = ((last - 1) / 2 - back) * 0.13  # the epochs left to right around the seed's number
            ax.plot(
                [seed + offset for seed, _ in points],
                [acc for _, acc in points],
                "o",
                color=colour,
                markersize=4.5,
                label=f"epoch {summary['epochs'] - back}",
            )
        ax.axhline(TARGET_ACCURACY, color="black", linewidth=1, linestyle=":", label=f"{TARGET_ACCURACY}%")
        ax.set(
            xlabel="seed",
            xticks=[row["seed"] for row in summary["seeds"]],
            title=f"{summary['dtype']}: {summary['seeds_holding']} of {len(summary['seeds'])} seeds hold"
            # a sweep scored with test-time shifts says so in its own panel
            + (
                f"\nscored over {shifted_views(summary['test_time_shift'])}"
                if "test_time_shift" in summary
                else ""
            ),
        )
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("test accuracy (%)")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    fig.suptitle(f"Step {summaries[0]['step']}: the last epochs of every seed, per precision")
    fig.tight_layout()
    return fig


def plot_design_search(variants: list[dict]):
    """The design search, per variant (``name``, ``params``, ``multiply_adds``,
    ``seconds_per_epoch`` or None, ``min_last5``: the validation minimum of the last five epochs of
    each seed, and ``step5`` if step 5 trains it). Left, every variant ranked by the mean over its
    seeds, each seed a point; right, the same means, with the seeds' range as a bar, against
    parameters, multiply-adds and, where timings exist, seconds per epoch. Step 5's recipe is the
    star. On the right only step 5 and the variants with a net of their own are named: recipes on a
    shared net share its column in the first two panels and crowd around it in the third, and the
    ranking names them."""
    panels = [("params", "parameters"), ("multiply_adds", "multiply-adds per image")]
    if any(v["seconds_per_epoch"] is not None for v in variants):
        panels.append(("seconds_per_epoch", "seconds per training epoch"))
    means = [statistics.mean(v["min_last5"]) for v in variants]
    lowest = min(min(v["min_last5"]) for v in variants)
    highest = max(TARGET_ACCURACY, *(max(v["min_last5"]) for v in variants))
    margin = (highest - lowest) * 0.05 + 0.01
    limits = (lowest - margin, highest + margin)
    fig = plt.figure(figsize=(16, max(8.0, 2.0 + 0.26 * len(variants))))
    grid = fig.add_gridspec(len(panels), 2, width_ratios=[1, 1.25])
    _plot_ranking(fig.add_subplot(grid[:, 0]), variants, means, limits)
    nets = collections.Counter((v["params"], v["multiply_adds"]) for v in variants)
    unnamed = {  # the recipes on a net that another recipe shares
        v["name"] for v in variants if not v.get("step5") and nets[v["params"], v["multiply_adds"]] > 1
    }
    first = None
    for row, (key, label) in enumerate(panels):
        ax = fig.add_subplot(grid[row, 1], sharey=first)
        first = first or ax
        shown = [(v, mean) for v, mean in zip(variants, means, strict=True) if v[key] is not None]
        for v, mean in shown:
            marker, color, size = ("*", "tab:orange", 14) if v.get("step5") else ("o", "tab:blue", 5)
            ax.errorbar(
                v[key],
                mean,
                yerr=[[mean - min(v["min_last5"])], [max(v["min_last5"]) - mean]],
                fmt=marker,
                color=color,
                elinewidth=1,
                capsize=2,
                markersize=size,
                zorder=3 if v.get("step5") else 2,  # step 5's star above the recipes that share its net
            )
        named = [(v, mean) for v, mean in shown if v["name"] not in unnamed]
        gap = (limits[1] - limits[0]) / 25
        places = _label_places([v[key] for v, _ in named], [m for _, m in named], gap)
        for (v, mean), place in zip(named, places, strict=True):
            ax.annotate(
                "step 5" if v.get("step5") else v["name"],
                (v[key], mean),
                xytext=(8, place),
                textcoords=("offset points", "data"),
                fontsize=7,
                va="center",
                arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5},
            )
        ax.axhline(TARGET_ACCURACY, color="black", linewidth=1, linestyle=":")
        hidden = sum(v["name"] in unnamed for v, _ in shown)
        if hidden:
            ax.annotate(
                f"unnamed: {hidden} recipe{'s' if hidden > 1 else ''} on a net shared with others "
                "(the ranking names them)",
                (0.98, 0.03),
                xycoords="axes fraction",
                ha="right",
                fontsize=7,
                color="grey",
            )
        if key == "params":
            ax.axvline(STEP5_BUDGET, color="grey", linewidth=1, linestyle="--")
            ax.annotate(
                f"step 5's budget: {STEP5_BUDGET:,}",
                (STEP5_BUDGET, limits[0]),  # along the line's foot, clear of the dotted target line
                xytext=(3, 4),
                textcoords="offset points",
                rotation=90,
                fontsize=7,
                color="grey",
            )
        ax.set(xlabel=label, ylabel="validation accuracy (%)", ylim=limits)
        ticks = "{x:g}" if key == "seconds_per_epoch" else "{x:,.0f}"
        ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter(ticks))
        ax.margins(x=0.15)
        ax.grid(alpha=0.3)
    first.set_title("the mean over seeds against the cost (bar: the seeds' range)")
    fig.suptitle(
        "Design variants on the validation split: each seed's minimum over its last 5 epochs "
        f"(dotted: {TARGET_ACCURACY}%, the test target)"
    )
    fig.tight_layout()
    return fig


def _plot_ranking(ax, variants: list[dict], means: list[float], limits: tuple[float, float]) -> None:
    """Every variant a row, the best mean on top: its seeds as points, its mean as a tick; step 5's
    recipe the star, with a line at its mean, and the names of nets over step 5's budget in grey."""
    order = sorted(range(len(variants)), key=lambda i: means[i])
    for row, i in enumerate(order):
        v = variants[i]
        seeds = v["min_last5"]
        ax.plot(seeds, [row] * len(seeds), "o", color="tab:blue", alpha=0.45, markersize=3.5)
        if v.get("step5"):
            ax.plot(means[i], row, "*", color="tab:orange", markersize=13, zorder=3)
            ax.axvline(means[i], color="tab:orange", linewidth=1, alpha=0.6, zorder=1)
        else:
            ax.plot(means[i], row, "|", color="black", markersize=11, markeredgewidth=2)
    ax.set_yticks(range(len(order)))
    names = [variants[i]["name"] + (" (step 5)" if variants[i].get("step5") else "") for i in order]
    ax.set_yticklabels(names, fontsize=8)
    for tick, i in zip(ax.get_yticklabels(), order, strict=True):
        if variants[i]["params"] >= STEP5_BUDGET:
            tick.set_color("grey")
    ax.axvline(TARGET_ACCURACY, color="black", linewidth=1, linestyle=":")
    ax.set(
        xlim=limits,
        ylim=(-0.7, len(order) - 0.3),
        xlabel="validation accuracy (%)",
        title=f"ranked by the mean (tick); points: the seeds; grey: {STEP5_BUDGET:,} parameters or more",
    )
    ax.grid(alpha=0.3, axis="x")


def plot_test_frontier(sweeps: list[dict], timed_on: str | None = None):
    """What the robustness bars take on the test set: per sweep (``name``, ``params``, ``epochs``,
    ``dilated``, ``minima`` with test-time shifts and ``plain_minima``, the same runs scored each
    image alone, one per seed), every seed's minimum of its last five epochs and their median,
    against the parameters (15-epoch sweeps, round 4's net and, in a panel of its own, today's
    with its last convolution dilated) and against the epochs (sweeps of round 4's net with the
    fewest parameters). One column per value, evenly spaced (not to scale): the plain minima
    hollow in its left half, those with the shifts in its right half; the horizontal lines are
    the bars. A column of parameters also shows its net's seconds per training epoch, where the
    sweep has ``seconds_per_epoch`` from the one timing run on ``timed_on``."""
    shortest = min(s["epochs"] for s in sweeps)
    round4 = [s for s in sweeps if not s["dilated"]]
    dilated = [s for s in sweeps if s["dilated"]]
    panels = [
        ("params", f"round 4's net, {shortest} epochs", [s for s in round4 if s["epochs"] == shortest]),
        (
            "params",
            f"step 5's net, {shortest} epochs",
            [s for s in dilated if s["epochs"] == shortest],
        ),
    ]
    if round4:
        fewest = min(s["params"] for s in round4)
        panels.append(
            (
                "epochs",
                f"round 4's net, {fewest:,} parameters",
                [s for s in round4 if s["params"] == fewest],
            )
        )
    panels = [panel for panel in panels if panel[2]]
    fig, axes = _panels_in_a_row(
        [max(len({s[key] for s in shown}), 1.5) for key, _, shown in panels], 2.5, 1.4, 5.5
    )
    for ax, (key, title, shown) in zip(axes, panels, strict=True):
        values = sorted({s[key] for s in shown})
        for s in shown:
            column = values.index(s[key])
            for side, minima, style in (
                (-1, s["plain_minima"], dict(mfc="none", color="grey")),
                (1, s["minima"], dict(color="tab:blue")),
            ):
                # each seed's point spread across its half of the column, the median a bar over it
                centre = column + side * 0.2
                xs = [centre + (i / max(len(minima) - 1, 1) - 0.5) * 0.3 for i in range(len(minima))]
                ax.plot(xs, minima, "o", markersize=3.5, alpha=0.8, **style)
                median = statistics.median(minima)
                ax.plot([xs[0], xs[-1]], [median, median], color=style["color"], linewidth=2)
            holding = sum(m >= TARGET_ACCURACY for m in s["minima"])
            ax.annotate(
                f"{holding} of {len(s['minima'])} hold",
                (column, 0.98),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="top",
                fontsize=8,
            )
        ax.axhline(TARGET_ACCURACY, color="black", linewidth=1, linestyle=":")
        ax.axhline(MEDIAN_BAR, color="black", linewidth=1, linestyle="--")
        within = sum(value < STEP5_BUDGET for value in values)  # the columns under step 5's budget come first
        if key == "params" and 0 < within < len(values):
            ax.axvline(within - 0.5, color="grey", linewidth=1, linestyle="--")
        ax.set_title(title, fontsize=10)
        ax.set(
            xlabel=f"{'parameters' if key == 'params' else key} (columns not to scale)",
            xticks=range(len(values)),
            xlim=(-0.6, len(values) - 0.4),
        )
        seconds = {s[key]: s.get("seconds_per_epoch") for s in shown} if key == "params" else {}
        ax.set_xticklabels(
            [f"{value:,}" + (f"\n{seconds[value]:.1f} s" if seconds.get(value) else "") for value in values]
        )
        ax.grid(alpha=0.3, axis="y")
    axes[0].set(ylabel="test accuracy (%), min of the last 5 epochs per seed")
    line = matplotlib.lines.Line2D
    handles = [
        line([], [], marker="o", linestyle="", color="tab:blue", label="a seed, with the shifts"),
        line([], [], marker="o", linestyle="", mfc="none", color="grey", label="the same seed, plain"),
        line([], [], color="black", linewidth=2, label="median over seeds"),
        line([], [], color="black", linestyle=":", label=f"every seed: {TARGET_ACCURACY}%"),
        line([], [], color="black", linestyle="--", label=f"the median: {MEDIAN_BAR}%"),
        line([], [], color="grey", linestyle="--", label=f"step 5's budget: {STEP5_BUDGET:,}"),
    ]
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    title = (
        "On the test set: what the robustness bars take (hold: seeds on or above the dotted line, shifted)"
    )
    if any(s.get("seconds_per_epoch") for s in sweeps):
        title += f"\nunder each net's parameters: its seconds per training epoch on {timed_on} (one run)"
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _label_places(xs: list[float], ys: list[float], gap: float) -> list[float]:
    """Heights for the labels of points (xs, ys) that keep labels of points with about the same x
    at least ``gap`` apart, each column of labels centred on its points."""
    if not xs:
        return []
    span = (max(xs) - min(xs)) or 1.0
    places = list(ys)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    columns = [[order[0]]]
    for before, i in itertools.pairwise(order):
        if xs[i] - xs[before] > 0.15 * span:  # far enough right that the labels cannot collide
            columns.append([])
        columns[-1].append(i)
    for column in columns:
        column.sort(key=lambda i: ys[i])
        for below, i in itertools.pairwise(column):
            places[i] = max(ys[i], places[below] + gap)
        shift = sum(places[i] - ys[i] for i in column) / len(column)
        for i in column:
            places[i] -= shift
    return places


def render_png(draw, *args, dpi: int = 100) -> bytes:
    """``draw(*args)``'s figure as PNG bytes that depend on the arguments and the matplotlib
    install alone: drawn in matplotlib's default style whatever a local matplotlibrc says, and
    saved without the "Software" stamp (the version string), so the committed file changes only
    when the picture does."""
    with plt.style.context("default"):
        fig = draw(*args)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
