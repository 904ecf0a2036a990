"""Real MNIST: the shipped files, their verification, the two pipelines and the augmentation."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import tracemalloc
from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from mnist_lite import data, paths
from mnist_lite.config import Augment
from mnist_lite.data import MEAN, STD, DataError, affine, augment_batch, load_mnist, normalize

TEST_IMAGES, TEST_LABELS = data.FILES["test"]
TRAIN_IMAGES, TRAIN_LABELS = data.FILES["train"]


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


# --- the shipped files --------------------------------------------------------------------


def test_shipped_files_match_sha256sums(repo_root):
    """The digests ship inside the package (so an installed copy has them); data/ holds MNIST only."""
    assert data.CHECKSUMS == repo_root / "mnist_lite" / "SHA256SUMS"
    listed = data.read_checksums(data.CHECKSUMS)
    names = [n for pair in data.FILES.values() for n in pair]
    assert sorted(listed) == sorted(names + [f"{n}.gz" for n in names])
    assert sorted(p.name for p in (repo_root / "data").iterdir()) == sorted(f"{n}.gz" for n in names)
    for name in names:
        compressed = (repo_root / "data" / f"{name}.gz").read_bytes()
        assert sha256(compressed) == listed[f"{name}.gz"], f"{name}.gz"
        assert sha256(gzip.decompress(compressed)) == listed[name], name


def test_train_split():
    images, labels = load_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60000,) and labels.dtype == torch.int64
    assert labels.min() == 0 and labels.max() == 9
    assert torch.bincount(labels).min() > 5000  # every digit well represented


def test_test_split_and_limit():
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10000,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(10))
    first, first_labels = load_mnist("test", limit=7)
    assert (
        first.shape == (7, 28, 28)
        and torch.equal(first, images[:7])
        and torch.equal(first_labels, labels[:7])
    )


def test_normalisation_constants_and_normalize():
    images, _ = load_mnist("train")
    scaled = images.float() / 255
    assert scaled.mean().item() == pytest.approx(MEAN, abs=1e-4)
    assert scaled.std().item() == pytest.approx(STD, abs=1e-4)
    x = normalize(images)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01
    ends = normalize(torch.tensor([[[0, 255]]], dtype=torch.uint8)).flatten()
    assert ends.tolist() == pytest.approx([-MEAN / STD, (1 - MEAN) / STD])


# --- damaged data: one line naming the file -------------------------------------------------


def gz(folder: Path, name: str) -> Path:
    return folder / f"{name}.gz"


def rewrite_payload(path: Path, change) -> None:
    """Decompress ``path``, apply ``change`` to the bytes and write them back gzip'd."""
    raw = bytes(change(bytearray(gzip.decompress(path.read_bytes()))))
    path.write_bytes(gzip.compress(raw, compresslevel=1))


def flip_pixel(raw: bytearray) -> bytearray:
    raw[16 + 28 * 14 + 14] ^= 0xFF  # the centre pixel of the first image: same size, other bytes
    return raw


def set_magic(raw: bytearray) -> bytearray:
    raw[:4] = (0x00000801).to_bytes(4, "big")  # the labels' magic on an images file
    return raw


BROKEN = {
    # case: (file to damage, damage, expected message fragment)
    "truncated gzip": (
        TEST_IMAGES,
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "truncated or not a gzip file",
    ),
    "not gzip": (
        TEST_LABELS,
        lambda p: p.write_bytes(b"this is not gzip data at all"),
        "truncated or not a gzip file",
    ),
    "truncated header": (
        TEST_LABELS,
        lambda p: rewrite_payload(p, lambda raw: raw[:6]),
        "truncated (6 bytes, shorter than its IDX header)",
    ),
    "truncated payload": (
        TEST_IMAGES,
        lambda p: rewrite_payload(p, lambda raw: raw[:-1000]),
        "truncated or padded (7839016 bytes, header says 7840016)",
    ),
    "padded payload": (
        TEST_LABELS,
        lambda p: rewrite_payload(p, lambda raw: raw + b"\0"),
        "truncated or padded (more than 10008 bytes, header says 10008)",
    ),
    "corrupted byte": (TEST_IMAGES, lambda p: rewrite_payload(p, flip_pixel), "SHA-256 mismatch"),
    "wrong magic": (
        TEST_IMAGES,
        lambda p: rewrite_payload(p, set_magic),
        "wrong IDX magic number 0x00000801, expected 0x00000803",
    ),
}


