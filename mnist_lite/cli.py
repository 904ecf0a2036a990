"""``python -m mnist_lite``: train, summary, evaluate, seeds, bench, report, draw, reproduce.

Every problem the user can fix ends in one line on stderr, ``error: ...``, and a non-zero
exit: 2 for a bad argument (argparse's convention), 130 for an interrupted run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from mnist_lite.config import DEVICES, LOADERS, MAX_SEED, PRECISIONS
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import SEED_SWEEPS, in_checkout
from mnist_lite.steps import STEPS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SEED}, got {text}")
    return value


def seed_range(text: str) -> list[int]:
    """``1-5`` or ``1,3,7``."""
    try:
        if "-" in text:
            first, last = (seed_number(part) for part in text.split("-"))
            bounds = [first, last]
        else:
            bounds = None
            seeds = [seed_number(part) for part in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"expected a range like 1-5 or a list like 1,3,7, got {text!r}"
        ) from None
    if bounds:
        count = bounds[1] - bounds[0] + 1
        if count > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"{text!r} names {count:,} seeds; at most {MAX_SEEDS} a sweep")
        seeds = list(range(bounds[0], bounds[1] + 1))
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} names no seed")
    if len(set(seeds)) < len(seeds):  # the summary would count it twice
        raise argparse.ArgumentTypeError(f"{text!r} names a seed more than once")
    return seeds


STEP = dict(type=int, choices=sorted(STEPS), metavar="N", help=f"step {min(STEPS)}-{max(STEPS)}")
FIGURE_FORMATS = (".png", ".svg", ".pdf")
MAX_SEEDS = 1000  # a sweep of more would run for days on a CPU
DEVICE = dict(choices=DEVICES, help="auto (default): cuda, else mps, else cpu")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """What every training command accepts."""
    parser.add_argument("--device", **DEVICE)
    parser.add_argument("--loader", choices=LOADERS, help="input pipeline (default: fast)")
    parser.add_argument(
        "--dtype",
        choices=("auto", *PRECISIONS),
        help="precision of the forward pass in training (default float32; bfloat16: autocast, "
        "faster where the hardware has bfloat16 arithmetic; auto: bfloat16 there, else float32)",
    )
    parser.add_argument(
        "--data-dir", help="folder with the MNIST IDX files (default: $MNIST_LITE_DATA, else data/)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_train(args) -> None:
    from mnist_lite.checkpoints import load_checkpoint
    from mnist_lite.device import is_available
    from mnist_lite.engine import fit, recipe_from_checkpoint

    if args.resume:
        out = Path(args.resume)
        checkpoint = load_checkpoint(out / "checkpoint.pt")
        recipe, device = recipe_from_checkpoint(checkpoint, out / "checkpoint.pt"), checkpoint["device"]
        if args.step is not None and args.step != recipe.step:
            raise MnistLiteError(f"{out}: holds a run of step {recipe.step}, not step {args.step}")
        if device not in DEVICES or not is_available(device):
            raise MnistLiteError(
                f"{out}: trained on {device!r}, which this machine lacks; a resumed run stays on its device"
            )
    else:
        overrides = {
            k: getattr(args, k) for k in ("epochs", "lr", "batch_size") if getattr(args, k) is not None
        }
        recipe = dataclasses.replace(STEPS[args.step], **overrides)
        out, device = Path(args.out or f"runs/step{recipe.step}"), args.device or "auto"
    run = fit(
        recipe,
        seed=1 if args.seed is None else args.seed,
        device=device,
        loader=args.loader or "fast",
        dtype=args.dtype or "float32",
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        data_dir=args.data_dir,
        out=out,
        resume=bool(args.resume),
        quiet=args.quiet,
    )
    h = run.history
    print(
        f"step {recipe.step}: {run.result['params']:,} parameters, best test accuracy "
        f"{h.best_test_acc:.2f}%, "
        f"last {len(h.last_test_accs)} epochs at least {h.last5_min_test_acc:.2f}%; wrote "
        f"{out}/result.json and model.pt"
    )


def cmd_summary(args) -> None:
    from torchsummary import summary

    from mnist_lite.models import count_parameters

    model = STEPS[args.step].model()
    summary(model, (1, 28, 28), device="cpu")
    print(f"step {args.step} ({type(model).__name__}): {count_parameters(model):,} parameters")


def cmd_evaluate(args) -> None:
    from mnist_lite.engine import evaluate_checkpoint
    from mnist_lite.steps import shifted_views

    scores, images, recipe = evaluate_checkpoint(args.checkpoint, args.step, args.device, args.data_dir)
    shifted = (
        f" (mean over {shifted_views(recipe.test_time_shift)}; {scores.plain_accuracy:.2f}% the image alone)"
        if recipe.test_time_shift
        else ""
    )
    print(
        f"step {recipe.step}: test loss {scores.loss:.4f}, accuracy {scores.accuracy:.2f}%{shifted} "
        f"on {images:,} test images"
    )


def cmd_seeds(args) -> None:
    from mnist_lite.engine import sweep_seeds

    out = Path(args.out) if args.out else in_checkout(f"results/{SEED_SWEEPS.format(step=args.step)}")
    summary = sweep_seeds(
        STEPS[args.step],
        args.seeds,
        out,
        device=args.device or "auto",
        loader=args.loader or "fast",
        dtype=args.dtype or "float32",
        data_dir=args.data_dir,
        quiet=args.quiet,
    )
    for row in summary["seeds"]:
        print(
            f"seed {row['seed']}: best {row['best_test_acc']:.2f}%, last-5 min "
            f"{row['last5_min_test_acc']:.2f}%"
        )
    print(
        f"final test accuracy {summary['final_test_acc_mean']:.3f} ± {summary['final_test_acc_std']:.3f}%, "
        f"worst last-5 min {summary['worst_last5_min_test_acc']:.2f}%; wrote {out}/summary.json"
    )


def cmd_bench(args) -> None:
    from mnist_lite.bench import bench

    bench(
        STEPS[args.step],
        device=args.device,
        repeats=args.repeats,
        out=Path(args.out) if args.out else in_checkout("results/bench.json"),
        data_dir=args.data_dir,
        train_limit=args.train_limit,
    )


def cmd_report(args) -> None:
    from mnist_lite.report import DOCUMENTS, update_docs

    results = Path(args.results) if args.results else in_checkout("results", "--results")
    update_docs(results=results)
    print(f"updated {', '.join(DOCUMENTS)} from {results}/")


def cmd_draw(args) -> None:
    out = Path(args.out) if args.out else in_checkout("architecture.png")
    if out.suffix.lower() not in FIGURE_FORMATS or out.is_dir():
        raise MnistLiteError(f"--out {out}: expected a file ending in {', '.join(FIGURE_FORMATS)}")
    if not out.parent.is_dir():
        raise MnistLiteError(f"--out {out}: no such folder {out.parent}")
    from mnist_lite.plots import draw_architecture

    draw_architecture(STEPS[args.step].model(), out)
    print(f"wrote {out}")


def cmd_reproduce(args) -> None:
    try:  # the notebook tools are in requirements.txt, not in the package's own dependencies
        from mnist_lite.reproduce import reproduce
    except ModuleNotFoundError as error:
        if (error.name or "mnist_lite").startswith("mnist_lite"):  # a fault of the package itself
            raise
        raise MnistLiteError(f"reproduce needs {error.name}: pip install -r requirements.txt") from None

    reproduce(steps=args.steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_lite", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one step and write result.json and model.pt")
    train.add_argument("--step", **STEP)
    train.add_argument("--epochs", type=positive_int, help="default: the step's recipe (at most 15)")
    train.add_argument("--seed", type=seed_number, help="default: 1")
    train.add_argument(
        "--lr", type=positive_float, help="learning rate (peak of one-cycle); default: the recipe's"
    )
    train.add_argument("--batch-size", type=positive_int, help="default: the recipe's")
    train.add_argument("--train-limit", type=positive_int, help="train on the first N images only")
    train.add_argument("--test-limit", type=positive_int, help="test on the first N images only")
    train.add_argument(
        "--out", help="folder for result.json, model.pt and checkpoint.pt (default: runs/stepN)"
    )
    train.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR")
    add_run_options(train)
    train.set_defaults(func=cmd_train)

    summary = commands.add_parser("summary", help="print a step's torchsummary table and parameter count")
    summary.add_argument("--step", required=True, **STEP)
    summary.set_defaults(func=cmd_summary)

    evaluate = commands.add_parser("evaluate", help="test loss and accuracy of a saved model")
    evaluate.add_argument("checkpoint", help="model.pt or checkpoint.pt")
    evaluate.add_argument(
        "--step",
        help="the model's step (default: from the checkpoint or the result.json beside it)",
        **{k: v for k, v in STEP.items() if k != "help"},
    )
    evaluate.add_argument("--device", default="auto", **DEVICE)
    evaluate.add_argument("--data-dir")
    evaluate.set_defaults(func=cmd_evaluate)

    seeds = commands.add_parser("seeds", help="train a step once per seed and summarise (resumable)")
    seeds.add_argument("--step", default=5, **STEP)
    seeds.add_argument("--seeds", type=seed_range, default=seed_range("1-5"), help="e.g. 1-5 or 1,3,7")
    seeds.add_argument("--out", help="default: results/stepN_seeds")
    add_run_options(seeds)
    seeds.set_defaults(func=cmd_seeds)

    bench = commands.add_parser(
        "bench", help="time training epochs of a step's setups, interleaved, and scoring its test set"
    )
    bench.add_argument("--step", default=5, **STEP)
    bench.add_argument("--device", default="auto", **DEVICE)
    bench.add_argument("--repeats", type=positive_int, default=3)
    bench.add_argument("--out", help="default: results/bench.json")
    bench.add_argument("--data-dir")
    bench.add_argument(
        "--train-limit", type=positive_int, help="time epochs of the first N images, and score N test images"
    )
    bench.set_defaults(func=cmd_bench)

    report = commands.add_parser(
        "report", help="regenerate the generated sections of README.md and docs/ from results/"
    )
    report.add_argument("--results", help="default: the repository's results/")
    report.set_defaults(func=cmd_report)

    draw = commands.add_parser("draw", help="render a step's model as a picture (default: step 5)")
    draw.add_argument("--step", default=5, **STEP)
    draw.add_argument("--out", help="a .png, .svg or .pdf file (default: the checkout's architecture.png)")
    draw.set_defaults(func=cmd_draw)

    reproduce = commands.add_parser("reproduce", help="execute every notebook in place, then report and draw")
    reproduce.add_argument("--steps", type=int, nargs="+", choices=sorted(STEPS), default=sorted(STEPS))
    reproduce.set_defaults(func=cmd_reproduce)
    return parser


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def run_cleanly(command: Callable[[], object]) -> int:
    """Run ``command`` and return the exit status: a problem the user can fix (``MnistLiteError``),
    an interrupt (Ctrl-C, or SIGTERM, which a run treats the same) or a read or write the machine
    refused ends in one line on stderr instead of a traceback. The tools in tools/ run their
    ``main`` through it too."""
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        command()
    except MnistLiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # the machine refused a read or write that no check above foresaw
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.step is None and not args.resume:
        parser.error("train: give --step N, or --resume DIR")
    if args.command == "train" and args.resume:
        fixed = (
            "epochs",
            "lr",
            "batch_size",
            "seed",
            "dtype",
            "train_limit",
            "test_limit",
            "out",
            "loader",
            "device",
        )
        given = [f"--{name.replace('_', '-')}" for name in fixed if getattr(args, name) is not None]
        if given:
            parser.error(f"{', '.join(given)}: not with --resume, the checkpoint fixes them")
    return run_cleanly(lambda: args.func(args))
