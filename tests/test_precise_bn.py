"""tools/precise_bn.py and its section: BatchNorm statistics recomputed on clean and on augmented
images, paired with the running statistics of the same training run."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import load_tool, paired_check_record, quiet
from torch import nn

from mnist_lite import steps
from mnist_lite.engine import fit
from mnist_lite.errors import MnistLiteError
from mnist_lite.report import design
from mnist_lite.steps import ROUND4_PLAIN, STEP5_PLAIN, STEPS

precise_bn = load_tool("precise_bn")


def load(results):
    return design.load_paired(results, design.PRECISE_BN_CHECK)


def section_text(results) -> str:
    return design.paired_text(load(results), design.PRECISE_BN_CHECK)


def small_net(dropout: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), dropout, nn.Conv2d(4, 3, 3), nn.BatchNorm2d(3)
    )


def test_recomputed_statistics_are_those_of_the_images_with_dropout_off():
    images = torch.randn(100, 1, 10, 10) * 2 + 1  # batches of at most 32: four of 25, not 32, 32, 32, 4
    net = small_net(nn.Dropout2d(0.5))
    net.train()
    net(torch.randn(8, 1, 10, 10))  # running statistics of something else, to be replaced
    rng = torch.get_rng_state()
    precise_bn.recompute_batchnorm(net, images, batch_size=32)
    assert torch.equal(torch.get_rng_state(), rng)  # no random numbers drawn: training goes on the same
    assert not any(module.training for module in net.modules())  # left ready to evaluate
    assert [net[1].momentum, net[5].momentum] == [0.1, 0.1]  # the training's averaging is back
    with torch.no_grad():
        features = net[0](images)  # what the first BatchNorm sees
    # every image weighs the same: the mean over all of them, not a mean of unequal batches' means
    assert torch.allclose(net[1].running_mean, features.mean((0, 2, 3)), atol=1e-5)
    batch_vars = [batch.transpose(0, 1).flatten(1).var(1) for batch in features.split(25)]
    assert torch.allclose(net[1].running_var, torch.stack(batch_vars).mean(0), atol=1e-5)
    # dropout off: the same statistics as the net without it, though p = 0.5 would change them
    twin = small_net(nn.Identity())
    precise_bn.recompute_batchnorm(twin, images, batch_size=32)
    for name, tensor in twin.state_dict().items():
        assert torch.allclose(tensor.float(), net.state_dict()[name].float(), atol=1e-5), name


def test_a_paired_run_trains_as_fit_does_and_scores_each_epoch_every_way(monkeypatch):
    """The pairing the tool relies on: its "running" column is what ``fit`` records for the same
    seed, so recomputing the statistics after each epoch changed nothing in the training."""
    recipe = dataclasses.replace(ROUND4_PLAIN, epochs=2)  # fit scores as the tool's plain way does
    monkeypatch.setattr(steps, "ROUND4_PLAIN", recipe)
    run = precise_bn.paired_run(3, train_limit=2048)
    recorded = fit(
        recipe, seed=3, train_limit=2048, eval_split="validation", device="cpu", quiet=True, log=quiet
    )
    running = [row["running"] for row in run["history"]]
    assert running == [row["test_acc"] for row in recorded.history.epochs]
    assert min(running) > 20  # learning, not at chance: a degenerate run would agree by accident
    assert [set(row) for row in run["history"]] == [{"epoch", *design.PRECISE_BN_CHECK.ways}] * 2
    assert run["recipe"] == recipe.as_dict()
    assert (run["train_limit"], run["calibration_images"]) == (2048, 2048)
    # the statistics matter: somewhere a recomputed score differs from the running one
    assert any(row["clean"] != row["running"] or row["augmented"] != row["running"] for row in run["history"])


def paired_record(seed: int, running: float, recomputed: float, **changes) -> dict:
    """A record of tools/precise_bn.py whose scores rise by 0.01 an epoch from ``running`` (running
    statistics) and from ``recomputed`` (both kinds of recomputed statistics)."""
    starts = {"running": running, "clean": recomputed, "augmented": recomputed}
    return paired_check_record(seed, starts, calibration_images=50_000, **changes)


def write_records(tmp_path, *records):
    folder = tmp_path / "precise_bn"
    folder.mkdir()
    for record in records:
        (folder / f"seed{record['seed']}.json").write_text(json.dumps(record))
    return tmp_path


def test_the_section_shows_each_seed_the_means_and_the_changes(tmp_path):
    results = write_records(tmp_path, paired_record(1, 99.0, 99.1), paired_record(2, 99.2, 99.1))
    text = section_text(results)
    # seed 1: last five epochs 11-15 at 99.0 + epoch/100, so its minimum is 99.11 and its final 99.15
    assert "| 1 | 99.11% | 99.21% | 99.21% | 99.15% | 99.25% | 99.25% |" in text
    assert "| 2 | 99.31% | 99.21% | 99.21% | 99.35% | 99.25% | 99.25% |" in text
    assert "| Mean | 99.21% | 99.21% | 99.21% | 99.25% | 99.25% | 99.25% |" in text
    # seed 1 gains 0.1 at every epoch and seed 2 loses as much: no change on average, and not "-0.00"
    for epochs in ("1 to 8 (at the rate of 0.2)", "11 to 15 (the last 5)"):
        assert (
            f"Epochs {epochs}: recomputing the statistics changed the validation accuracy by +0.00 points "
            "on clean images, +0.00 points on augmented images (the mean over 2 seeds)." in text
        )
    assert "torch 2.3.0, on a CPU (AVX512, 1 thread)" in text and "over all 50,000 of its" in text


def test_no_paired_runs_says_how_to_make_them(tmp_path):
    assert section_text(tmp_path).startswith("_No paired BatchNorm check")


@pytest.mark.parametrize(
    "records, message",
    [
        ([paired_record(1, 99.0, 99.1, recipe=STEPS[4].as_dict())], "not round 4's recipe of step 5"),
        # today's step 5 is not the recipe these runs measure
        ([paired_record(1, 99.0, 99.1, recipe=STEP5_PLAIN.as_dict())], "not round 4's recipe of step 5"),
        ([paired_record(1, 99.0, 99.1, train_limit=256)], "not all the training images"),
        ([paired_record(1, 99.0, 99.1, eval_split="test")], "not all the training images"),
        ([paired_record(1, 99.0, 99.1, history=paired_record(1, 99, 99)["history"][:3])], "3 epochs scored"),
        (
            [paired_record(1, 99.0, 99.1), paired_record(2, 99.0, 99.1, torch_version="2.4")],
            "another machine",
        ),
        ([paired_record(1, 99.0, 99.1) | {"seed": "1"}], "not a valid paired BatchNorm run"),
        ([paired_record(1, 99.0, 99.1, history=[{"epoch": 1, "running": 99.0}])], "no 'clean'"),
    ],
)
def test_the_section_refuses_runs_it_cannot_show(tmp_path, records, message):
    with pytest.raises(MnistLiteError, match=message):
        load(write_records(tmp_path, *records))


def test_a_record_under_another_seeds_name_is_refused(tmp_path):
    results = write_records(tmp_path, paired_record(1, 99.0, 99.1))
    (results / "precise_bn" / "seed1.json").rename(results / "precise_bn" / "seed7.json")
    with pytest.raises(MnistLiteError, match="seed 1: not what its name says"):
        load(results)
