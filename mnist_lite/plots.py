"""Figures for the notebooks and ``architecture.png``; each function returns its matplotlib Figure."""

from __future__ import annotations

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "inline", "nbagg", "widget")):
    matplotlib.use("Agg")  # headless outside Jupyter: the CLI only writes files

import matplotlib.pyplot as plt
import torch

from mnist_lite.data import MEAN, STD
from mnist_lite.models import count_parameters, layer_table
from mnist_lite.results import History
from mnist_lite.steps import TARGET_ACCURACY


def plot_history(history: History, title: str = ""):
    """Train and test loss and accuracy per epoch."""
    epochs = [row["epoch"] for row in history.epochs]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    for split, style in (("train", "o-"), ("test", "s-")):
        loss_ax.plot(epochs, [row[f"{split}_loss"] for row in history.epochs], style, label=split)
        acc_ax.plot(epochs, [row[f"{split}_acc"] for row in history.epochs], style, label=split)
    acc_ax.axhline(TARGET_ACCURACY, color="grey", linestyle="--", linewidth=1, label=f"{TARGET_ACCURACY}%")
    loss_ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(max(90, acc_ax.get_ylim()[0]), 100))
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_images(images: torch.Tensor, captions: list[str], columns: int = 12, title: str = ""):
    """A grid of images (uint8 ``[N, 28, 28]`` or normalised ``[N, 1, 28, 28]``) with captions."""
    images = images.detach().cpu().float()
    if images.dim() == 4:
        images = images[:, 0] * STD + MEAN
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
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
    for x, header in zip(columns, headers):
        ax.text(x, -0.05, header, fontsize=10, weight="bold", va="center")
    colours = {"Conv2d": "#cfe2f3", "MaxPool2d": "#fce5cd", "AdaptiveAvgPool2d": "#d9ead3"}
    for i, row in enumerate(rows, start=1):
        y = -i
        ax.add_patch(plt.Rectangle((0.1, y - 0.38), 12.7, 0.76, color=colours.get(row.kind, "#eeeeee")))
        shape = " x ".join(str(n) for n in row.out_shape)
        cells = [row.name, row.description, shape, f"{row.receptive_field} x {row.receptive_field}", f"{row.params:,}"]
        for x, text in zip(columns, cells):
            ax.text(x, y, text, fontsize=10, va="center", family="monospace")
    ax.text(0.1, -len(rows) - 0.75, f"total: {count_parameters(model):,} parameters", fontsize=11, weight="bold")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
