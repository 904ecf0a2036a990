"""Real MNIST, offline and checksummed, behind two input pipelines.

The four IDX files ship gzip'd in the repository's ``data/`` folder. Reading one checks,
in this order, that it exists, that it is a readable gzip (or plain) file, that its IDX
header has the right magic number, that its length matches the header, and finally that
the SHA-256 of its bytes matches ``data/SHA256SUMS``. The first failure raises a
:class:`DataError` whose one-line message names the file and says what to do.

Pipelines, with identical normalisation:

* ``fast`` (default): the whole split as one normalised tensor on the training device,
  shuffled by index permutation, augmented a batch at a time with ``affine_grid`` /
  ``grid_sample``. No per-image Python in the hot loop.
* ``torchvision``: the classic pipeline, ``torchvision.datasets.MNIST`` with PIL transforms
  and a multi-worker ``DataLoader``. Kept as the baseline the benchmark compares against.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_lite.errors import MnistLiteError
from mnist_lite.results import REPO

MEAN, STD = 0.1307, 0.3081
REPO_DATA_DIR = REPO / "data"
CHECKSUMS = REPO_DATA_DIR / "SHA256SUMS"
FILES = {
    # split -> (images file, labels file); the names are the canonical IDX names.
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # number of dimensions -> magic (uint8 data)
FIX = "restore it (git checkout data/) or point --data-dir / MNIST_LITE_DATA at a good copy"
EVAL_BATCH_SIZE = 1000  # evaluation holds no gradients: large batches are cheap


class DataError(MnistLiteError):
    """MNIST is missing, damaged or inconsistent."""


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder to read: ``path`` if given, else ``$MNIST_LITE_DATA``, else the repo's ``data/``."""
    return Path(path or os.environ.get("MNIST_LITE_DATA") or REPO_DATA_DIR)


@functools.cache
def _expected_sha256() -> dict[str, str]:
    if not CHECKSUMS.exists():
        raise DataError(f"{CHECKSUMS}: missing; install the project from its repository (pip install -e .)")
    lines = CHECKSUMS.read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def _read_bytes(folder: Path, name: str) -> tuple[Path, bytes]:
    for path in (folder / f"{name}.gz", folder / name):
        if path.exists():
            break
    else:
        raise DataError(f"{folder / name}.gz: file not found; {FIX}")
    try:
        raw = path.read_bytes()
        return path, gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path}: truncated or not a gzip file ({error}); {FIX}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror}); {FIX}") from None


def read_idx(folder: Path, name: str, ndim: int) -> torch.Tensor:
    """One verified IDX file as a uint8 tensor of ``ndim`` dimensions."""
    path, raw = _read_bytes(folder, name)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated ({len(raw)} bytes, shorter than its IDX header); {FIX}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != IDX_MAGIC[ndim]:
        raise DataError(f"{path}: wrong IDX magic number {magic:#010x}, expected {IDX_MAGIC[ndim]:#010x}; {FIX}")
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise DataError(f"{path}: truncated or padded ({len(raw)} bytes, header says {expected}); {FIX}")
    if name not in _expected_sha256():
        raise DataError(f"{CHECKSUMS}: no SHA-256 for {name}, so it cannot be verified; restore it (git checkout data/)")
    if hashlib.sha256(raw).hexdigest() != _expected_sha256()[name]:
        raise DataError(f"{path}: SHA-256 mismatch, the file is corrupted; {FIX}")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(shape)


def _download(folder: Path) -> Path:
    """torchvision's download, the fallback for a folder that holds no MNIST at all."""
    import torchvision

    try:
        torchvision.datasets.MNIST(folder, download=True)
    except Exception as error:  # noqa: BLE001 - any failure here means "no data"
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DataError(f"{folder}: no MNIST files here and the download failed ({reason}); {FIX}") from None
    return folder / "MNIST" / "raw"


@functools.cache
def _load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images_name, labels_name = FILES[split]
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; {FIX}")
    if not any((folder / f"{n}{ext}").exists() for names in FILES.values() for n in names for ext in ("", ".gz")):
        folder = _download(folder)
    images = read_idx(folder, images_name, ndim=3)
    labels = read_idx(folder, labels_name, ndim=1).long()
    if len(images) != len(labels):
        raise DataError(
            f"{folder / images_name}: {len(images)} images but {labels_name} has {len(labels)} labels; {FIX}"
        )
    return images, labels


