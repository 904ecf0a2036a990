"""Speed and time: the benchmark (README and docs/performance.md), the trials of speed-ups
(docs/performance.md), and the run that re-executes every notebook (README)."""

from __future__ import annotations

from mnist_lite.report.common import missing_note
from mnist_lite.steps import shifted_views


def performance_table(runs: list[dict] | None) -> str:
    if runs is None:
        return missing_note("benchmark", "python -m mnist_lite bench")
    lines = []
    for b in runs:  # a table per machine, each with its own header: its ratios hold on it alone
        lines += [
            "| Machine | Setup | Parameters | Batch | Pipeline | Forward pass | Seconds per epoch (median) | "
            "Images per second | Time against the default |",
            "|---|---|---:|---:|---|---|---:|---:|---:|",
        ]
        default = b["setups"]["default"]["median_seconds"]
        for name, row in b["setups"].items():
            lines.append(
                f"| {b['device_name']} | `{name}` | {row['params']:,} | {row['batch_size']} | "
                f"`{row['loader']}` | {row['dtype']} | {row['median_seconds']:.2f} | "
                f"{b['train_images'] / row['median_seconds']:,.0f} | {row['median_seconds'] / default:.2f}× |"
            )
        lines += [
            "",
            f"Step {b['step']}, {b['train_images']:,} training images an epoch; {b['repeats']} epochs of "
            f"each setup, interleaved, after a warm-up; torch {b['torch_version']}, measured {b['date']}."
            + speed_targets(b)
            + scoring_text(b),
            "",
        ]
    return "\n".join(lines).rstrip()


def scoring_text(b: dict) -> str:
    """What scoring the test set costs beside a training epoch, with the recipe's test-time
    shifts and without them, from the same run."""
    if "scoring" not in b:
        return ""
    c = b["scoring"]
    return (
        f" Scoring the {c['test_images']:,} test images after an epoch takes "
        f"{c['median_shifted_seconds']:.2f} s over {shifted_views(c['test_time_shift'])}, and "
        f"{c['median_plain_seconds']:.2f} s for each image "
        f"alone (the default's model, medians of {b['repeats']}, interleaved); the bars above time training."
    )


# step 5's speed bars: an epoch in at most this share of the time of the recipe before the design
# search, and the classic pipeline at least this many times slower than the default
AT_MOST_OF_PREVIOUS = 0.5
CLASSIC_AT_LEAST = 3


def speed_targets(b: dict) -> str:
    """Step 5's two speed bars, read from the same run: the default against the recipe before the
    design search and the classic pipeline against the default, each from the recorded medians (the
    run's own ``vs_default`` is rounded to three places, and rounding that again could tip the
    second)."""
    seconds = {name: row["median_seconds"] for name, row in b["setups"].items()}
    if "previous_step5" not in seconds or "classic" not in seconds:
        return ""
    against_previous = seconds["default"] / seconds["previous_step5"]
    classic = seconds["classic"] / seconds["default"]

    def verdict(met: bool) -> str:
        return "met" if met else "missed"

    return (
        f" The default takes **{against_previous:.2f}×** the time of step 5's recipe before the design "
        f"search (`previous_step5`; the bar: at most {AT_MOST_OF_PREVIOUS:.2f}×, "
        f"{verdict(against_previous <= AT_MOST_OF_PREVIOUS)}), and the classic pipeline takes "
        f"**{classic:.2f}×** the default's (the bar: at least {CLASSIC_AT_LEAST}×, "
        f"{verdict(classic >= CLASSIC_AT_LEAST)})." + pipeline_floor(seconds)
    )


def pipeline_floor(seconds: dict[str, float]) -> str:
    """The most a faster pipeline could bring the classic pipeline's ratio to: its time over the
    default's without augmentation (``no_augmentation``), from the same run's median ``seconds``."""
    if "no_augmentation" not in seconds:
        return ""
    best_ratio = seconds["classic"] / seconds["no_augmentation"]
    reach = (
        "so in this run no faster pipeline alone would have met the bar with this model in float32"
        if best_ratio < CLASSIC_AT_LEAST
        else "so a faster pipeline could still meet the bar"
    )
    return (
        f" Without its augmentation (`no_augmentation`) the default's epoch takes "
        f"{seconds['no_augmentation']:.2f} s, about the least a pipeline could cost this model; the "
        f"classic pipeline takes **{best_ratio:.2f}×** that, the most a faster pipeline could reach, {reach}."
    )


def reproduce_text(r: dict | None) -> str:
    if r is None:
        return missing_note("full reproduction", "python -m mnist_lite reproduce")
    per = ", ".join(f"step {n['step']} {n['seconds'] / 60:.1f} min" for n in r["notebooks"])
    machines = ", ".join(sorted({n["device_name"] for n in r["notebooks"]}))
    return (
        f"Executing the step notebooks with full runs took **{r['total_seconds'] / 60:.0f} minutes** "
        f"in all on {machines} ({per})."
    )


def trials_text(t: dict | None) -> str:
    if t is None:
        return "_No trials recorded yet: run `python tools/perf_trials.py`._"
    lines = [
        f"Measured on {t['device_name']} (CPU flags: {', '.join(t['cpu_flags'])}), {t['model']} at batch "
        f"size {t['batch_size']}: {t['batches_timed']} "
        f"batches per trial after a warm-up (its time, compilation included, is the last column), "
        f"{t['repeats']} interleaved repeats, median scaled to a 60,000-image epoch.",
        "",
        "| Trial | What changes | Seconds per epoch | Relative to default | Warm-up (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, row in t["trials"].items():
        lines.append(
            f"| `{name}` | {row['what']} | {row['median_seconds_per_epoch']:.2f} | "
            f"{row['vs_default']:.2f}× | {row['warmup_seconds']:.1f} |"
        )
    profile = t["profile"]
    total, conv = profile["total_seconds_per_epoch"], profile["convolution_seconds_per_epoch"]
    lines += [
        "",
        f"Where the `default` trial's time goes (torch.profiler, self time per operator, scaled to an epoch; "
        f"{total:.2f} s in all under the profiler, of which the convolutions' forward and backward passes "
        f"take {conv:.2f} s, {100 * conv / total:.0f}%):",
        "",
        "| Operator | Seconds per epoch | Share |",
        "|---|---:|---:|",
    ]
    for op in profile["top_ops"]:
        share = 100 * op["seconds_per_epoch"] / total
        lines.append(f"| `{op['op']}` | {op['seconds_per_epoch']:.2f} | {share:.0f}% |")
    peak = t["matmul_peak_gflops"][t["default_dtype"]]
    lines += [
        "",
        f"Against this CPU's peak: a training epoch is about {t['flop_per_epoch'] / 1e9:.0f} GFLOP "
        f"(three times the forward pass's multiply-adds, two operations each), so the `default` trial runs "
        f"at **{t['default_gflops']:.1f} GFLOP/s**, where a 2048x2048 matrix product in {t['default_dtype']} "
        f"reaches {peak:.1f} GFLOP/s on the same cores ("
        + ", ".join(f"{name} {value:.1f}" for name, value in t["matmul_peak_gflops"].items())
        + f"): {100 * t['default_gflops'] / peak:.0f}% of that practical peak.",
    ]
    return "\n".join(lines)
