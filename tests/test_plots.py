"""The figures: what each panel shows, and PNGs that depend on the data alone."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.pyplot as plt
import pytest
from conftest import seed_run

from mnist_lite import plots
from mnist_lite.results import History, seed_summary
from mnist_lite.steps import MEDIAN_BAR, TARGET_ACCURACY

STEP5_LIKE = [97.9, 98.5, 98.9, 99.0, 99.1, 99.2, 99.25, 99.3, 99.45, 99.48, 99.5, 99.47, 99.52, 99.5, 99.55]


def history(test_accs=STEP5_LIKE, lrs=None) -> History:
    lrs = lrs or [0.1] * 8 + [0.01] * 4 + [0.001] * (len(test_accs) - 12)
    return History(
        [
            {
                "epoch": epoch,
                "train_loss": 1 / epoch,
                "train_acc": acc - 0.3,
                "test_loss": 0.5 / epoch,
                "test_acc": acc,
                "lr": lr,
                "seconds": 1.0,
            }
            for epoch, (acc, lr) in enumerate(zip(test_accs, lrs, strict=False), start=1)
        ]
    )


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_history_takes_the_old_arguments():
    fig = plots.plot_history(history(), "step 5")
    assert len(fig.axes) == 3 and fig._suptitle.get_text() == "step 5"


def test_plot_history_shows_every_epoch_and_zooms_on_the_top():
    fig = plots.plot_history(history())
    _, full, top = fig.axes
    low, high = full.get_ylim()
    assert low <= min(STEP5_LIKE) - 0.3 and high >= max(STEP5_LIKE)  # the early epochs are not cut off
    low, high = top.get_ylim()
    assert low <= 99.0 and 99.6 <= high <= 100 and high - low < 1.5  # 99.0-99.6 takes much of the panel


def test_plot_history_zoom_shows_the_target_for_a_step_far_below_it():
    low, high = plots.top_range([96.0, 98.2, 98.4])
    assert low < 98.4 - 0.5 and high > TARGET_ACCURACY


def test_plot_history_shows_the_learning_rate_on_a_log_scale():
    fig = plots.plot_history(history(), "step 5", show_lr=True)
    lr_ax = fig.axes[3]
    assert len(fig.axes) == 4 and lr_ax.get_yscale() == "log"
    assert list(lr_ax.lines[0].get_ydata()) == [row["lr"] for row in history().epochs]


def test_plot_series_lists_what_is_off_the_scale():
    low_start = [90.0, 97.0, *STEP5_LIKE[2:]]
    fig = plots.plot_series({"step 2": history(low_start).epochs, "step 5": history().epochs})
    note = fig.texts[-1].get_text()
    assert "step 2: test in 2 epoch(s), down to 90.00%, train in 2 epoch(s), down to 89.70%" in note
    assert "step 5: test in 1 epoch(s), down to 97.90%, train in 1 epoch(s), down to 97.60%" in note
    assert fig.axes[0].get_ylim() == plots.SERIES_RANGE


def test_plot_series_without_anything_off_the_scale_has_no_note():
    fig = plots.plot_series({"step 5": history([99.0] * 15).epochs})
    assert fig.texts[-1].get_text() == ""


def test_plot_seeds_draws_every_accuracy_of_every_sweep():
    def sweep(dtype, seeds):
        return seed_summary(
            [
                dict(seed_run(seed, 99.5, 99.41, dtype), last5_test_acc=[99.41, 99.42, 99.43, 99.44, 99.5])
                for seed in seeds
            ]
        )

    fig = plots.plot_seeds([sweep("float32", range(1, 21)), sweep("bfloat16", range(1, 11))])
    first, second = fig.axes[:2]
    assert sum(len(line.get_xdata()) for line in first.lines if line.get_marker() == "o") == 20 * 5
    assert sum(len(line.get_xdata()) for line in second.lines if line.get_marker() == "o") == 10 * 5
    assert first.get_title() == "float32: 20 of 20 seeds hold"


def test_plot_design_search_adds_the_time_panel_only_with_timings():
    variants = [
        {
            "name": "a",
            "params": 7578,
            "multiply_adds": 5e5,
            "seconds_per_epoch": None,
            "min_last5": [99.1, 99.2],
        },
        {"name": "b", "params": 15490, "multiply_adds": 9e5, "seconds_per_epoch": None, "min_last5": [99.3]},
    ]
    ranking, *costs = plots.plot_design_search(variants).axes
    assert [ax.get_xlabel() for ax in costs] == ["parameters", "multiply-adds per image"]
    assert [line.get_xdata()[0] for line in costs[0].lines if line.get_marker() == "o"] == [7578, 15490]
    variants[1]["seconds_per_epoch"] = 8.0
    labels = [ax.get_xlabel() for ax in plots.plot_design_search(variants).axes]
    assert labels[-1] == "seconds per training epoch"


def test_plot_design_search_ranks_every_variant_by_its_mean_with_each_seed_a_point():
    variants = [
        {"name": "low", "params": 7578, "multiply_adds": 5e5, "seconds_per_epoch": 3.0},
        {"name": "wide", "params": 15490, "multiply_adds": 9e5, "seconds_per_epoch": 6.0},
        {"name": "mid", "params": 7578, "multiply_adds": 5e5, "seconds_per_epoch": 3.0, "step5": True},
    ]
    for v, seeds in zip(variants, ([99.0, 99.1], [99.3], [98.9, 99.2, 99.2]), strict=True):
        v["min_last5"] = seeds
    ranking = plots.plot_design_search(variants).axes[0]
    names = [tick.get_text() for tick in ranking.get_yticklabels()]
    assert names == ["low", "mid (step 5)", "wide"]  # the lowest mean at the bottom, the highest on top
    colours = [matplotlib.colors.to_hex(tick.get_color()) for tick in ranking.get_yticklabels()]
    assert colours[2] != colours[0] == colours[1]  # over step 5's budget: told apart
    seeds = [(x, y) for line in ranking.lines if line.get_marker() == "o" for x, y in line.get_xydata()]
    assert sorted(seeds) == sorted(
        (accuracy, row) for row, v in enumerate(variants[i] for i in (0, 2, 1)) for accuracy in v["min_last5"]
    )
    (star,) = [line for line in ranking.lines if line.get_marker() == "*"]
    assert tuple(star.get_xydata()[0]) == pytest.approx((99.1, 1))


def test_plot_design_search_draws_step5s_recipe_as_a_star_and_names_only_nets_of_their_own():
    variants = [
        {"name": "a", "params": 7578, "multiply_adds": 5e5, "seconds_per_epoch": 3.0, "min_last5": [99.1]},
        {"name": "b", "params": 7854, "multiply_adds": 9e5, "seconds_per_epoch": 6.0, "min_last5": [99.2]},
        {"name": "c", "params": 7854, "multiply_adds": 9e5, "seconds_per_epoch": 5.0, "min_last5": [99.0]},
        {"name": "d", "params": 7578, "multiply_adds": 6e5, "seconds_per_epoch": 4.0, "min_last5": [99.05]},
        {"name": "e", "params": 7578, "multiply_adds": 6e5, "seconds_per_epoch": 4.5, "min_last5": [99.15]},
    ]
    variants[1]["step5"] = True  # c shares b's net, d and e one of their own: named by the ranking only
    ranking, *costs = plots.plot_design_search(variants).axes
    assert [tick.get_text() for tick in ranking.get_yticklabels()] == ["c", "d", "a", "e", "b (step 5)"]
    for ax, key in zip(costs, ("params", "multiply_adds", "seconds_per_epoch"), strict=True):
        stars = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "*"]
        assert stars == [variants[1][key]]
        names = {"a", "b", "c", "d", "e", "step 5"}
        assert sorted(text.get_text() for text in ax.texts if text.get_text() in names) == ["a", "step 5"]
        assert any(text.get_text().startswith("unnamed: 3 recipes on a net shared") for text in ax.texts)


def test_plot_test_frontier_shows_seconds_per_epoch_under_each_timed_net():
    sweeps = [
        {
            "params": 7578,
            "epochs": 15,
            "dilated": 1,
            "minima": [99.4],
            "plain_minima": [99.3],
            "seconds_per_epoch": 11.41,
        },
        {
            "params": 7952,
            "epochs": 15,
            "dilated": 1,
            "minima": [99.5],
            "plain_minima": [99.4],
            "seconds_per_epoch": None,
        },
        {
            "params": 7578,
            "epochs": 30,
            "dilated": 0,
            "minima": [99.5],
            "plain_minima": [99.4],
            "seconds_per_epoch": 9.0,
        },
    ]
    fig = plots.plot_test_frontier(sweeps, "a CPU (AVX2, 2 threads)")
    dilated, by_epochs = fig.axes[:2]
    assert [t.get_text() for t in dilated.get_xticklabels()] == ["7,578\n11.4 s", "7,952"]
    assert [t.get_text() for t in by_epochs.get_xticklabels()] == [
        "30"
    ]  # epochs: the net's seconds are its own
    assert fig._suptitle.get_text().endswith(
        "\nunder each net's parameters: its seconds per training epoch on a CPU (AVX2, 2 threads) (one run)"
    )


def test_render_png_is_the_same_picture_every_time_and_unstamped():
    first, second = (plots.render_png(plots.plot_history, history(), "x") for _ in range(2))
    assert first == second and first.startswith(b"\x89PNG") and b"Software" not in first
    with plt.style.context("dark_background"):  # a local style does not leak into the file
        assert plots.render_png(plots.plot_history, history(), "x") == first


def test_plot_test_frontier_shows_every_seeds_minimum_both_ways_and_the_bars():
    sweeps = [
        {"params": 7578, "epochs": 15, "minima": [99.41, 99.33, 99.45], "plain_minima": [99.35, 99.3, 99.4]},
        {"params": 15490, "epochs": 15, "minima": [99.5, 99.52], "plain_minima": [99.47, 99.45]},
        {"params": 7578, "epochs": 30, "minima": [99.46, 99.47], "plain_minima": [99.43, 99.42]},
        {"params": 9522, "epochs": 15, "dilated": 1, "minima": [99.4, 99.51], "plain_minima": [99.38, 99.5]},
        {
            "params": 7578,
            "epochs": 15,
            "dilated": 1,
            "minima": [99.35, 99.48],
            "plain_minima": [99.33, 99.42],
        },
    ]
    fig = plots.plot_test_frontier([{"dilated": 0} | sweep for sweep in sweeps])
    by_params, dilated, by_epochs = fig.axes[:3]
    assert [t.get_text() for t in by_params.get_xticklabels()] == ["7,578", "15,490"]
    assert [t.get_text() for t in dilated.get_xticklabels()] == ["7,578", "9,522"]
    assert [t.get_text() for t in by_epochs.get_xticklabels()] == ["15", "30"]
    assert "\n" not in fig._suptitle.get_text()  # no timing given: no seconds
    assert [ax.get_title() for ax in fig.axes[:3]] == [
        "round 4's net, 15 epochs",
        "step 5's net, 15 epochs",
        "round 4's net, 7,578 parameters",
    ]
    assert [t.get_text() for t in dilated.texts] == ["2 of 2 hold", "1 of 2 hold"]
    points = [list(line.get_ydata()) for line in by_params.lines if line.get_marker() == "o"]
    assert points == [[99.35, 99.3, 99.4], [99.41, 99.33, 99.45], [99.47, 99.45], [99.5, 99.52]]
    medians = [round(line.get_ydata()[0], 3) for line in by_params.lines if line.get_linewidth() == 2]
    assert medians == [99.35, 99.41, 99.46, 99.51]
    assert [t.get_text() for t in by_params.texts] == ["2 of 3 hold", "2 of 2 hold"]
    assert [t.get_text() for t in by_epochs.texts] == ["2 of 3 hold", "2 of 2 hold"]
    bars = {
        line.get_ydata()[0]
        for line in by_params.lines
        if line.get_color() == "black" and line.get_linestyle() != "-"
    }
    assert bars == {TARGET_ACCURACY, MEDIAN_BAR}
    budget = [
        line.get_xdata()[0]
        for line in by_params.lines
        if line.get_color() == "grey" and line.get_linestyle() == "--"
    ]
    assert budget == [0.5]  # between the columns under step 5's budget and those over it
    assert [
        line.get_xdata()[0]
        for line in dilated.lines
        if line.get_color() == "grey" and line.get_linestyle() == "--"
    ] == [0.5]