def load_mnist(split: str, folder: str | os.PathLike | None = None, limit: int | None = None):
    """``(images, labels)`` of a split: uint8 ``[N, 28, 28]`` and int64 ``[N]``, the first ``limit`` if given."""
    images, labels = _load_split(data_dir(folder).resolve(), split)
    return images[:limit], labels[:limit]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` to the float ``[N, 1, 28, 28]`` every model sees."""
    return ((images.float() / 255 - MEAN) / STD).unsqueeze(1)


# --- augmentation on whole batches -------------------------------------------------------

BACKGROUND = (0 - MEAN) / STD  # a black pixel after normalisation: what rotated-in corners become


def affine(images: torch.Tensor, degrees: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate each normalised image by its angle (counter-clockwise, degrees) about the centre
    and shift it by ``shift`` (fractions of the width and height), filling with black.

    One ``affine_grid`` + ``grid_sample`` call for the whole batch; it follows the conventions
    of ``torchvision.transforms.functional.rotate`` so the two pipelines augment alike.
    """
    radians = torch.deg2rad(degrees.to(images))
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates, so this is the inverse of the rotation.
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    if shift is not None:
        theta[:, :, 2] = -2 * torch.einsum("bij,bj->bi", theta[:, :, :2], shift.to(images))
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - BACKGROUND, grid, mode="bilinear", align_corners=False) + BACKGROUND


@dataclass(frozen=True)
class Augment:
    """Random rotation within ``±degrees`` and shift within ``±translate`` of the image size."""

    degrees: float = 0.0
    translate: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.degrees or self.translate)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n = len(images)
        degrees = (torch.rand(n, device=images.device) * 2 - 1) * self.degrees
        shift = (torch.rand(n, 2, device=images.device) * 2 - 1) * self.translate if self.translate else None
        return affine(images, degrees, shift)

    def torchvision_transform(self):
        """The same augmentation as a PIL transform, for the classic pipeline."""
        from torchvision import transforms

        return transforms.RandomAffine(
            self.degrees,
            translate=(self.translate, self.translate) if self.translate else None,
            interpolation=transforms.InterpolationMode.BILINEAR,
            fill=0,
        )


# --- the two pipelines ------------------------------------------------------------------


class TensorLoader:
    """Batches from one normalised tensor that lives on the device, like ``airbench``.

    Shuffling is a ``randperm`` on the global torch generator (so ``--seed`` covers it) and
    augmentation runs on the whole batch at once.
    """

    def __init__(self, images, labels, batch_size, device, shuffle=False, augment=Augment()):
        self.images = normalize(images).to(device)
        self.labels = labels.to(device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n).to(self.labels.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                x = self.images[start : start + self.batch_size]
                y = self.labels[start : start + self.batch_size]
            else:
                index = order[start : start + self.batch_size]
                x, y = self.images[index], self.labels[index]
            yield (self.augment(x) if self.augment else x), y


def _torchvision_dataset(images, labels, transform):
    """``torchvision.datasets.MNIST`` over the verified tensors, so both pipelines read the same bytes."""
    import torchvision

    dataset = torchvision.datasets.MNIST.__new__(torchvision.datasets.MNIST)
    torchvision.datasets.VisionDataset.__init__(dataset, root=None, transform=transform)
    dataset.data, dataset.targets, dataset.train = images, labels, True
    return dataset


def torchvision_loader(images, labels, batch_size, device, shuffle=False, augment=Augment(), workers=2):
    """The classic pipeline: PIL transforms per image in ``DataLoader`` worker processes."""
    from torchvision import transforms

    steps = [augment.torchvision_transform()] if augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    return torch.utils.data.DataLoader(
        _torchvision_dataset(images, labels, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=workers > 0,
    )


LOADERS = {"fast": TensorLoader, "torchvision": torchvision_loader}


def make_loaders(kind, batch_size, device, augment=Augment(), folder=None, train_limit=None, test_limit=None):
    """Train and test loaders of the chosen pipeline; the test set is never shuffled or augmented."""
    make = LOADERS[kind]
    train = make(*load_mnist("train", folder, train_limit), batch_size, device, shuffle=True, augment=augment)
    test = make(*load_mnist("test", folder, test_limit), EVAL_BATCH_SIZE, device)
    return train, test