def assert_one_line_naming(error: DataError, path: Path, fragment: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert fragment in message
    assert "--data-dir" in message  # says what to do


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_damaged_file_is_a_one_line_data_error(case, data_copy):
    name, damage, fragment = BROKEN[case]
    folder = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"])
    damage(gz(folder, name))
    with pytest.raises(DataError) as caught:
        load_mnist("test", folder)
    assert_one_line_naming(caught.value, gz(folder, name).resolve(), fragment)


@pytest.mark.parametrize("missing", [TEST_LABELS, TRAIN_IMAGES])
def test_missing_file(missing, data_copy):
    folder = data_copy(
        [p for p in (f"{n}.gz" for pair in data.FILES.values() for n in pair) if p != f"{missing}.gz"]
    )
    assert len(list(folder.iterdir())) == 3
    split = "test" if missing in data.FILES["test"] else "train"
    with pytest.raises(DataError) as caught:
        load_mnist(split, folder)
    assert_one_line_naming(caught.value, gz(folder, missing).resolve(), "file not found")


def test_uncompressed_files_are_read_and_verified(data_copy):
    folder = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"])
    for name in (TEST_IMAGES, TEST_LABELS):
        (folder / name).write_bytes(gzip.decompress(gz(folder, name).read_bytes()))
        gz(folder, name).unlink()
    images, labels = load_mnist("test", folder)
    expected_images, expected_labels = load_mnist("test")
    assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)

    damaged = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"], folder="damaged")
    raw = bytearray(gzip.decompress(gz(damaged, TEST_IMAGES).read_bytes()))
    (damaged / TEST_IMAGES).write_bytes(bytes(flip_pixel(raw)))
    gz(damaged, TEST_IMAGES).unlink()
    with pytest.raises(DataError) as caught:
        load_mnist("test", damaged)
    assert_one_line_naming(caught.value, (damaged / TEST_IMAGES).resolve(), "SHA-256 mismatch")


def cut_labels(raw: bytearray) -> bytearray:
    """A self-consistent labels file with one label fewer: header count and length agree."""
    count = int.from_bytes(raw[4:8], "big")
    return raw[:4] + (count - 1).to_bytes(4, "big") + raw[8:-1]


def test_count_mismatch_is_caught_by_the_checksum_first(data_copy):
    """With the shipped SHA256SUMS, a labels file that is consistent in itself but has a different
    count is a different file: the SHA-256 check, which comes first, reports it."""
    folder = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"])
    rewrite_payload(gz(folder, TEST_LABELS), cut_labels)
    with pytest.raises(DataError) as caught:
        load_mnist("test", folder)
    assert_one_line_naming(caught.value, gz(folder, TEST_LABELS).resolve(), "SHA-256 mismatch")


def test_count_mismatch_behind_matching_checksums(data_copy, monkeypatch):
    """The images/labels count check itself, reached with checksums that match the cut file."""
    folder = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"])
    rewrite_payload(gz(folder, TEST_LABELS), cut_labels)
    sums = {
        name: hashlib.sha256(gzip.decompress(gz(folder, name).read_bytes())).hexdigest()
        for name in (TEST_IMAGES, TEST_LABELS)
    }
    monkeypatch.setattr(data, "_expected_sha256", lambda: sums)
    with pytest.raises(DataError) as caught:
        load_mnist("test", folder)
    assert_one_line_naming(
        caught.value, folder.resolve() / TEST_IMAGES, f"10000 images but {TEST_LABELS} has 9999 labels"
    )


def test_a_file_without_a_checksum_is_refused(data_copy, monkeypatch):
    """A SHA256SUMS that lacks a file's line must not let that file through unverified."""
    sums = {k: v for k, v in data._expected_sha256().items() if k != TEST_LABELS}
    monkeypatch.setattr(data, "_expected_sha256", lambda: sums)
    folder = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"])
    with pytest.raises(DataError, match=f"no SHA-256 for {TEST_LABELS}, so it cannot be verified") as caught:
        load_mnist("test", folder)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{data.CHECKSUMS}: ")
    assert "git checkout mnist_lite/SHA256SUMS" in message


