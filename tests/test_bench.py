"""The benchmark: step 5's setups and its previous recipe on real MNIST, interleaved, recorded per
machine; a bad bench.json is refused before any epoch is timed."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest
import torch

from mnist_lite import bench as bench_module
from mnist_lite.bench import bench
from mnist_lite.cli import main
from mnist_lite.config import Augment
from mnist_lite.device import has_native_bfloat16
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.steps import DESIGN_BASELINE, STEPS


@pytest.fixture
def epochs_timed(monkeypatch):
    """The order in which the benchmark trains its setups, by (loader kind, parameter count, dtype)."""
    calls = []
    real = bench_module.train_epoch

    def train_epoch(model, loader, *args, dtype, **kwargs):
        kind = "torchvision" if isinstance(loader, torch.utils.data.DataLoader) else "fast"
        calls.append((kind, count_parameters(model), dtype))
        return real(model, loader, *args, dtype=dtype, **kwargs)

    monkeypatch.setattr(bench_module, "train_epoch", train_epoch)
    return calls


def test_bench_times_every_setup_interleaved_and_keeps_other_machines(tmp_path, capsys, epochs_timed):
    out = tmp_path / "bench.json"
    out.write_text(json.dumps([{"device_name": "Some GPU", "setups": {}}]))
    assert (
        main(
            [
                "bench",
                "--step",
                "5",
                "--device",
                "cpu",
                "--repeats",
                "2",
                "--train-limit",
                "256",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    runs = json.loads(out.read_text())
    assert len(runs) == 2 and runs[0] == {
        "device_name": "Some GPU",
        "setups": {},
    }  # another machine's run, kept
    run = runs[1]
    assert run["train_images"] == 256 and run["repeats"] == 2 and run["step"] == 5 and run["device"] == "cpu"
    names = ["classic", "default"] + (["bfloat16"] if has_native_bfloat16(torch.device("cpu")) else [])
    names += ["previous_step5", "no_augmentation"]
    assert list(run["setups"]) == names
    expected = {  # loader, dtype, recipe
        "classic": ("torchvision", "float32", STEPS[5]),
        "default": ("fast", "float32", STEPS[5]),
        "bfloat16": ("fast", "bfloat16", STEPS[5]),
        "previous_step5": ("fast", "float32", DESIGN_BASELINE),
        "no_augmentation": ("fast", "float32", dataclasses.replace(STEPS[5], augment=Augment())),
    }
    for name in names:
        row = run["setups"][name]
        loader, dtype, recipe = expected[name]
        assert (row["loader"], row["dtype"], row["model"]) == (loader, dtype, recipe.model.name)
        assert row["architecture"] == json.loads(json.dumps(recipe.as_dict()["architecture"]))
        assert row["params"] == count_parameters(recipe.model()) and row["batch_size"] == recipe.batch_size
        assert row["augment"] == dataclasses.asdict(recipe.augment)
        assert len(row["seconds"]) == 2 and all(s > 0 for s in row["seconds"])
        assert row["median_seconds"] == pytest.approx(statistics.median(row["seconds"]), abs=1e-3)
        assert row["images_per_second"] == round(256 / row["median_seconds"], 1)
    assert run["setups"]["previous_step5"]["params"] != run["setups"]["default"]["params"]
    setups = run["setups"]
    assert run["vs_default"] == {
        name: round(setups[name]["median_seconds"] / setups["default"]["median_seconds"], 3) for name in names
    }
    # one warm-up epoch of each, then the repeats, always in the same order
    one_round = [
        (expected[name][0], count_parameters(expected[name][2].model()), getattr(torch, expected[name][1]))
        for name in names
    ]
    assert epochs_timed == one_round * 3
    assert bench_module.summary_text(run["setups"], 256) in capsys.readouterr().out
    # step 5 scores with test-time shifts: the test set scored both ways, with the same limit
    scoring = run["scoring"]
    assert scoring["test_images"] == 256 and scoring["test_time_shift"] == STEPS[5].test_time_shift
    for way in ("plain", "shifted"):
        assert len(scoring[f"{way}_seconds"]) == 2 and all(s > 0 for s in scoring[f"{way}_seconds"])
        assert scoring[f"median_{way}_seconds"] == pytest.approx(
            statistics.median(scoring[f"{way}_seconds"]), abs=1e-3
        )
    assert scoring["median_shifted_seconds"] > scoring["median_plain_seconds"]  # five views against one


def test_bench_scores_with_both_ways_only_a_recipe_that_shifts(monkeypatch, epochs_timed):
    """Scoring is the same ``evaluate`` as a run's: with the recipe's shift and without, alternating
    after a warm-up of each; a recipe without shifts is not scored at all."""
    shifts = []
    real = bench_module.evaluate
    monkeypatch.setattr(bench_module, "evaluate", lambda *args: shifts.append(args[2]) or real(*args))
    assert "scoring" not in bench(STEPS[4], device="cpu", repeats=1, train_limit=256) and shifts == []
    bench(STEPS[5], device="cpu", repeats=2, train_limit=256)
    assert shifts == [0, STEPS[5].test_time_shift] * 3


def test_only_step5_is_timed_against_its_previous_recipe(tmp_path, epochs_timed):
    run = bench(STEPS[4], device="cpu", repeats=1, train_limit=256)
    assert "previous_step5" not in run["setups"] and "default" in run["setups"]
    assert "no_augmentation" not in run["setups"]  # step 4 does not augment: it would time the default again


def test_bench_replaces_this_machines_earlier_run(tmp_path, epochs_timed):
    out = tmp_path / "bench.json"
    first = bench(STEPS[5], device="cpu", repeats=1, out=out, train_limit=256)
    second = bench(STEPS[5], device="cpu", repeats=1, out=out, train_limit=256)
    runs = json.loads(out.read_text())
    assert len(runs) == 1 and runs[0] == json.loads(json.dumps(second))
    assert first["device_name"] == second["device_name"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("folder", "a folder, not a .json file; move it away or choose another --out"),
        (b"", "not a benchmark file (JSONDecodeError)"),
        (b'[{"device_name": "x"', "not a benchmark file (JSONDecodeError)"),
        (b"\xff\xfe\x00garbage", "not a benchmark file (UnicodeDecodeError)"),
        (b'{"device_name": "x"}', "not a list of benchmark runs"),
        (b"[1, 2]", "not a list of benchmark runs"),
        (b'[{"setups": {}}]', "not a list of benchmark runs"),
    ],
    ids=["folder", "empty", "truncated", "not-utf8", "object", "numbers", "no-device-name"],
)
def test_a_bad_bench_json_is_refused_before_any_epoch(tmp_path, epochs_timed, content, message):
    out = tmp_path / "bench.json"
    if content == "folder":
        out.mkdir()
    else:
        out.write_bytes(content)
    with pytest.raises(MnistLiteError) as caught:
        bench(STEPS[5], device="cpu", repeats=1, out=out, train_limit=256)
    assert str(caught.value).startswith(f"{out}: {message}")
    assert epochs_timed == []  # refused before the benchmark, not after it
    if content != "folder":
        assert out.read_bytes() == content


def test_interleaved_warms_each_up_once_then_takes_turns():
    calls, logged = [], []
    clock = iter(range(1, 100))

    def time_once(name):
        calls.append(name)
        return float(next(clock))

    seconds = bench_module.interleaved(time_once, ["a", "b"], 2, log=lambda *row: logged.append(row))
    assert calls == ["a", "b", "a", "b", "a", "b"]  # warm-ups untimed, then the turns
    assert seconds == {"a": [3.0, 5.0], "b": [4.0, 6.0]}
    assert logged == [(1, "a", 3.0), (1, "b", 4.0), (2, "a", 5.0), (2, "b", 6.0)]


def test_the_console_summary_takes_every_figure_from_the_medians():
    """A recorded run: 60,000 / 33.547 s is 1,788.5 images per second recorded, 1,789 in truth, and
    33.547 / 12.001 is 2.795 in ``vs_default``, 2.7953 in truth: each rounded again would tip."""
    rows = {
        name: {"loader": loader, "dtype": "float32", "median_seconds": seconds}
        for name, loader, seconds in (("classic", "torchvision", 33.547), ("default", "fast", 12.001))
    }
    assert bench_module.summary_text(rows, 60_000).splitlines() == [
        "setup           loader       dtype      s/epoch   images/s",
        "classic         torchvision  float32      33.55      1,789",
        "default         fast         float32      12.00      5,000",
        "classic takes 2.80x the default's time",
    ]
