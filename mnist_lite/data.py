"""Real MNIST, offline and checksummed, behind two input pipelines.

The four IDX files ship gzip'd in the repository's ``data/`` folder; ``--data-dir`` /
``MNIST_LITE_DATA`` name another copy (see :mod:`mnist_lite.paths`). Nothing is ever downloaded.
Reading one checks, in this order, that it exists, that it is a readable gzip (or plain) file,
that its IDX header has the right magic number and declares no more than MNIST holds, that its
length matches the header, and finally that the SHA-256 of its bytes matches the ``SHA256SUMS``
shipped inside the package. The first failure raises a :class:`DataError` whose one-line message
names the file and says what to do.

A file is decompressed as a stream and read no further than its header's size plus one byte (to
tell that it goes on), so a gzip bomb or a link to ``/dev/zero`` costs no more memory than MNIST.

Pipelines, with identical normalisation:

* ``fast`` (default): the whole split as one normalised tensor on the training device,
  shuffled by index permutation, augmented a batch at a time with ``affine_grid`` /
  ``grid_sample``. No per-image Python in the hot loop.
* ``torchvision``: the classic pipeline, ``torchvision.datasets.MNIST`` with PIL transforms
  and a multi-worker ``DataLoader``. Kept as the baseline the benchmark compares against.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import math
import os
import re
import stat
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_lite import config, paths
from mnist_lite.config import Augment
from mnist_lite.errors import MnistLiteError
from mnist_lite.paths import CHECKSUMS

MEAN, STD = 0.1307, 0.3081
FILES = {
    # split -> (images file, labels file); the names are the canonical IDX names.
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SHAPES = {  # what each file holds; a header may declare less (a damaged file), never more
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # number of dimensions -> magic (uint8 data)
FIX = "restore it (git checkout data/) or point --data-dir / MNIST_LITE_DATA at a good copy"
CHECKSUMS_FIX = "restore it (git checkout mnist_lite/SHA256SUMS) or reinstall mnist-lite"
EVAL_BATCH_SIZE = 1000  # evaluation holds no gradients: large batches are cheap


class DataError(MnistLiteError):
    """MNIST is missing, damaged or inconsistent."""


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder to read: ``path`` if given, else :func:`mnist_lite.paths.default_data_dir`."""
    folder = Path(path) if path else paths.default_data_dir()
    if folder is None:
        raise DataError(
            "no MNIST folder: this mnist-lite is installed without its repository's data/; "
            f"pass --data-dir DIR or set {paths.DATA_ENV}=DIR, a folder with the four IDX files"
        )
    return folder