# --- hostile files and folders: a one-line error, and memory bounded by what the header declares --

MiB = 1 << 20


def idx_header(name: str, *shape: int) -> bytes:
    """The IDX header of file ``name`` (its magic number) declaring ``shape``."""
    magic = data.IDX_MAGIC[len(data.SHAPES[name])]
    return b"".join(n.to_bytes(4, "big") for n in (magic, *shape))


def refused_within(memory: int, read) -> DataError:
    """The DataError that ``read()`` raises, after checking that Python's allocations peaked
    below ``memory`` bytes meanwhile (tracemalloc sees zlib's buffers and every bytes object)."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as caught:
            read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < memory, f"peak {peak:,} bytes"
    return caught.value


PADDED_800 = "truncated or padded (more than 800 bytes, header says 800)"  # one image declared


def test_a_gzip_bomb_is_not_inflated(tmp_path):
    """50 MiB of zeros behind a header that declares one image, gzip'd to under 1 MiB: read no
    further than the 800 bytes declared, where it used to be inflated whole."""
    bomb = gz(tmp_path, TEST_IMAGES)
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(idx_header(TEST_IMAGES, 1, 28, 28))
        for _ in range(50):
            f.write(bytes(MiB))
    assert bomb.stat().st_size < MiB
    error = refused_within(MiB, lambda: load_mnist("test", tmp_path))
    assert_one_line_naming(error, bomb.resolve(), PADDED_800)


def test_a_huge_plain_file_is_read_no_further_than_its_header_allows(tmp_path):
    path = tmp_path / TEST_IMAGES
    path.write_bytes(idx_header(TEST_IMAGES, 1, 28, 28))
    os.truncate(path, 256 * MiB)  # sparse: no disk used, but 256 MiB to read
    error = refused_within(MiB, lambda: load_mnist("test", tmp_path))
    assert_one_line_naming(error, path.resolve(), PADDED_800)


@pytest.mark.parametrize(
    "suffix, fragment", [("", "wrong IDX magic number 0x00000000"), (".gz", "truncated or not a gzip file")]
)
def test_a_link_to_dev_zero_is_refused(tmp_path, suffix, fragment):
    link = tmp_path / f"{TEST_IMAGES}{suffix}"
    link.symlink_to("/dev/zero")
    error = refused_within(MiB, lambda: load_mnist("test", tmp_path))
    assert_one_line_naming(error, tmp_path.resolve() / link.name, fragment)


def test_a_header_may_not_declare_more_than_mnist_holds(tmp_path):
    """The cap on memory is MNIST's own size: a header asking for more is refused before any read."""
    path = gz(tmp_path, TEST_IMAGES)
    path.write_bytes(gzip.compress(idx_header(TEST_IMAGES, 4_000_000_000, 28, 28)))
    error = refused_within(MiB, lambda: load_mnist("test", tmp_path))
    assert_one_line_naming(error, path.resolve(), "declares 4000000000x28x28, more than MNIST's 10000x28x28")


def test_a_data_file_that_is_a_folder(tmp_path):
    folder = gz(tmp_path, TEST_IMAGES)
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        load_mnist("test", tmp_path)
    assert_one_line_naming(caught.value, folder.resolve(), "cannot read it (Is a directory)")


UNUSABLE_FOLDERS = {
    # case: (make the folder under tmp_path, expected message fragment)
    "name too long": (lambda tmp: tmp / ("x" * 5000), "cannot look in it (File name too long)"),
    "under a file": (
        lambda tmp: (tmp / "file").write_text("") or tmp / "file" / "data",
        "cannot look in it (Not a directory)",
    ),
    "symlink loop": (
        lambda tmp: (tmp / "loop").symlink_to(tmp / "loop") or tmp / "loop",
        "cannot look in it (Too many levels of symbolic links)",
    ),
    "a file": (lambda tmp: (tmp / "file").write_text("") or tmp / "file", "not a folder"),
    "missing": (lambda tmp: tmp / "missing", "no such folder"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE_FOLDERS))
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_an_unusable_data_folder_is_a_one_line_data_error(tmp_path, monkeypatch, case, how):
    make, fragment = UNUSABLE_FOLDERS[case]
    folder = make(tmp_path)
    if how == "environment":
        monkeypatch.setenv("MNIST_LITE_DATA", str(folder))
    with pytest.raises(DataError) as caught:
        load_mnist("test", folder if how == "argument" else None)
    assert_one_line_naming(caught.value, Path(os.path.realpath(folder)), fragment)


