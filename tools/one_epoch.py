"""Train step 5's recipe from before the design search for one epoch on the first 5,000 training
images, per batch size and learning rate, seeds 1-3; record each run in results/one_epoch_5000/
for docs/experiments.md.

    python tools/one_epoch.py

Each run is what ``python -m mnist_lite train --step 5 --epochs 1 --train-limit 5000 --test-limit 1000
--batch-size B --lr LR --seed S`` was with the recipe before the design search (``DESIGN_BASELINE``),
in process, float32. Finished runs are skipped, so it can be re-run.
"""

from __future__ import annotations

import dataclasses
import sys

from mnist_lite.cli import run_cleanly
from mnist_lite.engine import fit
from mnist_lite.paths import ONE_EPOCH, RESULTS
from mnist_lite.steps import DESIGN_BASELINE

RECIPE = DESIGN_BASELINE
B = RECIPE.batch_size
# (batch size, learning rate): the recipe's, other rates at its batch size, and smaller batches
# that take more steps through the same 5,000 images
VARIANTS = [
    (B, 0.2),
    (B, RECIPE.lr),
    (B, 0.05),
    (B, 0.02),
    (B // 2, 0.1),
    (B // 2, 0.05),
    (B // 4, 0.05),
    (B // 4, 0.025),
]
SEEDS = (1, 2, 3)


def main() -> None:
    for batch_size, lr in VARIANTS:
        recipe = dataclasses.replace(RECIPE, epochs=1, batch_size=batch_size, lr=lr)
        for seed in SEEDS:
            out = RESULTS / ONE_EPOCH / f"b{batch_size}_lr{lr:g}" / f"seed{seed}"
            if (out / "model.pt").exists():
                continue
            run = fit(
                recipe,
                seed=seed,
                dtype="float32",
                train_limit=5000,
                test_limit=1000,
                out=out,
                quiet=True,
                log=lambda line: None,
            )
            print(
                f"batch {batch_size:3d}, lr {lr:<5g} seed {seed}: {run.history.epochs[-1]['test_acc']:.1f}%",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(run_cleanly(main))
