"""Results files: written atomically, read back with the numbers the README and notebooks show."""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mnist_lite.errors import MnistLiteError

LAST_EPOCHS = 5  # "consistently in the last epochs" means these
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"  # the recorded runs that the README and notebooks show


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
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException as error:
        os.unlink(tmp)
        if isinstance(error, OSError):
            raise MnistLiteError(f"{path}: could not write it ({error.strerror}); the old file is unchanged") from None
        raise


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


def save_torch(path, obj) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


@dataclass
class History:
    """Per-epoch records of a run: ``{epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds}``.

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

    @property
    def last_test_accs(self) -> list[float]:
        return [row["test_acc"] for row in self.epochs[-LAST_EPOCHS:]]

    @property
    def last5_min_test_acc(self) -> float:
        return min(self.last_test_accs)

    def epochs_at_or_above(self, accuracy: float) -> list[int]:
        return [row["epoch"] for row in self.epochs if row["test_acc"] >= accuracy]

    @property
    def seconds(self) -> float:
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
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MnistLiteError(f"{path}: no result file; run the step first") from None
    except json.JSONDecodeError as error:
        raise MnistLiteError(f"{path}: not a valid result file ({error})") from None


def seed_summary(results: list[dict]) -> dict:
    """Per seed its best and last-five minimum test accuracy; over seeds the final accuracy's
    mean and (sample) standard deviation and the worst last-five minimum."""
    if len({(r.get("dtype", "float32"), json.dumps(r["recipe"], sort_keys=True)) for r in results}) > 1:
        raise MnistLiteError("the seed runs differ in recipe or precision; one summary cannot cover them")
    finals = [r["final_test_acc"] for r in results]
    mean = sum(finals) / len(finals)
    std = (sum((a - mean) ** 2 for a in finals) / (len(finals) - 1)) ** 0.5 if len(finals) > 1 else 0.0
    first = results[0]
    return {
        "step": first["step"],
        "model": first["model"],
        "params": first["params"],
        "epochs": first["epochs"],
        "dtype": first.get("dtype", "float32"),  # runs before the --dtype option trained in float32
        "device_name": first["device_name"],
        "seeds": [
            {
                "seed": r["seed"],
                "best_test_acc": r["best_test_acc"],
                "final_test_acc": r["final_test_acc"],
                "last5_test_acc": r["last5_test_acc"],
                "last5_min_test_acc": r["last5_min_test_acc"],
            }
            for r in results
        ],
        "final_test_acc_mean": round(mean, 3),
        "final_test_acc_std": round(std, 3),
        "worst_last5_min_test_acc": min(r["last5_min_test_acc"] for r in results),
    }
