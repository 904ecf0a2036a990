"""The generated sections of README.md and docs/, written from ``results/`` alone; ``reproduce``.

Each section sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``;
``update_docs`` rewrites what is between them and leaves the hand-written rest alone.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from pathlib import Path

from mnist_lite.errors import MnistLiteError
from mnist_lite.results import REPO, RESULTS, History, load_result, write_atomic, write_json
from mnist_lite.steps import PARAM_BUDGET, STEPS, TARGET_ACCURACY


def _missing(what: str, command: str) -> str:
    return f"_No {what} recorded yet: run `{command}`._"


def steps_section(results: Path) -> str:
    lines = [
        f"| Step | Target | Parameters | Best train | Best test | Min of last 5 | Epochs ≥ {TARGET_ACCURACY}% | Notebook |",
        "|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for step, recipe in STEPS.items():
        path = results / f"step{step}" / "result.json"
        if not path.exists():
            lines.append(f"| {step} | {recipe.target} | | | | | | not run yet |")
            continue
        r = load_result(path)
        limited = r["train_limit"] is not None or r["test_limit"] is not None
        if r["error"] or r["interrupted"] or limited or len(r["history"]) != r["epochs"]:
            raise MnistLiteError(f"{path}: not a complete full run; train step {step} again before the report")
        above = [str(epoch) for epoch in History(r["history"]).epochs_at_or_above(TARGET_ACCURACY)]
        budget = "" if step == 1 or r["params"] < PARAM_BUDGET else " ⚠"
        lines.append(
            f"| {step} | {recipe.target} | {r['params']:,}{budget} | {r['best_train_acc']:.2f}% | "
            f"{r['best_test_acc']:.2f}% | {r['last5_min_test_acc']:.2f}% | {', '.join(above) or 'none'} | "
            f"[{Path(recipe.notebook).name}]({recipe.notebook}) |"
        )
    first = next((load_result(results / f"step{s}") for s in STEPS if (results / f"step{s}" / "result.json").exists()), None)
    if first:
        lines += ["", f"Each row is one run with seed {first['seed']}, {first['epochs']} epochs, on {first['device_name']}."]
    return "\n".join(lines)


def robustness_section(results: Path, folder: str = "step5_seeds", options: str = "") -> str:
    """The seed sweep in ``results/folder``, made by ``seeds --step 5 --seeds 1-5 OPTIONS``."""
    path = results / folder / "summary.json"
    if not path.exists():
        return _missing("seed sweep", f"python -m mnist_lite seeds --step 5 --seeds 1-5{options}")
    s = json.loads(path.read_text())
    lines = [
        f"Step {s['step']} ({s['model']}, {s['params']:,} parameters, {s['epochs']} epochs, {s.get('dtype', 'float32')} forward "
        f"pass) trained once per seed on {s['device_name']}:",
        "",
        f"| Seed | Best test | Final test | Test accuracy, last 5 epochs | Min of last 5 | All last 5 ≥ {TARGET_ACCURACY}% |",
        "|---:|---:|---:|---|---:|:---:|",
    ]
    for row in s["seeds"]:
        held = "yes" if row["last5_min_test_acc"] >= TARGET_ACCURACY else "**no**"
        last = ", ".join(f"{acc:.2f}" for acc in row["last5_test_acc"])
        lines.append(
            f"| {row['seed']} | {row['best_test_acc']:.2f}% | {row['final_test_acc']:.2f}% | {last} | "
            f"{row['last5_min_test_acc']:.2f}% | {held} |"
        )
    lines += [
        "",
        f"Final test accuracy over {len(s['seeds'])} seeds: **{s['final_test_acc_mean']:.2f} ± "
        f"{s['final_test_acc_std']:.2f}%** (mean ± sample std); worst minimum of the last five epochs: "
        f"**{s['worst_last5_min_test_acc']:.2f}%**.",
    ]
    return "\n".join(lines)


def performance_section(results: Path) -> str:
    path = results / "bench.json"
    if not path.exists():
        return _missing("benchmark", "python -m mnist_lite bench")
    runs = json.loads(path.read_text())
    lines = [
        "| Machine | Device | Pipeline | Seconds per epoch (median) | Images per second | Speed-up |",
        "|---|---|---|---:|---:|---:|",
    ]
    for b in runs:
        for name, row in b["pipelines"].items():
            speedup = f"{b['speedup']:.2f}×" if name == "fast" else "1×"
            lines.append(
                f"| {b['device_name']} | {b['device']} | `{name}` | {row['median_seconds']:.2f} | "
                f"{row['images_per_second']:,.0f} | {speedup} |"
            )
        lines.append("")
        lines.append(
            f"Step {b['step']} ({b['model']}), {b['train_images']:,} training images an epoch, batch size "
            f"{b['batch_size']}; {b['repeats']} epochs of each pipeline, interleaved, after a warm-up; "
            f"torch {b['torch_version']}, measured {b['date']}."
        )
    return "\n".join(lines).rstrip()


def reproduce_section(results: Path) -> str:
    path = results / "reproduce.json"
    if not path.exists():
        return _missing("full reproduction", "python -m mnist_lite reproduce")
    r = json.loads(path.read_text())
    per = ", ".join(f"step {n['step']} {n['seconds'] / 60:.1f} min" for n in r["notebooks"])
    machines = ", ".join(sorted({n["device_name"] for n in r["notebooks"]}))
    return (
        f"Executing the step notebooks with full runs took **{r['total_seconds'] / 60:.0f} minutes** "
        f"in all on {machines} ({per})."
    )


def _schedule(recipe: dict) -> str:
    if recipe["schedule"] == "step":
        return f"step ({recipe['lr']:g}, ÷10 after epochs {', '.join(map(str, recipe['milestones']))})"
    return f"{recipe['schedule']} ({recipe['lr']:g})"


def experiments_section(results: Path) -> str:
    runs = [json.loads(p.read_text()) for p in sorted((results / "experiments").glob("*.json"))]
    if not runs:
        return "_No experiments recorded yet._"
    runs.sort(key=lambda r: r["params"])
    lines = [
        "| Variant | Architecture | Parameters | Dropout | Rotation | Schedule (learning rate) | Seed | Best train | "
        "Best test | Last 5 epochs | Min of last 5 |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        v, recipe = r["variant"], r["recipe"]
        last = ", ".join(f"{acc:.2f}" for acc in r["last5_test_acc"])
        lines.append(
            f"| {v['name']} | {v['architecture']} | {r['params']:,} | {v['dropout']} | ±{v['rotation_degrees']:g}° | "
            f"{_schedule(recipe)}, batch {recipe['batch_size']} | {r['seed']} | "
            f"{r['best_train_acc']:.2f}% | {r['best_test_acc']:.2f}% | {last} | {r['last5_min_test_acc']:.2f}% |"
        )
    return "\n".join(lines)


def one_epoch_section(results: Path) -> str:
    """Step 5 trained for one epoch on the first images of the training set, per batch size and rate."""
    paths = sorted((results / "one_epoch_5000").glob("*/seed*/result.json"))
    if not paths:
        return "_No short runs recorded yet: run `python tools/one_epoch.py`._"
    runs = [load_result(p) for p in paths]
    for path, r in zip(paths, runs):
        varied = {"epochs": 1, "batch_size": r["recipe"]["batch_size"], "lr": r["recipe"]["lr"]}
        if r["error"] or r["interrupted"] or len(r["history"]) != 1 or r["recipe"] != dict(STEPS[5].as_dict(), **varied):
            raise MnistLiteError(f"{path}: not a one-epoch run of step 5's recipe; run python tools/one_epoch.py again")
    setting = {(r["train_limit"], r["test_limit"], r["torch_version"]) for r in runs}
    if len(setting) > 1:
        raise MnistLiteError(f"{results / 'one_epoch_5000'}: runs with different limits or torch versions {sorted(setting)}")
    ((train_limit, test_limit, torch_version),) = setting
    variants: dict[tuple, list[dict]] = {}
    for r in runs:
        variants.setdefault((r["recipe"]["batch_size"], r["recipe"]["lr"]), []).append(r)
    default = (STEPS[5].batch_size, STEPS[5].lr)
    lines = [
        "| Batch size | Learning rate | SGD steps | Test accuracy by seed | Best |",
        "|---:|---:|---:|---|---:|",
    ]
    for (batch_size, lr), group in sorted(variants.items(), key=lambda item: (-item[0][0], -item[0][1])):
        group.sort(key=lambda r: r["seed"])
        accs = ", ".join(f"{r['final_test_acc']:.1f}% (seed {r['seed']})" for r in group)
        label = " (the recipe)" if (batch_size, lr) == default else ""
        lines.append(
            f"| {batch_size}{label} | {lr:g} | {math.ceil(train_limit / batch_size)} | {accs} | "
            f"{max(r['final_test_acc'] for r in group):.1f}% |"
        )
    lines += ["", f"One epoch on the first {train_limit:,} training images, tested on the first {test_limit:,}; "
              f"torch {torch_version}."]
    sweep = sorted((load_result(p) for p in (results / "step5_seeds").glob("seed*/result.json")), key=lambda r: r["seed"])
    sweep = [r for r in sweep if r["train_limit"] is None and r["test_limit"] is None and r["history"]]
    if sweep:
        epoch1 = ", ".join(f"{r['history'][0]['test_acc']:.2f}% (seed {r['seed']})" for r in sweep)
        lines.append(f"One epoch on all 60,000 training images, tested on all 10,000 (torch {sweep[0]['torch_version']}): "
                     f"{epoch1}.")
    return "\n".join(lines)


def trials_section(results: Path) -> str:
    path = results / "perf_trials.json"
    if not path.exists():
        return "_No trials recorded yet: run `python tools/perf_trials.py`._"
    t = json.loads(path.read_text())
    lines = [
        f"Measured on {t['device_name']} (CPU flags: {', '.join(t['cpu_flags'])}), {t['model']} at batch size "
        f"{t['batch_size']}: {t['batches_timed']} "
        f"batches per trial after a warm-up (its time, compilation included, is the last column), "
        f"{t['repeats']} interleaved repeats, median scaled to a 60,000-image epoch.",
        "",
        "| Trial | What changes | Seconds per epoch | Relative to default | Warm-up (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, row in t["trials"].items():
        lines.append(
            f"| `{name}` | {row['what']} | {row['median_seconds_per_epoch']:.2f} | {row['vs_default']:.2f}× | "
            f"{row['warmup_seconds']:.1f} |"
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
        lines.append(f"| `{op['op']}` | {op['seconds_per_epoch']:.2f} | {100 * op['seconds_per_epoch'] / total:.0f}% |")
    return "\n".join(lines)


# file (relative to the repository) -> its generated sections
DOCUMENTS = {
    "README.md": {
        "steps": steps_section,
        "robustness": robustness_section,
        "performance": performance_section,
        "reproduce": reproduce_section,
    },
    "docs/experiments.md": {"experiments": experiments_section, "one-epoch": one_epoch_section},
    "docs/performance.md": {
        "trials": trials_section,
        "bfloat16-seeds": functools.partial(
            robustness_section, folder="step5_seeds_bfloat16",
            options=" --dtype bfloat16 --out results/step5_seeds_bfloat16",
        ),
        "performance": performance_section,
    },
}


def render(text: str, results: Path, sections: dict = DOCUMENTS["README.md"]) -> str:
    """``text`` with each of ``sections`` rewritten from ``results``."""
    for name, make in sections.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise MnistLiteError(f"no <!-- generated:{name} --> ... <!-- /generated:{name} --> markers to fill")
        text = pattern.sub(lambda m: m.group(1) + make(results) + "\n" + m.group(2), text)
    return text


def update_docs(repo: Path = REPO, results: Path = RESULTS) -> None:
    """Rewrite the generated sections of every file in ``DOCUMENTS``."""
    for name, sections in DOCUMENTS.items():
        path = repo / name
        write_atomic(path, render(path.read_text(), results, sections).encode())


def reproduce(steps=tuple(STEPS)) -> None:
    """Execute the step notebooks in place (full runs), then the README sections and the figure."""
    import nbformat
    from nbclient import NotebookClient

    from mnist_lite.engine import device_name, pick_device
    from mnist_lite.plots import draw_architecture

    record = RESULTS / "reproduce.json"
    for step in steps:
        path = REPO / STEPS[step].notebook
        print(f"executing {path.relative_to(REPO)} ...", flush=True)
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=None, kernel_name="python3", resources={"metadata": {"path": path.parent}}).execute()
        write_atomic(path, nbformat.writes(notebook).encode())
        seconds = round(time.perf_counter() - start, 1)
        # read just before writing: a step executed again replaces its own timing only
        timings = {t["step"]: t for t in json.loads(record.read_text())["notebooks"]} if record.exists() else {}
        timings[step] = {"step": step, "seconds": seconds, "device_name": device_name(pick_device())}
        notebooks = [timings[s] for s in sorted(timings)]
        write_json(record, {"notebooks": notebooks, "total_seconds": round(sum(t["seconds"] for t in notebooks), 1)})
    update_docs()
    draw_architecture(STEPS[5].model(), REPO / "architecture.png")
    print("notebooks executed; README and architecture.png regenerated")