def read_checksums(path: Path) -> dict[str, str]:
    """``name -> SHA-256`` from a file of ``DIGEST  NAME`` lines, as ``sha256sum`` writes them."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not text"
        raise DataError(f"{path}: cannot read it ({reason}); {CHECKSUMS_FIX}") from None
    sums = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not re.fullmatch("[0-9a-fA-F]{64}", fields[0]):
            raise DataError(f"{path}:{number}: not a 'SHA-256  NAME' line; {CHECKSUMS_FIX}")
        digest, name = fields
        sums[name] = digest.lower()
    return sums


@functools.cache
def _expected_sha256() -> dict[str, str]:
    return read_checksums(CHECKSUMS)


def _find(folder: Path, name: str) -> Path | None:
    """``folder/NAME.gz``, else the uncompressed ``folder/NAME``, else None."""
    return next((path for path in (folder / f"{name}.gz", folder / name) if path.exists()), None)


def read_idx(folder: Path, name: str) -> torch.Tensor:
    """One verified IDX file of :data:`SHAPES` as a uint8 tensor."""
    path = _find(folder, name)
    if path is None:
        raise DataError(f"{folder / name}.gz: file not found; {FIX}")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return _read_verified(f, path, name)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path}: truncated or not a gzip file ({error}); {FIX}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error}); {FIX}") from None


def _read_verified(f, path: Path, name: str) -> torch.Tensor:
    """Check the open file ``f`` at ``path`` as :func:`read_idx` promises, reading no further
    than its header allows."""
    ndim = len(SHAPES[name])
    header_size = 4 + 4 * ndim
    header = f.read(header_size)
    if len(header) < header_size:
        raise DataError(f"{path}: truncated ({len(header)} bytes, shorter than its IDX header); {FIX}")
    magic = int.from_bytes(header[:4], "big")
    if magic != IDX_MAGIC[ndim]:
        raise DataError(
            f"{path}: wrong IDX magic number {magic:#010x}, expected {IDX_MAGIC[ndim]:#010x}; {FIX}"
        )
    shape = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    declared = math.prod(shape)
    if declared > math.prod(SHAPES[name]):
        shown, mnist = ("x".join(map(str, s)) for s in (shape, SHAPES[name]))
        raise DataError(f"{path}: its IDX header declares {shown}, more than MNIST's {mnist}; {FIX}")
    payload = bytearray(declared + 1)  # one byte more than declared: room to see a file go on
    size = f.readinto(payload)
    if size != declared:
        expected = header_size + declared
        length = f"more than {expected}" if size > declared else header_size + size
        raise DataError(f"{path}: truncated or padded ({length} bytes, header says {expected}); {FIX}")
    if name not in _expected_sha256():
        raise DataError(f"{CHECKSUMS}: no SHA-256 for {name}, so it cannot be verified; {CHECKSUMS_FIX}")
    digest = hashlib.sha256(header)
    digest.update(memoryview(payload)[:declared])
    if digest.hexdigest() != _expected_sha256()[name]:
        raise DataError(f"{path}: SHA-256 mismatch, the file is corrupted; {FIX}")
    return torch.frombuffer(payload, dtype=torch.uint8)[:declared].reshape(shape)


NO_MNIST_HERE = (  # nothing is downloaded: the user says where MNIST is
    "holds none of the four MNIST files; point --data-dir / MNIST_LITE_DATA at a folder that holds "
    "the four IDX files (gzip'd or not), or restore the repository's data/ (git checkout data/)"
)


@functools.cache
def _load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images_name, labels_name = FILES[split]
    try:
        if not stat.S_ISDIR(os.stat(folder).st_mode):
            raise DataError(f"{folder}: not a folder; {FIX}")
        if not any(_find(folder, name) for name in SHAPES):
            raise DataError(f"{folder}: {NO_MNIST_HERE}")
        images = read_idx(folder, images_name)
        labels = read_idx(folder, labels_name).long()
    except FileNotFoundError:
        raise DataError(f"{folder}: no such folder; {FIX}") from None
    except OSError as error:  # looking for the files: a name too long, a symlink loop, no permission
        raise DataError(f"{error.filename or folder}: cannot look in it ({error.strerror}); {FIX}") from None
    if len(images) != len(labels):
        raise DataError(
            f"{folder / images_name}: {len(images)} images but {labels_name} has {len(labels)} labels; {FIX}"
        )
    return images, labels


def load_mnist(split: str, folder: str | os.PathLike | None = None, limit: int | None = None):
    """``(images, labels)`` of a split: uint8 ``[N, 28, 28]`` and int64 ``[N]``, the first ``limit``
    if given."""
    # realpath, not Path.resolve, which raises RuntimeError on a symlink loop
    images, labels = _load_split(Path(os.path.realpath(data_dir(folder))), split)
    return images[:limit], labels[:limit]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` to the float ``[N, 1, 28, 28]`` every model sees."""
    return ((images.float() / 255 - MEAN) / STD).unsqueeze(1)


# --- augmentation on whole batches -------------------------------------------------------

BACKGROUND = (0 - MEAN) / STD  # a black pixel after normalisation: what rotated-in corners become


