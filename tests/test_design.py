"""tools/design.py: what each variant trains is what its recorded results say it trained."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import REPO, load_tool

from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters, multiply_adds
from mnist_lite.report import design as report_design
from mnist_lite.results import write_machine_run
from mnist_lite.steps import (
    DESIGN_BASELINE,
    PARAM_BUDGET,
    ROUND4_PLAIN,
    ROUND4_STEP5,
    STEP5_BUDGET,
    STEP5_PLAIN,
    STEPS,
)

design = load_tool("design")
RECORDED = sorted((REPO / "results").glob("design*/*/seed*.json"))  # design/, design_gpu/, design_xeon/


@pytest.mark.results
@pytest.mark.parametrize("path", RECORDED, ids=lambda path: "/".join(path.parts[-3:]))
def test_every_recorded_variant_is_what_the_tool_trains_today(path):
    """A variant's record and its definition must not drift apart (they did once, when ONE_POOL
    leaned on Lite's defaults and those changed)."""
    run = json.loads(path.read_text())
    assert run["variant"] == path.parent.name and run["variant"] in design.VARIANTS
    recorded = {"ema_decay": 0.0} | run["recipe"]  # the first rounds ran before recipes had an EMA field
    assert recorded == design.variant_recipe(run["variant"]).as_dict()
    assert run["changes"] == sorted(design.VARIANTS[run["variant"]])
    assert run["eval_split"] == "validation" and run["seed"] == int(path.stem.removeprefix("seed"))
    # each folder is one machine's round, as its table in docs/experiments.md says
    machine = {"design_gpu": ("cuda", "float32"), "design_xeon": ("cpu", "float32")}
    assert (run["device"], run["dtype"]) == machine.get(path.parent.parent.name, ("cpu", "bfloat16"))


def test_variants_start_from_the_previous_recipe_and_two_of_them_are_step5_then_and_now():
    assert design.variant_recipe("previous") == DESIGN_BASELINE
    assert design.variant_recipe("batch256_rotate12_translate") == ROUND4_PLAIN  # round 4's pick
    assert design.variant_recipe("step5_dilated1") == STEP5_PLAIN  # round 18's


def test_the_shifts_variants_add_step5s_shifts_and_nothing_else_to_the_frontiers_nearest_points():
    # step 5's net widened: its recipe has the shifts already (below)
    shifted = [
        name
        for name in design.VARIANTS
        if name.endswith("_shifts") and not name.startswith("step5_dilated1_")
    ]
    assert shifted == [
        "wider_16_24_shifts",
        "step5_epochs30_shifts",
        "wider_14_18_shifts",
        "wider_16_20_shifts",
        "previous_shifts",
    ]
    for name in shifted:
        base = design.variant_recipe(name.removesuffix("_shifts"))
        assert base.test_time_shift == 0
        shift = ROUND4_STEP5.test_time_shift
        assert design.variant_recipe(name) == dataclasses.replace(base, test_time_shift=shift)


def test_round_18_dilates_the_last_convolution_of_round_4s_pick_with_or_without_silu():
    dilated = design.variant_recipe("step5_dilated1")
    assert dilated == dataclasses.replace(
        ROUND4_PLAIN, model=dataclasses.replace(ROUND4_PLAIN.model, dilated=1)
    )
    silu = dataclasses.replace(dilated.model, activation="silu")
    assert design.variant_recipe("step5_silu_dilated1") == dataclasses.replace(dilated, model=silu)


@pytest.mark.parametrize("widths", [(14, 18, 18, 18), (13, 17, 17, 17)])
def test_step5s_net_widened_is_step5s_recipe_and_nothing_else(widths):
    wider = design.variant_recipe(f"step5_dilated1_wider_{widths[0]}_{widths[1]}_shifts")
    assert wider.model == dataclasses.replace(STEPS[5].model, low_resolution=widths)
    assert wider == dataclasses.replace(STEPS[5], model=wider.model)
    assert STEP5_BUDGET < count_parameters(wider.model()) < PARAM_BUDGET