@pytest.mark.parametrize(
    "line",
    [
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",  # no file name
        "not-a-hexadecimal-digest  t10k-images-idx3-ubyte",
        "0fa7898d  t10k-images-idx3-ubyte",  # too short
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k images",  # three fields
    ],
)
def test_a_malformed_sha256sums_line_is_a_one_line_data_error(tmp_path, monkeypatch, data_copy, line):
    sums = tmp_path / "SHA256SUMS"
    good = data.CHECKSUMS.read_text().splitlines()
    sums.write_text("\n".join([good[0], "", line, *good[1:]]) + "\n")  # the bad line is line 3
    monkeypatch.setattr(data, "_expected_sha256", lambda: data.read_checksums(sums))
    with pytest.raises(DataError) as caught:
        load_mnist("test", data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{sums}:3: not a 'SHA-256  NAME' line")
    assert "mnist_lite/SHA256SUMS" in message  # says what to do


# Property-based: whatever the bytes, the reader raises DataError and nothing else, and Python's
# allocations stay within twice what the header declares (the file's bytes, once as read, once
# as the tensor's buffer) plus a little.


@st.composite
def hostile_files(draw):
    """``(name, bytes, suffix, declared)``: arbitrary bytes alone, behind the right magic number or
    behind a whole header whose dimensions are within MNIST's; written plain, gzip'd, or plain
    under a ``.gz`` name. ``declared`` bounds the payload size a header can declare."""
    name = draw(st.sampled_from(sorted(data.SHAPES)))
    content = draw(st.binary(max_size=4096))
    declared = math.prod(data.SHAPES[name])
    behind = draw(st.sampled_from(["nothing", "magic", "header"]))
    if behind == "magic":
        content = idx_header(name) + content
    elif behind == "header":
        shape = [draw(st.integers(0, n)) for n in data.SHAPES[name]]
        content, declared = idx_header(name, *shape) + content, math.prod(shape)
    wrap = draw(st.sampled_from(["plain", "gzip", "plain named .gz"]))
    if wrap == "gzip":
        content = gzip.compress(content, compresslevel=1)
    return name, content, "" if wrap == "plain" else ".gz", declared


@settings(max_examples=50, deadline=None)
@given(hostile_files())
def test_any_bytes_raise_a_data_error_within_bounded_memory(file):
    name, content, suffix, declared = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}{suffix}"
        path.write_bytes(content)
        error = refused_within(2 * (declared + 1) + MiB, lambda: data.read_idx(Path(folder), name))
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: ")


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(sorted(data.SHAPES)), st.booleans(), st.data())
def test_a_consistent_file_is_read_back_only_when_its_checksum_matches(name, gzipped, draw):
    shape = [draw.draw(st.integers(0, min(n, 30))) for n in data.SHAPES[name]]
    payload = draw.draw(st.binary(min_size=math.prod(shape), max_size=math.prod(shape)))
    content = idx_header(name, *shape) + payload
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / f"{name}{'.gz' if gzipped else ''}").write_bytes(
            gzip.compress(content, compresslevel=1) if gzipped else content
        )
        with mock.patch.object(data, "_expected_sha256", lambda: {name: sha256(content)}):
            images = data.read_idx(Path(folder), name)
        with mock.patch.object(data, "_expected_sha256", lambda: {name: sha256(content + b"\0")}):
            with pytest.raises(DataError, match="SHA-256 mismatch"):
                data.read_idx(Path(folder), name)
    assert images.shape == tuple(shape) and images.dtype == torch.uint8
    assert images.flatten().tolist() == list(payload)