def affine(
    images: torch.Tensor,
    degrees: torch.Tensor,
    shift: torch.Tensor | None = None,
    zoom: torch.Tensor | None = None,
    displacement: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rotate each normalised image by its angle (counter-clockwise, degrees) about the centre,
    zoom it by its factor ``zoom`` (above 1 enlarges) and shift it by ``shift`` (fractions of
    the width and height), filling with black; then, if ``displacement`` (``[N, H, W, 2]``, in
    ``grid_sample``'s coordinates) is given, move each output pixel by it, as torchvision's
    ``elastic_transform`` does to the transformed image.

    One ``affine_grid`` + ``grid_sample`` call for the whole batch; it follows the conventions
    of ``torchvision.transforms.functional.rotate`` so the two pipelines augment alike. With a
    displacement the geometry is that of the classic pipeline's ``Compose([RandomAffine,
    ElasticTransform])``, but resampled once where that resamples twice, rounding to whole grey
    levels between, so the classic pipeline's deformed digits come out a little blurrier.
    """
    radians = torch.deg2rad(degrees.to(images))
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates, so theta is the inverse of the rotation (and,
    # divided by it, of the zoom).
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    if zoom is not None:
        theta = theta / zoom.to(images)[:, None, None]
    if shift is not None:
        theta[:, :, 2] = -2 * torch.einsum("bij,bj->bi", theta[:, :, :2], shift.to(images))
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    if displacement is not None:  # the output pixel at x reads the affine map at x + d(x)
        grid = grid + torch.einsum("nij,nhwj->nhwi", theta[:, :, :2], displacement.to(images))
    return F.grid_sample(images - BACKGROUND, grid, mode="bilinear", align_corners=False) + BACKGROUND


def augment_batch(images: torch.Tensor, augment: Augment) -> torch.Tensor:
    """Each normalised image rotated, zoomed, shifted and elastically deformed by its own random
    draw within ``augment``'s bounds."""
    n = len(images)

    def uniform(bound: float, *shape: int) -> torch.Tensor:  # within ±bound
        return (torch.rand(n, *shape, device=images.device) * 2 - 1) * bound

    degrees = uniform(augment.degrees)
    shift = uniform(augment.translate, 2) if augment.translate else None
    zoom = 1 + uniform(augment.scale) if augment.scale else None
    displacement = elastic_displacement(images, augment) if augment.elastic_alpha else None
    return affine(images, degrees, shift, zoom, displacement)


def elastic_displacement(images: torch.Tensor, augment: Augment) -> torch.Tensor:
    """A random displacement field per image (``[N, H, W, 2]``), drawn and smoothed as
    ``torchvision.transforms.ElasticTransform.get_params`` draws one, for a batch at once."""
    n, _, height, width = images.shape
    field = torch.rand(n, 2, height, width, device=images.device) * 2 - 1
    if augment.elastic_sigma > 0:  # blur the columns, then the rows
        sigma = augment.elastic_sigma
        field = (
            _blur_matrix(height, sigma, images.device).T @ field @ _blur_matrix(width, sigma, images.device)
        )
    # torchvision scales the horizontal move by the width, the vertical by the height
    alpha = augment.elastic_alpha
    return torch.stack((field[:, 0] * alpha / width, field[:, 1] * alpha / height), dim=-1)