def test_the_frontier_point_within_the_budget_is_round_20s_nearest_miss_with_step5s_shifts():
    point = design.variant_recipe("step5_dilated1_13_16_16_17_shifts")
    assert point == dataclasses.replace(
        STEPS[5], model=design.variant_recipe("step5_dilated1_13_16_16_17").model
    )
    assert STEPS[5].test_time_shift and count_parameters(point.model()) == 7_952 < STEP5_BUDGET


@pytest.mark.parametrize(
    "name, full, low, params",
    [
        ("first6", (6,), (12, 16, 16, 16), 7_340),
        ("first6_12_17_17_16", (6,), (12, 17, 17, 16), 7_893),
        ("13_16_16_17", (8,), (13, 16, 16, 17), 7_952),
    ],
)
def test_round_20_moves_step5s_channels_within_its_budget_and_changes_nothing_else(name, full, low, params):
    moved = design.variant_recipe(f"step5_dilated1_{name}")
    model = dataclasses.replace(STEP5_PLAIN.model, full_resolution=full, low_resolution=low)
    assert moved == dataclasses.replace(STEP5_PLAIN, model=model)
    assert count_parameters(model()) == params < STEP5_BUDGET  # the counts docs/experiments.md gives


def test_round_19_warms_up_step5s_recipe_and_changes_nothing_else():
    warmed = design.variant_recipe("step5_dilated1_warmup2")
    assert warmed == dataclasses.replace(STEP5_PLAIN, warmup_epochs=2)


def test_round_13_changes_the_optimizer_of_step5s_training_and_adams_rate_only():
    step5 = design.variant_recipe("batch256_rotate12_translate")
    assert design.variant_recipe("step5_nesterov") == dataclasses.replace(step5, optimizer="nesterov")
    for name, lr in (("step5_adam01", 0.01), ("step5_adam003", 0.003)):
        assert design.variant_recipe(name) == dataclasses.replace(step5, optimizer="adam", lr=lr)


# the frontier's sweeps, and the same sweeps trained again on another machine (--out)
FRONTIER = sorted(
    [
        *(REPO / "results").glob("frontier/*/seed*/result.json"),
        *(REPO / "results").glob("replicate/frontier/*/seed*/result.json"),
        *(REPO / "results").glob("replicate_*/frontier/*/seed*/result.json"),
    ]
)


@pytest.mark.results
@pytest.mark.parametrize("path", FRONTIER, ids=lambda path: f"{path.parent.parent.name}/{path.parent.name}")
def test_every_frontier_sweep_is_a_variant_on_the_test_set(path):
    """``--on-test`` writes results/frontier/NAME_DTYPE: each run there trained variant NAME
    in DTYPE on all the training images and was scored on the test set."""
    name, dtype = path.parent.parent.name.rsplit("_", 1)
    run = json.loads(path.read_text())
    assert name in design.VARIANTS
    assert run["recipe"] == design.variant_recipe(name).as_dict()
    assert (run["dtype"], run["eval_split"], run["train_limit"]) == (dtype, "test", None)


def test_a_frontier_sweep_goes_to_its_own_folder_or_to_out(monkeypatch, tmp_path, capsys):
    swept = []
    monkeypatch.setattr(
        design, "sweep_seeds", lambda recipe, seeds, out, dtype: swept.append((recipe, seeds, out, dtype))
    )
    monkeypatch.setattr("sys.argv", ["design.py", "step5_dilated1", "--on-test", "--seeds", "1-2"])
    design.main()
    again = tmp_path / "replicate_avx2" / "frontier" / "step5_dilated1_float32"
    monkeypatch.setattr(
        "sys.argv", ["design.py", "step5_dilated1", "--on-test", "--seeds", "3", "--out", str(again)]
    )
    design.main()
    recipe = design.variant_recipe("step5_dilated1")
    assert swept == [
        (recipe, [1, 2], design.RESULTS / "frontier" / "step5_dilated1_float32", "float32"),
        (recipe, [3], again, "float32"),
    ]
    for argv in (
        ["step5_dilated1", "--seeds", "1"],
        ["step5_dilated1", "previous", "--on-test"],
        ["step5_dilated1", "--on-test", "--time"],
        ["step5_dilated1", "--on-test", "--summarise", str(tmp_path)],
    ):
        monkeypatch.setattr("sys.argv", ["design.py", *argv, "--out", str(again)])
        with pytest.raises(SystemExit) as exit_:
            design.main()
        assert exit_.value.code == 2 and len(swept) == 2
        assert "error: --out is the folder of one NAME's sweep with --on-test" in capsys.readouterr().err


