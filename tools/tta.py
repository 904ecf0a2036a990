"""Would step 5 score higher if each image were classified from a few shifted or rotated copies
of it (test-time augmentation)? A paired check on the validation split, recorded in
results/tta/seedS.json for docs/experiments.md; then, for the way the validation split chose,
the same on the test set (results/tta_test/seedS.json); and, in round 21, step 5's recipe since
round 18 scored with its shifts and with rotations added (results/tta_step5/seedS.json).

    python tools/tta.py --seeds 1,2,3,4   # seeds already recorded are skipped
    python tools/tta.py --on-test --seeds 1,2,3,4
    python tools/tta.py --on-test --summarise   # summary_WAY.json: each way in the target's terms
    python tools/tta.py --step5 --seeds 1-8

Each seed trains step 5's recipe from round 4 to round 18 (``steps.ROUND4_PLAIN``) once in float32
on 50,000 training images and is scored on the 10,000 held out of them (``tools/design.py``'s
split). After every epoch each validation image is classified ``TTA_WAYS``' ways: as it is
("plain"), and by the mean of the softmax probabilities over the views a way names. Scoring draws
no random numbers and changes no weights or BatchNorm statistics, so every way scores the same
training run: the comparison is paired, any difference is the views', not a seed's luck. Each row
also keeps the accuracy as ``evaluate`` scores it ("fit"), which the tests hold equal to ``fit``'s
and to "plain".

``--on-test`` trains the way the final runs do (all 60,000 training images) and scores the test
set, plainly and with ``ON_TEST_WAYS`` only: a measurement of what the validation split's choice
gives on the test set, not a way to choose.

``--step5`` trains step 5's recipe since round 18, without its test-time shifts
(``steps.STEP5_PLAIN``), in the same way on the validation split, and scores ``STEP5_WAYS``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
from paired import train_and_score

from mnist_lite import steps
from mnist_lite.cli import positive_int, run_cleanly, seed_range
from mnist_lite.data import EVAL_BATCH_SIZE, affine
from mnist_lite.engine import evaluate
from mnist_lite.errors import MnistLiteError
from mnist_lite.models import count_parameters
from mnist_lite.paths import RESULTS, TTA, TTA_STEP5, TTA_TEST
from mnist_lite.results import History, load_result, seed_summary, write_json
from mnist_lite.steps import Recipe

PIXEL = 1 / 28  # a shift of one pixel, as a fraction of the image's width
# a view: (degrees counter-clockwise, shift right, shift down), the shifts in pixels
IDENTITY = (0.0, 0, 0)
SHIFTS = [(0.0, dx, dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
DIAGONALS = [(0.0, dx, dy) for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
ROTATIONS = [(6.0, 0, 0), (-6.0, 0, 0)]
TTA_WAYS = {  # key -> the views whose probabilities are averaged
    "plain": [IDENTITY],
    "shifts": [IDENTITY, *SHIFTS],
    "shifts_diagonal": [IDENTITY, *SHIFTS, *DIAGONALS],
    "rotations": [IDENTITY, *ROTATIONS],
}
# what --on-test scores: as it is, and the way with the highest mean final accuracy on the validation
# split (results/tta: 99.27% with 4 shifts; 8 shifts tied it on the mean minimum of the last 5 epochs)
ON_TEST_WAYS = {way: TTA_WAYS[way] for way in ("plain", "shifts")}
# what --step5 scores (round 21): step 5's recipe since round 18 as it scores (its four shifts), and
# with round 11's two rotations added to them; the rule for adopting them, fixed before the runs, is
# report.design.TTA_STEP5_CHECK.rule
STEP5_WAYS = {
    **{way: TTA_WAYS[way] for way in ("plain", "shifts", "rotations")},
    "shifts_rotations": [IDENTITY, *SHIFTS, *ROTATIONS],
}


def view(images: torch.Tensor, degrees: float, dx: int, dy: int) -> torch.Tensor:
    """``images`` rotated by ``degrees`` and shifted by whole pixels, black filling in (a shift of
    whole pixels samples the grid's own points: copies of pixels, up to float rounding)."""
    if (degrees, dx, dy) == IDENTITY:
        return images
    n = len(images)
    return affine(images, torch.full((n,), degrees), torch.tensor([[dx * PIXEL, dy * PIXEL]]).expand(n, 2))


@torch.inference_mode()
def tta_accuracies(
    model, images: torch.Tensor, labels: torch.Tensor, ways: dict = TTA_WAYS
) -> dict[str, float]:
    """Accuracy (%) of ``model`` on ``images`` each of ``ways``: the class of highest mean
    softmax probability over the way's views."""
    model.eval()

    def probabilities(v: tuple) -> torch.Tensor:
        return torch.cat([model(view(batch, *v)).softmax(1) for batch in images.split(EVAL_BATCH_SIZE)])

    of_view = {v: probabilities(v) for v in dict.fromkeys(v for views in ways.values() for v in views)}
    accuracies = {}
    for way, views in ways.items():
        predicted = torch.stack([of_view[v] for v in views]).mean(0).argmax(1)
        accuracies[way] = 100 * (predicted == labels).sum().item() / len(labels)
    return accuracies


def paired_run(
    seed: int, eval_split: str = "validation", train_limit: int | None = None, log=None, step5: bool = False
) -> dict:
    """Train round 4's recipe of step 5 with ``seed`` on the training images of ``eval_split``; per
    epoch, the accuracy on that split as ``fit`` scores it and each of ``TTA_WAYS``
    (``ON_TEST_WAYS`` on the test set). With ``step5``, step 5's recipe since round 18 without its
    test-time shifts (``steps.STEP5_PLAIN``) and ``STEP5_WAYS``, on the validation split only."""
    if step5 and eval_split != "validation":
        raise MnistLiteError("step 5's scoring ways are compared on the validation split only")
    ways = STEP5_WAYS if step5 else ON_TEST_WAYS if eval_split == "test" else TTA_WAYS

    def score(model, train, scored) -> dict:
        return {
            "fit": evaluate(model, scored).accuracy,
            **tta_accuracies(model, scored.images, scored.labels, ways),
        }

    # looked up when called so that a test can shorten it
    record = train_and_score(seed, score, eval_split, train_limit, log, steps.STEP5_PLAIN if step5 else None)
    return {**record, "views": {way: [list(v) for v in views] for way, views in ways.items()}}


def summarise(folder: Path) -> None:
    """FOLDER/summary_WAY.json for each way of the runs recorded in ``folder``: ``seed_summary``
    of every seed's accuracies that way, as if they were a sweep's, so that each way reads in the
    target's terms (seeds that hold, median and worst minimum, final mean and spread)."""
    # seedS.json files only: a stray seed1_old.json set aside by hand is not one of the runs
    paths = [path for path in folder.glob("seed*.json") if re.fullmatch(r"seed[1-9][0-9]*\.json", path.name)]
    runs = sorted((load_result(path) for path in paths), key=lambda run: run["seed"])
    if not runs:
        raise MnistLiteError(f"{folder}: no seedS.json to summarise; run the seeds first")
    settings = ("views", "device_name", "torch_version")  # seed_summary checks recipe, precision and split
    if any(run[key] != runs[0][key] for run in runs for key in settings):
        raise MnistLiteError(
            f"{folder}: the runs differ in {', '.join(settings)}; one summary cannot cover them"
        )
    recipe = Recipe.from_dict(runs[0]["recipe"])
    for way in runs[0]["views"]:
        as_sweep = []
        for run in runs:
            history = History(run["history"])
            accuracies, last = [row[way] for row in history.epochs], history.last(way)
            as_sweep.append(
                {
                    "step": recipe.step,
                    "model": recipe.model.name,
                    "params": count_parameters(recipe.model()),
                    "epochs": len(accuracies),
                    "dtype": run["dtype"],
                    "eval_split": run["eval_split"],
                    "device_name": run["device_name"],
                    "recipe": run["recipe"],
                    "seed": run["seed"],
                    "best_test_acc": max(accuracies),
                    "final_test_acc": accuracies[-1],
                    "last5_test_acc": last,
                    "last5_min_test_acc": min(last),
                }
            )
        write_json(folder / f"summary_{way}.json", seed_summary(as_sweep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default="1,2", help="e.g. 1,2 or 1-8")
    parser.add_argument(
        "--on-test", action="store_true", help="train on all 60,000 images, score the test set"
    )
    parser.add_argument(
        "--step5",
        action="store_true",
        help="step 5's recipe since round 18, scored with its shifts and with rotations added (round 21)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads (default 1: one run per core)"
    )
    parser.add_argument(
        "--summarise", action="store_true", help="write summary_WAY.json of the recorded runs"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.step5 and args.on_test:
        parser.error("--step5 compares ways on the validation split only; it takes no --on-test")
    eval_split, folder = (
        ("test", TTA_TEST) if args.on_test else ("validation", TTA_STEP5 if args.step5 else TTA)
    )
    if args.summarise:
        summarise(RESULTS / folder)
        return
    for seed in args.seeds:
        out = RESULTS / folder / f"seed{seed}.json"
        if out.exists():  # recorded already: a seed is a few minutes of training, run again to go on
            print(f"seed {seed}: recorded in {out}, skipped")
            continue
        result = paired_run(
            seed,
            eval_split,
            log=lambda row, seed=seed: print(f"seed {seed}: {row}", flush=True),
            step5=args.step5,
        )
        write_json(out, result)


if __name__ == "__main__":
    sys.exit(run_cleanly(main))
