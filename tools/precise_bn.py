"""Would step 5 score higher with BatchNorm statistics recomputed after each epoch? A paired check
on the validation split, recorded in results/precise_bn/seedS.json for docs/experiments.md.

    python tools/precise_bn.py --seeds 1,2,3,4   # seeds already recorded are skipped

BatchNorm evaluates with running statistics, averages over the last training batches, which
(1) lag behind weights that are still changing and (2) describe rotated and shifted images, while
evaluation sees clean ones. "Precise BatchNorm" (Wu and Johnson, "Rethinking 'Batch' in
BatchNorm", 2021) recomputes them for the final weights over a pass of training images.

Each seed trains step 5's recipe from round 4 to round 18 (``steps.ROUND4_PLAIN``) once in float32
on 50,000 training images and is scored on the 10,000 held out of them (``tools/design.py``'s
split). After every epoch the validation accuracy is taken three ways
(``mnist_lite.report.design.PRECISE_BN_CHECK.ways``): with the running statistics (what ``fit``
records), with statistics recomputed on all 50,000 training images as they are, and on the same
images augmented as in training. The clean pass removes the lag (and the noise of averaging only
the last batches) and the shift; the augmented one the lag and noise alone.

The training is the same for all three: train-mode BatchNorm normalises with each batch's own
statistics and never reads the running ones, and recomputing them leaves the random number
generator where it was. So the comparison is paired: any difference is the statistics', not a
seed's luck.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
from paired import train_and_score
from torch import nn

from mnist_lite.cli import positive_int, run_cleanly, seed_range
from mnist_lite.data import augment_batch
from mnist_lite.engine import evaluate
from mnist_lite.paths import PRECISE_BN, RESULTS
from mnist_lite.results import write_json


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> None:
    """Set every BatchNorm layer's running mean and variance to their averages over ``images``
    passed through ``model``, in batches of nearly equal size (with momentum None each batch
    weighs the same, so equal batches make each image weigh the same).

    Unlike ``torch.optim.swa_utils.update_bn``, which runs the whole model in training mode, only
    the BatchNorm layers train here: dropout stays off, as it is when the model is evaluated.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    for batch in images.tensor_split(math.ceil(len(images) / batch_size)):
        model(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


def paired_run(seed: int, train_limit: int | None = None) -> dict:
    """Train round 4's recipe of step 5 on the validation split with ``seed``; per epoch, the
    validation accuracy with each of ``PRECISE_BN_CHECK.ways``' statistics."""
    calibration_images = []  # how many training images the statistics were recomputed on

    def score(model, train, validation) -> dict:
        calibration_images.append(len(train.images))
        row = {"running": evaluate(model, validation).accuracy}
        trained = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        with torch.random.fork_rng(devices=[]):  # the augmentation's draws are not the training's
            augmented = augment_batch(train.images, train.augment)
        for way, images in (("clean", train.images), ("augmented", augmented)):  # PRECISE_BN_CHECK.ways' keys
            recompute_batchnorm(model, images)
            row[way] = evaluate(model, validation).accuracy
        model.load_state_dict(trained)  # the running statistics back, as the next epoch found them
        return row

    record = train_and_score(seed, score, train_limit=train_limit)
    return {**record, "calibration_images": calibration_images[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default="1,2", help="e.g. 1,2 or 1-8")
    parser.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads (default 1: one run per core)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for seed in args.seeds:
        out = RESULTS / PRECISE_BN / f"seed{seed}.json"
        if out.exists():  # recorded already: a seed is a few minutes of training, run again to go on
            print(f"seed {seed}: recorded in {out}, skipped")
            continue
        result = paired_run(seed)
        write_json(out, result)
        print(f"seed {seed}: final validation accuracy {result['history'][-1]}", flush=True)


if __name__ == "__main__":
    sys.exit(run_cleanly(main))