def test_the_report_times_step5s_sweeps_by_the_variants_that_train_as_they_do():
    """The frontier figure's seconds for step 5's sweeps, today's and round 4's, are those of the
    design variants named for them: the same recipes but for the test-time shifts, which cost
    at scoring only; a frontier sweep frontier/NAME_DTYPE trains NAME."""
    for sweep, step5 in [("step5_seeds", STEPS[5]), ("round4_step5/step5_seeds", ROUND4_STEP5)]:
        variant = report_design.sweep_variant(sweep)
        assert design.variant_recipe(variant) == dataclasses.replace(step5, test_time_shift=0), sweep
    assert report_design.sweep_variant("frontier/wider_14_18_shifts_float32") == "wider_14_18_shifts"


def test_an_unknown_variant_is_a_one_line_usage_error_before_any_training(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["design.py", "previous", "no_such_variant", "--seeds", "1"])
    monkeypatch.setattr(design, "fit", lambda *args, **kwargs: pytest.fail("trained before checking names"))
    with pytest.raises(SystemExit) as exit_:
        design.main()
    assert exit_.value.code == 2
    assert "error: no variant 'no_such_variant'; run without NAME to list them" in capsys.readouterr().err


def test_timing_named_variants_times_them_alone_in_float32_into_this_machines_frontier_entry(
    monkeypatch, tmp_path, capsys
):
    """--time NAME NAME replaces this machine's run in results/frontier/speed.json and keeps
    another machine's beside it; a file it could not add to is refused before any timing."""
    calls = []

    def timed(names, dtype, repeats):
        calls.append((names, dtype, repeats))
        return {"device_name": "this CPU", "variants": dict.fromkeys(names, len(calls))}

    monkeypatch.setattr(design, "time_variants", timed)
    monkeypatch.setattr(design, "RESULTS", tmp_path)
    out = tmp_path / "frontier" / "speed.json"
    out.parent.mkdir()
    out.write_text(json.dumps([{"device_name": "this CPU"}, {"device_name": "another CPU"}]))
    monkeypatch.setattr("sys.argv", ["design.py", "--time", "previous", "step5_dilated1", "--repeats", "2"])
    design.main()
    assert calls == [(["previous", "step5_dilated1"], "float32", 2)]
    assert json.loads(out.read_text()) == [  # replaced where it was, so the tables keep their order
        {"device_name": "this CPU", "variants": {"previous": 1, "step5_dilated1": 1}},
        {"device_name": "another CPU"},
    ]
    out.write_text('{"device_name": "this CPU"}')  # one run, as the file held before it kept one per machine
    with pytest.raises(
        MnistLiteError, match=r"speed.json: not a list of frontier timing runs; move it away$"
    ):
        design.main()
    assert len(calls) == 1
    monkeypatch.setattr("sys.argv", ["design.py", "--time", "previous", "--dtype", "bfloat16"])
    with pytest.raises(SystemExit) as exit_:
        design.main()
    assert exit_.value.code == 2 and len(calls) == 1
    assert "error: --time NAME times frontier points in float32" in capsys.readouterr().err


