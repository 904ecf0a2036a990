"""Results files: written atomically, read back with the numbers the README and notebooks show."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mnist_lite.errors import MnistLiteError
from mnist_lite.steps import LAST_EPOCHS, TARGET_ACCURACY


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place.

    A crash at any moment leaves the old file or the new one, never a torn one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise MnistLiteError(f"{path.parent}: cannot write here ({error.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private: give it the mode a plain open() would
        os.replace(tmp, path)
        _fsync_folder(path.parent)  # the rename itself survives a crash only once the folder is on disk
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):  # gone already if the rename happened just before
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise MnistLiteError(
                f"{path}: could not write it ({error.strerror}); the old file is unchanged"
            ) from None
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory file descriptors (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the file itself is already on disk
    finally:
        os.close(fd)


def ensure_writable(folder) -> None:
    """Fail now, not after the first epoch, when ``folder`` cannot take our files."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise MnistLiteError(f"{folder}: cannot write here ({error.strerror})") from None


def write_json(path, obj) -> None:
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_machine_runs(path: Path, what: str, fix: str) -> list[dict]:
    """The runs already in ``path``, a file of timings that keeps one run per machine (its
    ``device_name``): read before a new run is timed, so that a file it could not add to is refused
    before the work, not after it. ``what`` names the file in messages, ``fix`` says what to do."""
    if path.is_dir():
        raise MnistLiteError(f"{path}: a folder, not a .json file; {fix}")
    if not path.exists():
        return []
    try:
        runs = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise MnistLiteError(
            f"{path}: cannot read it ({error.strerror or type(error).__name__}); {fix}"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MnistLiteError(f"{path}: not a {what} file ({type(error).__name__}); {fix}") from None
    if not isinstance(runs, list) or not all(
        isinstance(run, dict) and isinstance(run.get("device_name"), str) for run in runs
    ):
        raise MnistLiteError(f"{path}: not a list of {what} runs; {fix}")
    return runs


def write_machine_run(path: Path, runs: list[dict], run: dict) -> None:
    """Write ``runs`` to ``path`` with ``run`` in place of the one from the same machine, where that
    one was (the tables generated from the file keep their order), or after the others: a run on
    another machine (a GPU beside a CPU, another CPU) is kept beside it, not overwritten."""
    machines = [kept["device_name"] for kept in runs]
    if run["device_name"] in machines:
        runs = [run if kept["device_name"] == run["device_name"] else kept for kept in runs]
    else:
        runs = [*runs, run]
    write_json(path, runs)


def save_torch(path, obj) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


# what a run's seconds time (each epoch's ``seconds``, their sum ``train_seconds``): the training and
# the scoring of the evaluation images after it (``engine.run_epoch``)
SECONDS_LABEL = "time to train and score"


@dataclass
class History:
    """Per-epoch records of a run: ``{epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds}``,
    and ``plain_test_acc`` (each image scored alone) for a recipe scored with test-time shifts.

    Accuracies are percentages.
    """

    epochs: list[dict] = field(default_factory=list)

    def append(self, row: dict) -> None:
        self.epochs.append(row)

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def best_train_acc(self) -> float:
        return max(row["train_acc"] for row in self.epochs)

    @property
    def best_test_acc(self) -> float:
        return max(row["test_acc"] for row in self.epochs)

    def last(self, column: str = "test_acc") -> list[float]:
        """``column``'s values in the last ``LAST_EPOCHS`` epochs, the ones the target judges."""
        return [row[column] for row in self.epochs[-LAST_EPOCHS:]]

    @property
    def last_test_accs(self) -> list[float]:
        return self.last("test_acc")

    @property
    def last5_min_test_acc(self) -> float:
        return min(self.last_test_accs)

    def epochs_at_or_above(self, accuracy: float) -> list[int]:
        return [row["epoch"] for row in self.epochs if row["test_acc"] >= accuracy]

    @property
    def seconds(self) -> float:
        """What ``train_seconds`` records, named ``SECONDS_LABEL`` wherever it is shown."""
        return sum(row["seconds"] for row in self.epochs)

    def summary(self) -> dict:
        """The headline numbers ``result.json`` carries beside the history."""
        if not self.epochs:
            return {}
        return {
            "best_train_acc": self.best_train_acc,
            "best_test_acc": self.best_test_acc,
            "last5_test_acc": self.last_test_accs,
            "last5_min_test_acc": self.last5_min_test_acc,
            "final_test_acc": self.epochs[-1]["test_acc"],
            "train_seconds": round(self.seconds, 2),
        }


def load_result(path) -> dict:
    """The JSON object in ``path`` (a ``result.json``, or the folder holding one); anything else,
    missing, unreadable, not UTF-8, not JSON or not an object, is one ``MnistLiteError``."""
    path = Path(path)
    try:
        if path.is_dir():
            path = path / "result.json"
        result = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise MnistLiteError(f"{path}: no result file; run the step first") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        reason = "not UTF-8" if isinstance(error, UnicodeDecodeError) else f"not JSON: {error}"[:200]
        raise MnistLiteError(f"{path}: not a valid result file ({reason})") from None
    except OSError as error:
        raise MnistLiteError(f"{path}: cannot read it ({error.strerror or type(error).__name__})") from None
    if not isinstance(result, dict):
        kind = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(
            type(result), "a number"
        )
        raise MnistLiteError(f"{path}: not a valid result file (JSON {kind}, not an object)")
    return result


def run_kind(record: dict) -> tuple:
    """What runs must share to be summed up together, or for a sweep to go on with one: the recipe,
    the precision, the split evaluated and the data (loader, image limits). ``record`` is a
    ``result.json``, or a checkpoint's settings with its recipe."""
    return (
        record.get("dtype", "float32"),  # runs before the --dtype option trained in float32
        record.get("eval_split", "test"),
        record.get("loader", "fast"),
        record.get("train_limit"),
        record.get("test_limit"),
        json.dumps(record.get("recipe"), sort_keys=True),  # none recorded: of no recipe this version trains
    )


def seed_summary(results: list[dict]) -> dict:
    """Per seed its best and last-five minimum test accuracy; over seeds the final accuracy's
    mean and (sample) standard deviation, the median and the worst last-five minimum, how many
    seeds hold the target in every one of the last five epochs, and the exact lower confidence
    bound on the probability that a fresh seed holds it."""
    if len({run_kind(r) for r in results}) > 1:
        raise MnistLiteError(
            "the seed runs differ in recipe or precision or evaluation split or data (loader, image "
            "limits); one summary cannot cover them"
        )
    finals = [r["final_test_acc"] for r in results]
    mean = sum(finals) / len(finals)
    std = (sum((a - mean) ** 2 for a in finals) / (len(finals) - 1)) ** 0.5 if len(finals) > 1 else 0.0
    holding = sum(holds_target(r) for r in results)
    first = results[0]
    shift = first["recipe"].get("test_time_shift", 0)
    return {
        "step": first["step"],
        "model": first["model"],
        "params": first["params"],
        "epochs": first["epochs"],
        "dtype": first.get("dtype", "float32"),  # runs before the --dtype option trained in float32
        "eval_split": first.get("eval_split", "test"),  # runs before the validation split: the test set
        "device_name": first["device_name"],
        "seeds": [
            {
                "seed": r["seed"],
                "best_test_acc": r["best_test_acc"],
                "final_test_acc": r["final_test_acc"],
                "last5_test_acc": r["last5_test_acc"],
                "last5_min_test_acc": r["last5_min_test_acc"],
                **({"last5_min_plain_test_acc": _plain_minimum(r)} if shift else {}),
            }
            for r in results
        ],
        "final_test_acc_mean": round(mean, 3),
        "final_test_acc_std": round(std, 3),
        "median_last5_min_test_acc": round(statistics.median(r["last5_min_test_acc"] for r in results), 3),
        "worst_last5_min_test_acc": min(r["last5_min_test_acc"] for r in results),
        "seeds_holding": holding,
        "hold_confidence": HOLD_CONFIDENCE,
        "hold_probability_lower_bound": round(clopper_pearson_lower(holding, len(results)), 4),
        **(_plain_summary(results, shift) if shift else {}),
    }


def _plain_minimum(run: dict) -> float:
    """The lowest of a run's last five accuracies with each image scored as it is: for a run
    scored with test-time shifts, what the images alone gave (``plain_test_acc``)."""
    return min(History(run["history"]).last("plain_test_acc"))


def _plain_summary(results: list[dict], shift: int) -> dict:
    """For runs scored with test-time shifts: over seeds, how many hold the target scored
    without them, the median and the worst minimum, so that what the shifts add can be read off."""
    minima = [_plain_minimum(r) for r in results]
    return {
        "test_time_shift": shift,
        "seeds_holding_plain": sum(minimum >= TARGET_ACCURACY for minimum in minima),
        "median_last5_min_plain_test_acc": round(statistics.median(minima), 3),
        "worst_last5_min_plain_test_acc": min(minima),
    }


HOLD_CONFIDENCE = 0.95  # of the one-sided lower bound on the probability that a fresh seed holds the target


def holds_target(run: dict) -> bool:
    """Whether a run (or a seed's row of a summary) held ``TARGET_ACCURACY`` in every one of its
    last ``LAST_EPOCHS`` epochs: the project's claim, per seed."""
    return run["last5_min_test_acc"] >= TARGET_ACCURACY


def clopper_pearson_lower(successes: int, trials: int, confidence: float = HOLD_CONFIDENCE) -> float:
    """The exact (Clopper-Pearson) one-sided lower confidence bound on a success probability,
    after ``successes`` of ``trials``: the p at which that many successes or more would be seen
    with probability only ``alpha = 1 - confidence``, P[X >= successes | trials, p] = alpha
    (for successes == trials, alpha ** (1 / trials); 0 for no success).

    That tail grows with p, so bisection finds the bound to machine precision with ``math``
    alone (scipy's ``beta.ppf(alpha, successes, trials - successes + 1)`` is the same number,
    but scipy is no dependency of this package). The terms are summed in logs, so any number
    of trials is fine.
    """
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(f"{successes} successes of {trials} trials")
    if successes == 0:
        return 0.0
    alpha = 1 - confidence

    def tail(p: float) -> float:
        def log_term(i: int) -> float:  # log of C(trials, i) p^i (1 - p)^(trials - i)
            log_choose = math.lgamma(trials + 1) - math.lgamma(i + 1) - math.lgamma(trials - i + 1)
            return log_choose + i * math.log(p) + (trials - i) * math.log1p(-p)

        return sum(math.exp(log_term(i)) for i in range(successes, trials + 1))

    low, high = 0.0, 1.0
    for _ in range(100):  # the interval halves each time: far below a float's resolution long before
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) < alpha else (low, middle)
    return low
