"""CIFAR-10's files (He et al.'s data): finding them, checking them, reading them. Its spec is
``DATA_SETS["cifar10"]`` in the data face.

The data set is the ``python`` version of the original: a folder ``cifar-10-batches-py`` with
``data_batch_1`` ... ``data_batch_5`` (training) and ``test_batch``, each a pickled dict whose
``data`` is a uint8 array (N, 3072), the 32x32 image's red, green and blue planes, and whose
``labels`` are N class indices. Found, in this order: ``data.root`` (the folder itself or one that
holds it); ``data.cache_dir``; torchvision's own download into ``data.cache_dir`` (when the network
allows). torchvision's ``CIFAR10`` reads the same files, but only after checking each one's MD5
against the official release, so a folder of other CIFAR-format batches (a subset, the test suite's
small files) cannot go through it; the files are read here instead, with an unpickler that builds
nothing but numpy arrays, and checked (keys, shapes, labels) before use.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10

from resnet_exp.data import DataError, data_set

SPEC = data_set("cifar10")
FOLDER = "cifar-10-batches-py"  # as the release unpacks, and torchvision downloads, it
SPLITS = {"train": [f"data_batch_{n}" for n in range(1, 6)], "test": ["test_batch"]}
SIDE = 32


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, refusing every other class (a pickle can run
    any code it names)."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how pickle protocol 2 writes bytes from Python 3
    }  # fmt: skip

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch does not hold")


def missing_files(directory: Path) -> list[str]:
    """The batch files that ``directory`` lacks."""
    return [name for names in SPLITS.values() for name in names if not (directory / name).is_file()]


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file's images (N, 3, 32, 32) uint8 and labels (N,), checked; an error names the file."""
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="latin1").load()
    except Exception as e:  # truncated, not a pickle, or a pickle of something else
        raise DataError(f"{path}: cannot be read as a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: holds a {type(batch).__name__}, not a CIFAR-10 batch (a dict with data and labels)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{path}: lacks {'data' if 'data' not in batch else 'labels'}; not a CIFAR-10 batch")
    images, labels = batch["data"], np.asarray(batch["labels"])
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 2
        or images.shape[1] != 3 * SIDE * SIDE
    ):
        shape = getattr(images, "shape", None)
        raise DataError(f"{path}: data holds {shape}, expected uint8 (N, {3 * SIDE * SIDE}): 32x32 RGB images")
    if labels.shape != (len(images),):
        raise DataError(f"{path}: {len(labels)} labels for {len(images)} images")
    bad = (labels < 0) | (labels >= len(SPEC.classes))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: label {int(labels[index])} at index {index} is outside 0-{len(SPEC.classes) - 1}")
    return images.reshape(-1, 3, SIDE, SIDE), labels


def load_split(directory: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of ``split`` ('train' or 'test')."""
    parts = []
    for name in SPLITS[split]:
        if not (directory / name).is_file():
            raise DataError(f"{directory}: no {name}")
        parts.append(_read_batch(directory / name))
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))
    return images, labels


def locate(root: str | None, cache_dir: str, download: bool = True) -> Path:
    """The folder that holds the six batch files; downloads with torchvision as the last resort."""
    if root:
        given = Path(root).expanduser()
        if not given.is_dir():
            raise DataError(
                f"data.root={root} is not a directory; point data.root at the folder of CIFAR-10's batch files"
            )
        directory = given / FOLDER if (given / FOLDER).is_dir() else given
        missing = missing_files(directory)
        if missing:
            raise DataError(f"data.root={root} lacks {', '.join(missing)} (in it or in {FOLDER}/)")
        return directory
    cached = Path(cache_dir).expanduser() / FOLDER
    if not missing_files(cached):
        return cached
    tried = [f"{cached}: empty"]
    if download:
        try:
            CIFAR10(str(cached.parent), train=True, download=True)
            return cached
        except Exception as e:  # any network or disk failure: report it with the other attempt
            tried.append(f"torchvision download into {cached.parent}: {type(e).__name__}: {e}".split("\n")[0])
    else:
        tried.append("torchvision download: off (data.download=false)")
    raise DataError(
        "CIFAR-10 not found. Tried: " + "; ".join(tried) + ". Fix: allow the download, or set data.root=DIR to "
        f"a folder with CIFAR-10's python batches ({FOLDER})"
    )


def reference_dataset(directory: Path, cache_dir: str, train: bool, transform) -> CIFAR10:
    """torchvision's own ``CIFAR10`` on the files in ``directory``, for the benchmark's reference
    pipeline (it checks them against the official release's MD5 sums)."""
    if directory.name != FOLDER:
        raise DataError(f"{directory}: torchvision's CIFAR10 reads the batches only from a folder named {FOLDER}")
    return CIFAR10(str(directory.parent), train=train, transform=transform)