def test_timing_without_names_times_every_recorded_variant_into_design_speed(monkeypatch, tmp_path):
    """--time alone times the variants with runs under results/design* (bfloat16 by default, as the
    search ran) and writes results/design_speed.json, one run, whatever machine it was."""
    calls = []

    def timed(names, dtype, repeats):
        calls.append((names, dtype, repeats))
        return {"device_name": "this CPU", "variants": {}}

    monkeypatch.setattr(design, "time_variants", timed)
    monkeypatch.setattr(design, "RESULTS", tmp_path)
    for folder, name in [("design", "previous"), ("design_xeon", "step5_dilated1"), ("design", "retired")]:
        (tmp_path / folder / name).mkdir(parents=True)
        (tmp_path / folder / name / "seed1.json").write_text("{}")
    monkeypatch.setattr("sys.argv", ["design.py", "--time"])
    design.main()
    assert calls == [(["previous", "step5_dilated1"], "bfloat16", 3)]  # "retired" is no variant
    assert json.loads((tmp_path / "design_speed.json").read_text()) == {
        "device_name": "this CPU",
        "variants": {},
    }


def test_summarise_refuses_a_sweep_with_a_run_still_training(monkeypatch, tmp_path):
    """--summarise reads every seed's result.json; one written mid-run (it is rewritten after each
    epoch) must not pass for a finished run whose last five epochs are the ones it has so far."""
    for seed, epochs in [(1, 15), (2, 9)]:
        history = [{"epoch": epoch} for epoch in range(1, epochs + 1)]
        run = {"seed": seed, "recipe": {"epochs": 15}, "history": history}
        (tmp_path / f"seed{seed}").mkdir()
        (tmp_path / f"seed{seed}" / "result.json").write_text(json.dumps(run))
    monkeypatch.setattr("sys.argv", ["design.py", "--summarise", str(tmp_path)])
    with pytest.raises(MnistLiteError, match=r": seed 2 not finished; nothing summarised$"):
        design.main()
    assert not (tmp_path / "summary.json").exists()


