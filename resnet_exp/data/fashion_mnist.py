"""Fashion-MNIST's files: finding them, checking them, reading them with torchvision's IDX reader.
Its spec (sizes, classes, channels) is ``DATA_SETS["fashion_mnist"]`` in the data face.

The data set is found, in this order: ``data.root`` if set; Debian's ``dataset-fashion-mnist``
directory; torchvision's own download into ``data.cache_dir`` (when the network allows). Each of
the four IDX files may be gzipped or not; each is checked (magic number, image count and size,
label range) before use, and an error names the file that fails.
"""

from __future__ import annotations

import functools
import gzip
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file

from resnet_exp.data import DataError, data_set

SPEC = data_set("fashion_mnist")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = SPEC.classes
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SIDE = 28


@dataclass(frozen=True)
class Split:
    name: str
    images: str
    labels: str
    count: int


SPLITS = {
    "train": Split("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte", SPEC.train_images),
    "test": Split("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", SPEC.test_images),
}


def idx_file(directory: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``directory``, plain or gzipped (plain preferred), or None."""
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def missing_files(directory: Path) -> list[str]:
    """The names of the four IDX files that ``directory`` lacks in either form."""
    stems = [s for split in SPLITS.values() for s in (split.images, split.labels)]
    return [s for s in stems if idx_file(directory, s) is None]


def raw_bytes(path: Path) -> bytes:
    """The bytes of an IDX file, gunzipped where it ends in .gz; an error names the file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: cannot be read ({e}); the file is truncated or corrupt") from None


def _check_header(path: Path, data: bytes, magic: int, count: int) -> None:
    """Check an IDX file's magic number, item count, image size and length against the split."""
    dims = 3 if magic == IMAGE_MAGIC else 1
    header = 4 * (dims + 1)
    if len(data) < header:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header; the file is truncated")
    got_magic, *shape = struct.unpack(f">{dims + 1}I", data[:header])
    if got_magic != magic:
        raise DataError(
            f"{path}: magic number {got_magic}, expected {magic} "
            f"(an IDX {'image' if magic == IMAGE_MAGIC else 'label'} file)"
        )
    expected = [count, SIDE, SIDE][:dims]
    if shape != expected:
        raise DataError(f"{path}: holds shape {tuple(shape)}, expected {tuple(expected)}")
    size = header + count * (SIDE * SIDE if dims == 3 else 1)
    if len(data) != size:
        raise DataError(f"{path}: {len(data)} bytes, expected {size}; the file is truncated or corrupt")


def read_idx(path: Path, magic: int, count: int) -> torch.Tensor:
    """Read one checked IDX file with torchvision's reader (gzipped files go through a temp copy)."""
    data = raw_bytes(path)
    _check_header(path, data, magic, count)
    reader = read_image_file if magic == IMAGE_MAGIC else read_label_file
    if path.suffix != ".gz":
        return reader(str(path))
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.stem
        plain.write_bytes(data)
        return reader(str(plain))


def load_split(directory: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) uint8 and labels (N,) int64 of ``split`` ('train' or 'test')."""
    s = SPLITS[split]
    files = []
    for stem in (s.images, s.labels):
        path = idx_file(directory, stem)
        if path is None:
            raise DataError(f"{directory}: no {stem} or {stem}.gz")
        files.append(path)
    stamp = tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in (f.stat() for f in files))
    images, labels = _read_checked(files[0], files[1], s.count, stamp)
    return images.unsqueeze(1).clone(), labels.clone()


@functools.lru_cache(maxsize=len(SPLITS))
def _read_checked(images_file: Path, labels_file: Path, count: int, stamp: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's two files, read and checked once per process while they stay the same files
    (``stamp``: inode, size, modification time): the check before a sweep and each job's set-up
    read them once between them. Copies go out; a file that fails is read again next time."""
    images = read_idx(images_file, IMAGE_MAGIC, count)
    labels = read_idx(labels_file, LABEL_MAGIC, count)
    bad = (labels < 0) | (labels >= len(CLASSES))
    if bad.any():
        raise DataError(
            f"{labels_file}: label {int(labels[bad][0])} at index {int(bad.nonzero()[0])} is outside 0-{len(CLASSES) - 1}"
        )
    return images, labels


def locate(root: str | None, cache_dir: str, download: bool = True) -> Path:
    """The directory that holds the four IDX files; downloads with torchvision as the last resort."""
    if root:
        directory = Path(root).expanduser()
        if not directory.is_dir():
            raise DataError(f"data.root={root} is not a directory; point data.root at the folder of the four IDX files")
        missing = missing_files(directory)
        if missing:
            raise DataError(f"data.root={root} lacks {', '.join(missing)} (plain or .gz)")
        return directory
    if not missing_files(DEBIAN_DIR):
        return DEBIAN_DIR
    raw = Path(cache_dir).expanduser() / "FashionMNIST" / "raw"
    if not missing_files(raw):
        return raw
    tried = [f"{DEBIAN_DIR} (Debian's dataset-fashion-mnist): not installed", f"{raw}: empty"]
    if download:
        try:
            FashionMNIST(str(Path(cache_dir).expanduser()), train=True, download=True)
            FashionMNIST(str(Path(cache_dir).expanduser()), train=False, download=True)
            return raw
        except Exception as e:  # any network or disk failure: report it with the other attempts
            tried.append(f"torchvision download into {raw}: {type(e).__name__}: {e}".split("\n")[0])
    else:
        tried.append("torchvision download: off (data.download=false)")
    raise DataError(
        "Fashion-MNIST not found. Tried: " + "; ".join(tried) + ". Fix: `apt-get install dataset-fashion-mnist`, "
        "or set data.root=DIR to a folder with the four IDX files, or allow the download"
    )


def reference_dataset(directory: Path, cache_dir: str, train: bool, transform) -> FashionMNIST:
    """torchvision's own ``FashionMNIST`` on the files in ``directory``, for the benchmark's
    reference pipeline: it reads ``ROOT/FashionMNIST/raw`` with the four files uncompressed, made
    once in ``cache_dir`` from the files the project uses (no download)."""
    root = Path(cache_dir).expanduser() / "torchvision"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split in SPLITS.values():
        for stem in (split.images, split.labels):
            if (raw / stem).is_file():
                continue
            (raw / f"{stem}.tmp").write_bytes(raw_bytes(idx_file(directory, stem)))
            (raw / f"{stem}.tmp").replace(raw / stem)
    return FashionMNIST(str(root), train=train, transform=transform)
