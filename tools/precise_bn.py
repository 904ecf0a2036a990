"""Would step 5 score higher with BatchNorm statistics taken on clean images? A paired check on
the validation split, recorded in results/precise_bn/seedS.json for docs/experiments.md.

    python tools/precise_bn.py --seeds 1,2,3,4   # seeds already recorded are skipped

Step 5 trains on rotated and shifted batches, so the running statistics its BatchNorm layers keep
(an average over the last training batches) describe augmented images, while evaluation sees
clean ones. "Precise BatchNorm" (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021)
recomputes them, after training, over a pass of the data the model will be judged on.

Each seed trains step 5's recipe once, float32, as ``tools/design.py`` does (50,000 training
images; scored on the 10,000 held out of them). After every epoch the validation accuracy is taken
three ways: with the running statistics (what ``fit`` records), and with statistics recomputed
on the first 5,120 and on all 50,000 of the clean training images. The training is the same for
all three: train-mode BatchNorm normalises with each batch's own statistics and never reads the
running ones, and recomputing them draws no random numbers. So the comparison is paired: any
difference is the statistics', not a seed's luck.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from mnist_lite.data import make_loaders
from mnist_lite.device import device_name
from mnist_lite.engine import evaluate, make_optimizer, train_epoch
from mnist_lite.paths import PRECISE_BN, RESULTS
from mnist_lite.results import write_json
from mnist_lite.steps import STEPS

CALIBRATION_SIZES = (5_120, 50_000)  # the first N clean training images; 50,000 is all of them


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> None:
    """Set every BatchNorm layer's running mean and variance to their averages over ``images``
    passed through ``model``, batch by batch (a cumulative average: momentum None).

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
    for batch in images.split(batch_size):
        model(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


def paired_run(
    seed: int, sizes=CALIBRATION_SIZES, train_limit: int | None = None, quiet: bool = True
) -> dict:
    """Train step 5's recipe on the validation split with ``seed``; per epoch, the validation
    accuracy with the running statistics and with statistics recomputed on each of ``sizes``."""
    recipe = STEPS[5]
    device = torch.device("cpu")
    torch.manual_seed(seed)  # then the loaders, the model and the optimiser, in fit's order
    train, validation = make_loaders(
        "fast", recipe.batch_size, device, recipe.augment, train_limit=train_limit, eval_split="validation"
    )
    model = recipe.model().to(device)
    optimizer, scheduler = make_optimizer(recipe, model, len(train))
    history = []
    for epoch in range(1, recipe.epochs + 1):
        train_epoch(model, train, optimizer, scheduler, label_smoothing=recipe.label_smoothing, quiet=quiet)
        row = {"epoch": epoch, "running": evaluate(model, validation)[1]}
        trained = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        for size in sizes:
            recompute_batchnorm(model, train.images[:size])  # train.images: normalised, unaugmented
            row[f"recomputed_{size}"] = evaluate(model, validation)[1]
        model.load_state_dict(trained)  # the running statistics back, as the next epoch found them
        history.append(row)
    return {
        "seed": seed,
        "recipe": recipe.as_dict(),
        "calibration_sizes": list(sizes),
        "dtype": "float32",
        "device_name": device_name(device),  # the CPU, its vector instructions and threads
        "torch_version": torch.__version__,
        "history": history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2", help="comma-separated, e.g. 1,2")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one run per core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for seed in (int(s) for s in args.seeds.split(",")):
        out = RESULTS / PRECISE_BN / f"seed{seed}.json"
        if out.exists():  # recorded already: a seed is a few minutes of training, run again to go on
            print(f"seed {seed}: recorded in {out}, skipped")
            continue
        result = paired_run(seed)
        write_json(out, result)
        last = result["history"][-1]
        print(f"seed {seed}: final validation accuracy {last}", flush=True)


if __name__ == "__main__":
    main()