def test_summarise_says_in_one_line_why_it_cannot(tmp_path):
    with pytest.raises(MnistLiteError, match=r": no seedS/result.json to summarise; sweep the seeds first$"):
        design.summarise(tmp_path)
    for stray in ("seed_old", "seed01"):  # folders set aside by hand are not seeds of the sweep
        (tmp_path / stray).mkdir()
        (tmp_path / stray / "result.json").write_text("{}")
    with pytest.raises(MnistLiteError, match=r": no seedS/result.json to summarise; sweep the seeds first$"):
        design.summarise(tmp_path)
    (tmp_path / "seed1").mkdir()
    (tmp_path / "seed1" / "result.json").write_text("{not json")
    with pytest.raises(MnistLiteError, match=r"seed1/result.json: not a valid result file \(not JSON"):
        design.summarise(tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_timing_trains_each_variant_as_fit_would(monkeypatch, tmp_path):
    """``--time`` trains with the variant's weight average and label smoothing, and times a variant
    with clean last epochs on both loaders, each weighted by its share of the run's epochs."""
    calls = []  # per train_epoch call: (variant's label smoothing, averaged?, augmented?)

    def recording_train_epoch(model, loader, optimizer, scheduler, *, averaged, label_smoothing, **options):
        calls.append((label_smoothing, averaged is not None, bool(loader.augment)))

    monkeypatch.setattr(design, "train_epoch", recording_train_epoch)
    names = ["one_pool_ema", "one_pool_smooth", "step5_clean_last3"]
    assert sorted(design.time_variants(names, "float32", repeats=2, images=256)["variants"]) == sorted(names)
    # a warm-up and two repeats, the variants interleaved; the clean variant: augmented, then clean
    per_round = [(0.0, True, True), (0.1, False, True), (0.0, False, True), (0.0, False, False)]
    assert calls == per_round * 3
    (tmp_path / "frontier").mkdir()
    run = design.time_variants(names[:1], "float32", repeats=1, images=256)
    write_machine_run(tmp_path / "frontier" / "speed.json", [], run)  # as --time NAME writes it
    timed = report_design.load_frontier_speed(tmp_path)[0]["variants"]  # and as the report reads it
    model = design.variant_recipe(names[0]).model()
    assert list(timed) == names[:1]
    assert (timed[names[0]]["params"], timed[names[0]]["multiply_adds"]) == (
        count_parameters(model),
        multiply_adds(model),
    )
    # the file docs/experiments.md's frontier timing table is generated from
    table = report_design.frontier_speed_table(report_design.load_frontier_speed(tmp_path))
    seconds = timed[names[0]]["seconds_per_epoch"]
    assert (
        f"| `one_pool_ema` | {count_parameters(model):,} | {multiply_adds(model):,} | "
        f"{timed[names[0]]['median_seconds_per_epoch']:.2f} | {min(seconds):.2f} to {max(seconds):.2f} |"
    ) in table.splitlines()


def test_the_frontier_timing_table_shows_each_point_in_the_runs_order(tmp_path):
    def timed(params, seconds):
        return {
            "params": params,
            "multiply_adds": params * 70,
            "seconds_per_epoch": seconds,
            "median_seconds_per_epoch": sorted(seconds)[1],
        }

    speed = {
        "device_name": "a CPU (AVX512, 2 threads)",
        "torch_version": "2.3.0",
        "dtype": "float32",
        "images_timed": 7680,
        "repeats": 3,
        "variants": {
            "step5_dilated1": timed(7578, [7.5, 7.0, 8.25]),
            "wider_16_24_shifts": timed(15490, [11, 10, 12]),
        },
    }
    other = dict(
        speed,
        device_name="another CPU (AVX2, 2 threads)",
        variants={"step5_dilated1": timed(7578, [9, 8, 10])},
    )
    (tmp_path / "frontier").mkdir()
    (tmp_path / "frontier" / "speed.json").write_text(json.dumps([speed, other]))
    assert report_design.frontier_speed_table(report_design.load_frontier_speed(tmp_path)).splitlines() == [
        "`python tools/design.py --time step5_dilated1 wider_16_24_shifts --repeats 3` trains each on 7,680 "
        "images per round, the 2 interleaved, with a float32 forward pass on a CPU (AVX512, 2 threads) "
        "(torch 2.3.0), and scales to a 60,000-image epoch. Medians of the 3 rounds, with their range:",
        "",
        "| Variant | Parameters | Multiply-adds per image | Seconds per epoch | Range |",
        "|---|---:|---:|---:|---|",
        "| `step5_dilated1` (step 5's training) | 7,578 | 530,460 | 7.50 | 7.00 to 8.25 |",
        "| `wider_16_24_shifts` | 15,490 | 1,084,300 | 11.00 | 10.00 to 12.00 |",
        "",  # each machine's run a table of its own, in the file's order
        "`python tools/design.py --time step5_dilated1 --repeats 3` trains each on 7,680 "
        "images per round, the 1 interleaved, with a float32 forward pass on another CPU (AVX2, 2 threads) "
        "(torch 2.3.0), and scales to a 60,000-image epoch. Medians of the 3 rounds, with their range:",
        "",
        "| Variant | Parameters | Multiply-adds per image | Seconds per epoch | Range |",
        "|---|---:|---:|---:|---|",
        "| `step5_dilated1` (step 5's training) | 7,578 | 530,460 | 9.00 | 8.00 to 10.00 |",
    ]
    del speed["variants"]["step5_dilated1"]["multiply_adds"]
    (tmp_path / "frontier" / "speed.json").write_text(json.dumps([speed, other]))
    with pytest.raises(MnistLiteError, match="not a valid frontier timing file.*multiply_adds"):
        report_design.load_frontier_speed(tmp_path)
    assert report_design.frontier_speed_table(report_design.load_frontier_speed(tmp_path / "none")) == (
        "_No frontier timing recorded yet: run `python tools/design.py --time NAME NAME`._"
    )
