"""The data: one module of files per data set (``fashion_mnist``, ``cifar10``: finding, checking and
reading them), the pipelines that turn uint8 images into batches at the training size
(``pipelines``), the order they are served in (``sampling``), and the one LightningDataModule that
puts them together (``module``).

This face imports no torch: the CLI's checks read a data set's spec and ``DataError`` from here
before torch is loaded. A data set is a ``DataSet`` in ``DATA_SETS``, a module of files that
provides ``locate`` and ``load_split`` (and ``reference_dataset`` for the benchmark; ``check``
here reads every split through them),
and its config group option ``conf/data/NAME.yaml``; nothing else names it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# How batches are made: ``device`` resizes the data set once, on the training device, and gathers
# batches there; ``torchvision`` is the DataLoader with worker processes and per-image torchvision
# transforms (the textbook path, the reference); ``auto``: device, on the CPU and on a GPU (the
# faster of the two on both, measured with ``python -m resnet_exp.bench``).
PIPELINES = ("auto", "device", "torchvision")
# Training augmentation (``data.augment``): none (the seed's recipe), or He et al.'s for CIFAR (2015,
# Sec. 4.2): each image padded by 4 pixels (zeros), a random crop of its own size, a random
# horizontal flip.
AUGMENTATIONS = ("none", "crop_flip")


class DataError(Exception):
    """The data set cannot be found or a file of it is not what it should be."""


@dataclass(frozen=True)
class DataSet:
    """What a data set holds, for the checks that must not load it."""

    name: str  # its config name: data=NAME, data.name
    title: str  # how messages and reports name it
    train_images: int
    test_images: int
    classes: tuple[str, ...]
    channels: int  # the model's in_channels
    colour: str  # the channels in words, for messages
    files: str  # the module that finds, checks and reads its files
    size: int  # the images' height and width (data.resize=null trains at this size)
    # per channel, on the [0, 1] scale: the training set's mean and standard deviation at its own
    # size (data.normalize=true subtracts and divides by them; a test holds them to the files)
    mean: tuple[float, ...]
    std: tuple[float, ...]


DATA_SETS = {
    d.name: d
    for d in (
        DataSet(
            "fashion_mnist",
            "Fashion-MNIST",
            60_000,
            10_000,
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            1,
            "grey",
            "resnet_exp.data.fashion_mnist",
            28,
            (0.2860,),
            (0.3530,),
        ),  # fmt: skip
        DataSet(
            "cifar10",
            "CIFAR-10",
            50_000,
            10_000,
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            3,
            "colour",
            "resnet_exp.data.cifar10",
            32,
            (0.4914, 0.4822, 0.4465),
            (0.2470, 0.2435, 0.2616),
        ),  # fmt: skip
    )
}


def data_set(name: str) -> DataSet:
    """The spec of data set ``name``; a DataError names the known ones."""
    if name not in DATA_SETS:
        raise DataError(f"data.name={name} is not a data set; choose one of: {', '.join(sorted(DATA_SETS))}")
    return DATA_SETS[name]


def files(name: str) -> ModuleType:
    """The module that finds, checks and reads data set ``name``'s files (imports torch)."""
    return importlib.import_module(data_set(name).files)


def check(name: str, root: str | None, cache_dir: str, download: bool = True) -> Path:
    """Find data set ``name`` and read and check both its splits: what a run will use, before it
    starts. Returns the folder of its files."""
    source = files(name)
    directory = source.locate(root, cache_dir, download)
    for split in ("train", "test"):
        source.load_split(directory, split)
    return directory