# --- where the data comes from ------------------------------------------------------------------


def test_data_dir_resolution(monkeypatch, tmp_path, repo_root):
    assert paths.REPO == repo_root and paths.RESULTS == repo_root / "results"
    assert data.data_dir() == repo_root / "data"
    monkeypatch.setenv("MNIST_LITE_DATA", str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_installed_without_a_checkout_the_data_folder_must_be_named(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "REPO", None)
    with pytest.raises(DataError) as caught:
        load_mnist("test")
    message = str(caught.value)
    assert "\n" not in message and "--data-dir" in message and "MNIST_LITE_DATA" in message
    monkeypatch.setenv("MNIST_LITE_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path


def test_a_checkout_is_told_from_an_installed_package(tmp_path):
    package = tmp_path / "site-packages" / "mnist_lite"
    package.mkdir(parents=True)
    assert paths.find_checkout(package) is None
    (tmp_path / "site-packages" / "pyproject.toml").write_text("")
    assert paths.find_checkout(package) is None  # pyproject.toml alone is not enough
    (tmp_path / "site-packages" / "data").mkdir()
    assert paths.find_checkout(package) == tmp_path / "site-packages"


def test_environment_variable_and_explicit_folder(data_copy, monkeypatch):
    broken = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"], folder="broken")
    rewrite_payload(gz(broken, TEST_LABELS), lambda raw: raw[:-1])
    good = data_copy([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"], folder="good")
    monkeypatch.setenv("MNIST_LITE_DATA", str(broken))
    with pytest.raises(DataError) as caught:
        load_mnist("test")
    assert_one_line_naming(caught.value, gz(broken, TEST_LABELS).resolve(), "truncated or padded")
    images, labels = load_mnist("test", good)  # an explicit folder wins over the variable
    assert images.shape == (10000, 28, 28) and len(labels) == 10000
    monkeypatch.setenv("MNIST_LITE_DATA", str(good))
    assert torch.equal(load_mnist("test", limit=100)[1], labels[:100])


# --- the two pipelines --------------------------------------------------------------------------


def test_pipelines_give_the_same_batches():
    images, labels = load_mnist("train", limit=640)
    fast = data.TensorLoader(images, labels, 128, "cpu")
    classic = data.torchvision_loader(images, labels, 128, "cpu", workers=0)
    assert len(fast) == len(classic) == 5
    batches = 0
    for (x1, y1), (x2, y2) in zip(fast, classic, strict=False):
        assert x1.shape == x2.shape == (128, 1, 28, 28) and x1.dtype == x2.dtype == torch.float32
        torch.testing.assert_close(x1, x2, atol=1e-6, rtol=0)
        assert torch.equal(y1, y2)
        batches += 1
    assert batches == 5


def test_make_loaders_test_sets_agree():
    """The loaders ``fit`` uses, the classic one with its worker processes."""
    fast_train, fast_test = data.make_loaders("fast", 128, "cpu", train_limit=256, test_limit=1500)
    classic_train, classic_test = data.make_loaders(
        "torchvision", 128, "cpu", train_limit=256, test_limit=1500
    )
    assert len(fast_train) == len(classic_train) == 2
    pairs = list(zip(fast_test, classic_test, strict=False))
    assert [len(y) for (_, y), _ in pairs] == [1000, 500]
    for (x1, y1), (x2, y2) in pairs:
        torch.testing.assert_close(x1, x2, atol=1e-6, rtol=0)
        assert torch.equal(y1, y2)


def test_fast_loader_shuffles_with_the_global_seed():
    images, labels = load_mnist("train", limit=512)
    loader = data.TensorLoader(images, labels, 512, "cpu", shuffle=True)
    torch.manual_seed(3)
    ((_, first),) = list(loader)
    torch.manual_seed(3)
    ((_, again),) = list(loader)
    ((_, other),) = list(loader)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(first.sort().values, labels.sort().values)  # a permutation


# --- augmentation -------------------------------------------------------------------------------

# affine() against torchvision, measured: max |diff| < 1e-5, mean < 2e-7 in normalised units (the
# same bilinear sampling, float rounding only); a wrong centre, direction or fill is > 0.1.
MAX_DIFF, MEAN_DIFF = 1e-4, 1e-5


@pytest.fixture(scope="module")
def digits():
    images, _ = load_mnist("test", limit=32)
    return normalize(images), images.float().unsqueeze(1) / 255


def torchvision_rotate(raw, angle):
    return (TF.rotate(raw, angle, interpolation=InterpolationMode.BILINEAR) - MEAN) / STD


@pytest.mark.parametrize("angle", [10.0, -15.0])
def test_affine_rotation_matches_torchvision(digits, angle):
    x, raw = digits
    ours = affine(x, torch.full((len(x),), angle))
    diff = (ours - torchvision_rotate(raw, angle)).abs()
    assert diff.max() < MAX_DIFF and diff.mean() < MEAN_DIFF
    assert (ours - x).abs().mean() > 0.1  # it did rotate
    assert (ours - torchvision_rotate(raw, -angle)).abs().mean() > 0.1  # and the direction matters


def test_affine_rotates_each_image_by_its_own_angle(digits):
    x, raw = digits
    angles = torch.linspace(-30, 30, len(x))
    ours = affine(x, angles)
    for i in (0, 7, len(x) - 1):
        ref = torchvision_rotate(raw[i : i + 1], angles[i].item())
        assert (ours[i : i + 1] - ref).abs().max() < MAX_DIFF


def test_affine_zero_is_identity_and_fills_black(digits):
    x, _ = digits
    torch.testing.assert_close(affine(x, torch.zeros(len(x))), x, atol=1e-5, rtol=0)
    rotated = affine(torch.full((1, 1, 28, 28), 2.0), torch.tensor([45.0]))
    assert rotated[0, 0, 0, 0].item() == pytest.approx(data.BACKGROUND, abs=1e-5)  # a corner rotated in
    assert rotated[0, 0, 14, 14].item() == pytest.approx(2.0, abs=1e-5)


@pytest.mark.parametrize("pixels", [1, 3])
def test_shifted_copies_are_the_image_and_four_whole_pixel_moves(digits, pixels):
    """Right, left, down, up by ``pixels``: every pixel a copy of one of the image's own, black
    coming in; the same as torchvision's translation by whole pixels."""
    x, raw = digits
    copies = data.shifted_copies(x, pixels)
    assert len(copies) == 5 and torch.equal(copies[0], x)
    moves = [(pixels, 0), (-pixels, 0), (0, pixels), (0, -pixels)]
    for copy, (dx, dy) in zip(copies[1:], moves, strict=True):
        expected = torch.full_like(x, data.BACKGROUND)
        rows, cols = slice(max(dy, 0), 28 + min(dy, 0)), slice(max(dx, 0), 28 + min(dx, 0))
        source_rows, source_cols = slice(max(-dy, 0), 28 - max(dy, 0)), slice(max(-dx, 0), 28 - max(dx, 0))
        expected[..., rows, cols] = x[..., source_rows, source_cols]
        assert torch.equal(copy, expected)
        by_torchvision = (TF.affine(raw, 0.0, [dx, dy], 1.0, [0.0]) - MEAN) / STD
        assert (copy - by_torchvision).abs().max() < MAX_DIFF
        assert (copy - x).abs().mean() > 0.01  # it did move


@pytest.mark.parametrize(
    "angle, shift, zoom",
    [
        (0.0, (2, -3), 1.0),
        (10.0, (2, -3), 1.0),
        (-6.0, (-1, 4), 1.0),
        # zoom: alone, then with rotation and shift
        (0.0, (0, 0), 1.1),
        (8.0, (-2, 1), 0.9),
    ],
)
def test_affine_with_shift_and_zoom_matches_torchvision_random_affine(digits, angle, shift, zoom):
    """The per-image transform of ``RandomAffine`` (which rounds shifts to whole pixels and turns
    clockwise, where ``rotate`` turns counter-clockwise): the classic pipeline augments alike."""
    x, raw = digits
    tx, ty = shift
    ours = affine(
        x,
        torch.full((len(x),), -angle),
        torch.tensor([[tx / 28, ty / 28]] * len(x)),
        torch.full((len(x),), zoom),
    )
    ref = TF.affine(
        raw,
        angle=angle,
        translate=[tx, ty],
        scale=zoom,
        shear=[0.0, 0.0],
        interpolation=InterpolationMode.BILINEAR,
    )
    assert ((ref - MEAN) / STD - ours).abs().max() < MAX_DIFF


def test_augment_draws_angles_shifts_and_zooms_within_bounds(monkeypatch, digits):
    seen = []
    original = data.affine

    def spy(images, degrees, shift=None, zoom=None, displacement=None):
        assert displacement is None  # no elastic deformation asked for
        seen.append((degrees.clone(), None if shift is None else shift.clone(), zoom))
        return original(images, degrees, shift, zoom)

    monkeypatch.setattr(data, "affine", spy)
    x = digits[0].repeat(8, 1, 1, 1)  # 256 images
    torch.manual_seed(0)
    out = augment_batch(x, Augment(degrees=7))
    ((degrees, shift, zoom),) = seen
    assert out.shape == x.shape and shift is None and zoom is None
    assert degrees.shape == (256,)
    assert degrees.abs().max() <= 7
    assert degrees.min() < -5 and degrees.max() > 5  # spread over the range, not one angle
    assert len(degrees.unique()) > 250

    augment_batch(x, Augment(degrees=5, translate=0.1))
    degrees, shift, zoom = seen[1]
    assert degrees.abs().max() <= 5 and shift.shape == (256, 2) and shift.abs().max() <= 0.1
    assert shift.min() < -0.07 and shift.max() > 0.07 and zoom is None

    augment_batch(x, Augment(scale=0.1))
    degrees, shift, zoom = seen[2]
    assert not degrees.any() and shift is None and zoom.shape == (256,)
    assert (zoom - 1).abs().max() <= 0.1 and zoom.min() < 0.93 and zoom.max() > 1.07


@pytest.mark.parametrize("alpha, sigma", [(34.0, 4.0), (50.0, 5.0), (8.0, 1.5), (20.0, 0.0)])
def test_the_elastic_field_is_torchvisions(alpha, sigma):
    """From the same random numbers, the field ``ElasticTransform.get_params`` makes: on an image
    that is not square, so the width and the height cannot be swapped unseen."""
    torch.manual_seed(3)
    ours = data.elastic_displacement(
        torch.zeros(1, 1, 24, 36), Augment(elastic_alpha=alpha, elastic_sigma=sigma)
    )
    torch.manual_seed(3)
    reference = transforms.ElasticTransform.get_params([alpha, alpha], [sigma, sigma], [24, 36])
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    assert ours.abs().mean() > 0.005  # it moves pixels


def test_each_image_gets_its_own_elastic_field():
    fields = data.elastic_displacement(
        torch.zeros(16, 1, 28, 28), Augment(elastic_alpha=34.0, elastic_sigma=4.0)
    )
    assert fields.shape == (16, 28, 28, 2)
    assert all(not torch.equal(fields[0], other) for other in fields[1:])


def test_affine_with_a_displacement_is_torchvisions_elastic_transform(digits):
    x, raw = digits
    torch.manual_seed(0)
    field = data.elastic_displacement(x, Augment(elastic_alpha=34.0, elastic_sigma=4.0))
    ours = affine(x, torch.zeros(len(x)), displacement=field)
    for i in (0, 9, len(x) - 1):
        ref = TF.elastic_transform(raw[i : i + 1], field[i : i + 1], InterpolationMode.BILINEAR, [0.0])
        assert ((ref - MEAN) / STD - ours[i : i + 1]).abs().max() < MAX_DIFF
    assert (ours - x).abs().mean() > 0.05  # it did deform


def test_the_displacement_moves_the_rotated_image_as_the_classic_pipeline_composes_them(digits):
    """``Compose([RandomAffine, ElasticTransform])`` moves each pixel of the transformed image, so
    a displacement the same everywhere is a shift applied after the rotation: ``-2 shift``."""
    x, _ = digits
    angles = torch.linspace(-20, 20, len(x))
    shift = torch.tensor([[0.05, -0.03]]).expand(len(x), 2)
    uniform_move = (-2 * shift)[:, None, None, :].expand(len(x), 28, 28, 2)
    torch.testing.assert_close(
        affine(x, angles, displacement=uniform_move), affine(x, angles, shift), atol=1e-5, rtol=0
    )


def test_augment_adds_the_elastic_field_only_when_asked(monkeypatch, digits):
    seen = []
    original = data.affine

    def spy(images, degrees, shift=None, zoom=None, displacement=None):
        seen.append(displacement)
        return original(images, degrees, shift, zoom, displacement)

    monkeypatch.setattr(data, "affine", spy)
    x = digits[0]
    augment_batch(x, Augment(degrees=12, translate=0.1))
    out = augment_batch(x, Augment(degrees=12, translate=0.1, elastic_alpha=34.0, elastic_sigma=4.0))
    assert seen[0] is None and seen[1].shape == (len(x), 28, 28, 2) and out.shape == x.shape


@pytest.mark.parametrize("kind", ["fast", "torchvision"])
def test_without_augmentation_is_the_same_training_set_as_it_is(kind):
    """Every image once per epoch, in batches of the same size, shuffled and not augmented."""
    images, labels = load_mnist("test", limit=64)
    options = {"workers": 0} if kind == "torchvision" else {}
    train = data.LOADERS[kind](
        images, labels, 16, "cpu", shuffle=True, augment=Augment(degrees=12), **options
    )
    clean = data.without_augmentation(train, "cpu")
    batches = list(clean)
    assert len(clean) == len(train) == 4 and [len(y) for _, y in batches] == [16] * 4
    x, y = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    assert not torch.equal(y, labels)  # shuffled
    # the same (image, label) pairs: each image's sum tells them apart, and a rotation would change it
    ours, expected = x.sum((1, 2, 3)), normalize(images).sum((1, 2, 3))
    torch.testing.assert_close(ours.sort().values, expected.sort().values, atol=1e-3, rtol=0)
    assert torch.equal(y[ours.argsort()], labels[expected.argsort()])
    if kind == "fast":  # the same tensors, not a second copy of the training set
        assert clean.images is train.images and train.augment


def test_the_classic_pipeline_draws_within_the_same_bounds():
    transform = data.torchvision_transform(Augment(degrees=12, translate=0.1, scale=0.1))
    assert transform.degrees == [-12.0, 12.0] and transform.translate == (0.1, 0.1)
    assert transform.scale == (0.9, 1.1)
    assert data.torchvision_transform(Augment(degrees=7)).scale is None
    composed = data.torchvision_transform(Augment(degrees=12, elastic_alpha=34.0, elastic_sigma=4.0))
    affine_step, elastic_step = composed.transforms  # the affine first, as the fast pipeline composes them
    assert affine_step.degrees == [-12.0, 12.0]
    assert elastic_step.alpha == [34.0, 34.0] and elastic_step.sigma == [4.0, 4.0]
    assert elastic_step.interpolation == InterpolationMode.BILINEAR


def test_augment_off_is_falsy_and_the_loader_skips_it(monkeypatch):
    assert not Augment() and not Augment(degrees=0) and Augment(degrees=7) and Augment(translate=0.1)
    assert Augment(scale=0.1) and Augment(elastic_alpha=34.0, elastic_sigma=4.0)
    monkeypatch.setattr(data, "affine", lambda *a, **k: pytest.fail("augmented without augmentation"))
    images, labels = load_mnist("test", limit=10)
    ((x, _),) = list(data.TensorLoader(images, labels, 10, "cpu"))
    assert torch.equal(x, normalize(images))


def test_a_folder_without_mnist_is_refused_and_nothing_is_downloaded(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torchvision.datasets, "MNIST", lambda *a, **k: pytest.fail("tried to download MNIST"))
    (tmp_path / "notes.txt").write_text("not MNIST")
    with pytest.raises(DataError) as caught:
        load_mnist("test", tmp_path)
    assert [p.name for p in tmp_path.rglob("*")] == ["notes.txt"]  # nothing written
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        f"{tmp_path.resolve()}: holds none of the four MNIST files"
    )
    assert "--data-dir / MNIST_LITE_DATA" in message and "git checkout data/" in message
