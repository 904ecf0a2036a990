"""Train one variant of step 5 and record it in results/experiments/ for docs/experiments.md.

    python tools/experiment.py NAME --seed 1 [--channels 8,16,8,12,14,14,16] [--dropout 0.02]
        [--degrees 7] [--lr 0.1] [--schedule onecycle|step] [--milestones 8,12] [--batch-size 128]

A variant is step 5's recipe with the named changes; anything not named stays as in
``mnist_lite.steps``. The run trains into runs/experiments/NAME_sSEED/ (resumable) and its
result.json, plus the variant, is copied to results/experiments/NAME_sSEED.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from mnist_lite import models
from mnist_lite.data import Augment
from mnist_lite.engine import fit
from mnist_lite.results import REPO, RESULTS, write_json
from mnist_lite.steps import STEPS


def integers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--channels", type=integers, default=models.DropoutNet.channels)
    parser.add_argument("--dropout", type=float, default=models.DropoutNet.dropout)
    parser.add_argument("--padding", type=int, default=models.DropoutNet.padding)
    parser.add_argument("--degrees", type=float, default=STEPS[5].augment.degrees)
    parser.add_argument("--lr", type=float, default=STEPS[5].lr)
    parser.add_argument("--schedule", choices=["constant", "onecycle", "step"], default=STEPS[5].schedule)
    parser.add_argument("--milestones", type=integers, default=STEPS[5].milestones)
    parser.add_argument("--batch-size", type=int, default=STEPS[5].batch_size)
    args = parser.parse_args()
    if len(args.channels) != len(models.DropoutNet.channels):
        parser.error(f"--channels: expected {len(models.DropoutNet.channels)} numbers, got {len(args.channels)}")

    model = type(f"{args.name}", (models.DropoutNet,), {"channels": args.channels, "dropout": args.dropout, "padding": args.padding})
    recipe = dataclasses.replace(
        STEPS[5],
        model=model,
        augment=Augment(args.degrees),
        lr=args.lr,
        schedule=args.schedule,
        milestones=args.milestones,
        batch_size=args.batch_size,
    )
    folder = REPO / "runs" / "experiments" / f"{args.name}_s{args.seed}"
    run = fit(recipe, seed=args.seed, out=folder, resume=(folder / "checkpoint.pt").exists(), quiet=True)
    result = dict(run.result)
    result["variant"] = {
        "name": args.name,
        "architecture": f"LiteNet {len(args.channels)} convs ({','.join(map(str, args.channels))})"
        + (f", padding {args.padding} on conv1-2" if args.padding else ""),
        "dropout": f"Dropout2d {args.dropout:g}" if args.dropout else "none",
        "rotation_degrees": args.degrees,
        "command": " ".join(sys.argv[1:]),
    }
    write_json(RESULTS / "experiments" / f"{args.name}_s{args.seed}.json", result)
    print(f"{args.name} seed {args.seed}: last five {run.history.last_test_accs}, min {run.history.last5_min_test_acc}")


if __name__ == "__main__":
    main()