@functools.lru_cache(maxsize=8)  # the same few matrices for every batch of a run
def _blur_matrix(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """``M`` such that ``v @ M`` is torchvision's ``gaussian_blur`` of the length-``size`` vector
    ``v``: its kernel (``int(8 sigma + 1)`` taps, made odd), reflected at the edges. The 2-D
    Gaussian is separable, so two such products blur an image as torchvision's 2-D kernel does, in
    a few small matrix products instead of a convolution with one input channel."""
    half = int(8 * sigma + 1) // 2
    weights = torch.exp(-0.5 * (torch.arange(-half, half + 1, device=device) / sigma) ** 2)
    unit_rows = F.pad(torch.eye(size, device=device)[:, None], (half, half), mode="reflect")
    return F.conv1d(unit_rows, (weights / weights.sum()).view(1, 1, -1))[:, 0]


def shifted_copies(images: torch.Tensor, pixels: int) -> list[torch.Tensor]:
    """``images`` (normalised, ``[N, 1, H, W]``) and four copies of them moved by ``pixels``
    right, left, down and up, black coming in at the edge: the views that test-time
    augmentation (a recipe's ``test_time_shift``) classifies each image by. A shift by whole
    pixels needs no interpolation, so every copy holds the image's own pixel values."""
    p = pixels
    height, width = images.shape[-2:]
    padded = F.pad(images, (p, p, p, p), value=BACKGROUND)
    # a copy moved right by dx reads each pixel from dx columns to its left
    moves = ((0, 0), (p, 0), (-p, 0), (0, p), (0, -p))
    return [padded[..., p - dy : p - dy + height, p - dx : p - dx + width] for dx, dy in moves]


def torchvision_transform(augment: Augment):
    """The same augmentation as a PIL transform, for the classic pipeline."""
    from torchvision import transforms

    affine = transforms.RandomAffine(
        augment.degrees,
        translate=(augment.translate, augment.translate) if augment.translate else None,
        scale=(1 - augment.scale, 1 + augment.scale) if augment.scale else None,
        interpolation=transforms.InterpolationMode.BILINEAR,
        fill=0,
    )
    if not augment.elastic_alpha:
        return affine
    elastic = transforms.ElasticTransform(
        augment.elastic_alpha,
        augment.elastic_sigma,
        interpolation=transforms.InterpolationMode.BILINEAR,
        fill=0,
    )
    return transforms.Compose([affine, elastic])


NO_AUGMENT = Augment()

# --- the two pipelines ------------------------------------------------------------------


class TensorLoader:
    """Batches from one normalised tensor that lives on the device, like ``airbench``.

    Shuffling is a ``randperm`` on the global torch generator (so ``--seed`` covers it) and
    augmentation runs on the whole batch at once.
    """

    def __init__(self, images, labels, batch_size, device, shuffle=False, augment=NO_AUGMENT):
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
            yield (augment_batch(x, self.augment) if self.augment else x), y


def _torchvision_dataset(images, labels, transform):
    """``torchvision.datasets.MNIST`` over the verified tensors, so both pipelines read the same bytes."""
    import torchvision

    dataset = torchvision.datasets.MNIST.__new__(torchvision.datasets.MNIST)
    torchvision.datasets.VisionDataset.__init__(dataset, root=None, transform=transform)
    dataset.data, dataset.targets, dataset.train = images, labels, True
    return dataset


def torchvision_loader(images, labels, batch_size, device, shuffle=False, augment=NO_AUGMENT, workers=2):
    """The classic pipeline: PIL transforms per image in ``DataLoader`` worker processes."""
    from torchvision import transforms

    steps = [torchvision_transform(augment)] if augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    return torch.utils.data.DataLoader(
        _torchvision_dataset(images, labels, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=workers > 0,
    )


LOADERS = dict(zip(config.LOADERS, (TensorLoader, torchvision_loader), strict=True))


def without_augmentation(train_loader, device):
    """``train_loader``'s images, batch size and shuffling with each image as it is: what a
    recipe's ``clean_epochs`` train on. The fast pipeline's copy shares its tensors; the classic
    one is a second ``DataLoader``, with workers of its own."""
    if isinstance(train_loader, TensorLoader):
        clean = copy.copy(train_loader)
        clean.augment = NO_AUGMENT
        return clean
    dataset = train_loader.dataset
    return torchvision_loader(
        dataset.data,
        dataset.targets,
        train_loader.batch_size,
        device,
        shuffle=True,
        workers=train_loader.num_workers,
    )


VALIDATION_SIZE = 10_000
VALIDATION_SEED = 0  # fixes which training images are held out: the same ones on every machine


def validation_split(images: torch.Tensor, labels: torch.Tensor):
    """``(train_images, train_labels), (validation_images, validation_labels)``: the training
    set less ``VALIDATION_SIZE`` images held out by a fixed permutation, and those images.

    Design choices are judged on these held-out images; the test set is kept for the final runs.
    """
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(VALIDATION_SEED))
    held_out, kept = order[:VALIDATION_SIZE].sort().values, order[VALIDATION_SIZE:].sort().values
    return (images[kept], labels[kept]), (images[held_out], labels[held_out])


EVAL_SPLITS = ("test", "validation")


def make_loaders(
    kind,
    batch_size,
    device,
    augment=NO_AUGMENT,
    folder=None,
    train_limit=None,
    test_limit=None,
    eval_split="test",
):
    """Train and evaluation loaders of the chosen pipeline; the evaluation set is never shuffled
    or augmented. With ``eval_split="validation"`` both come from the training file (see
    :func:`validation_split`) and the test set is not read at all.
    """
    make = LOADERS[kind]
    if eval_split == "validation":
        (train_images, train_labels), (eval_images, eval_labels) = validation_split(
            *load_mnist("train", folder)
        )
    else:
        (train_images, train_labels), (eval_images, eval_labels) = (
            load_mnist("train", folder),
            load_mnist("test", folder),
        )
    train = make(
        train_images[:train_limit],
        train_labels[:train_limit],
        batch_size,
        device,
        shuffle=True,
        augment=augment,
    )
    evaluation = make(eval_images[:test_limit], eval_labels[:test_limit], EVAL_BATCH_SIZE, device)
    return train, evaluation
