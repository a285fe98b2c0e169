"""Fashion-MNIST: finding and checking the files, and the LightningDataModule that serves it.

The data set is found, in this order: ``data.root`` if set; Debian's ``dataset-fashion-mnist``
directory; torchvision's own download into ``data.cache_dir`` (when the network allows). Each of
the four IDX files may be gzipped or not; each is checked (magic number, image count and size,
label range) before use, and an error names the file that fails.
"""

from __future__ import annotations

import gzip
import multiprocessing
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.datasets import FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.transforms import v2

from resnet_exp.config import PIPELINES

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = FashionMNIST.classes
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SIDE = 28


class DataError(Exception):
    """The data set cannot be found or a file of it is not what it should be."""


@dataclass(frozen=True)
class Split:
    name: str
    images: str
    labels: str
    count: int


SPLITS = {
    "train": Split("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": Split("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
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
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` ('train' or 'test')."""
    s = SPLITS[split]
    files = []
    for stem in (s.images, s.labels):
        path = idx_file(directory, stem)
        if path is None:
            raise DataError(f"{directory}: no {stem} or {stem}.gz")
        files.append(path)
    images = read_idx(files[0], IMAGE_MAGIC, s.count)
    labels = read_idx(files[1], LABEL_MAGIC, s.count)
    bad = (labels < 0) | (labels >= len(CLASSES))
    if bad.any():
        raise DataError(
            f"{files[1]}: label {int(labels[bad][0])} at index {int(bad.nonzero()[0])} is outside 0-{len(CLASSES) - 1}"
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


def check(root: str | None, cache_dir: str, download: bool = True) -> Path:
    """Find the data set and read and check all four files: what a run will use, before it starts."""
    directory = locate(root, cache_dir, download)
    for split in SPLITS:
        load_split(directory, split)
    return directory


def resize_transform(size: int) -> v2.Transform:
    """The seed's transform: bilinear resize of the 28x28 image to ``size``, then floats in [0, 1]."""
    return v2.Compose(
        [
            v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def resolve_pipeline(pipeline: str, device_type: str) -> str:
    """``pipeline`` with ``auto`` decided for a device of type ``device_type``: ``device`` on the CPU
    and on CUDA GPUs, where it is the faster pipeline; torchvision's DataLoader elsewhere."""
    if pipeline != "auto":
        return pipeline
    return "device" if device_type in ("cpu", "cuda") else "torchvision"


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (B, H, W), on any device, as ``resize_transform`` resizes each one: bilinear
    (antialiased) to ``size``, rounded to whole grey levels as torchvision's uint8 resize is;
    uint8 (B, 1, size, size)."""
    x = F.interpolate(images.unsqueeze(1).float(), size=(size, size), mode="bilinear", antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """A batch of uint8 images (B, H, W) as ``resize_transform`` makes each one: ``resize_uint8``,
    then floats in [0, 1]; shape (B, 1, size, size)."""
    return resize_uint8(images, size).float().div_(255)


def resize_all(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """``resize_uint8`` of a whole data set, a chunk at a time (bounded float memory); each image is
    resized on its own, so the result is the same as batch by batch."""
    out = torch.empty(len(images), 1, size, size, dtype=torch.uint8, device=images.device)
    for start in range(0, len(images), chunk):
        out[start : start + chunk] = resize_uint8(images[start : start + chunk], size)
    return out


class ResizedImages:
    """A data set's images resized to ``size`` (``resize_uint8``: uint8, N x 1 x size x size) on
    ``device``, each image resized once. On a GPU all of them at once (milliseconds); on the CPU
    each when a batch first needs it (the first epoch pays what resizing per batch costs, later
    epochs only gather; a run of a few batches resizes only those)."""

    def __init__(self, images: torch.Tensor, size: int, device: torch.device) -> None:
        self.lazy = torch.device(device).type == "cpu"
        source = images.to(device)
        if self.lazy:
            self.source = source
            self.resized = torch.empty(len(images), 1, size, size, dtype=torch.uint8, device=device)
            self.done = torch.zeros(len(images), dtype=torch.bool, device=device)
        else:
            self.resized = resize_all(source, size)
        self.size = size

    def __len__(self) -> int:
        return len(self.resized)

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        if self.lazy:
            todo = idx[~self.done[idx]].unique()
            if len(todo):
                self.resized[todo] = resize_uint8(self.source[todo], self.size)
                self.done[todo] = True
        return self.resized[idx]


class DeviceBatches:
    """The ``pipeline=device`` loader: the data set resized once and kept as uint8 on the training
    device (553 MB for the training set at 96 px, ``ResizedImages``), batches gathered from it by
    index and scaled to [0, 1] there, in channels_last layout, so no data crosses from the host and
    no image is resized twice. Iterates like a DataLoader over ``sampler`` (Lightning calls its
    ``set_epoch``); one host-to-device copy of the epoch's indices per epoch, no host sync per batch
    on a GPU."""

    def __init__(self, images: ResizedImages, labels: torch.Tensor, batch_size: int, sampler: Sampler[int]) -> None:
        self.images, self.labels, self.batch_size, self.sampler = images, labels, batch_size, sampler
        self.batch_sampler = None  # as a DataLoader built from a sampler: Lightning looks for both

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        order = torch.as_tensor(list(self.sampler), dtype=torch.long).to(self.labels.device, non_blocking=True)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.images[idx].float().div_(255).contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


def worker_context() -> str | None:
    """How loader worker processes start: named, not inherited. Inside a job of the parallel launcher
    (a joblib/loky worker) the inherited default is loky's own context, which cannot start them;
    ``fork`` is what the DataLoader uses by default on Linux anyway. None (the platform's default)
    where there is no fork."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


class ImageTensors(Dataset):
    """uint8 images (N, H, W) and labels, each image transformed on access as (1, size, size)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self._resized: dict[tuple[torch.device, int], tuple[ResizedImages, torch.Tensor]] = {}

    def resized(self, device: torch.device, size: int) -> tuple[ResizedImages, torch.Tensor]:
        """The images resized to ``size`` and the labels, on ``device``: one ``ResizedImages`` per
        device and size."""
        key = (torch.device(device), size)
        if key not in self._resized:
            self._resized[key] = (ResizedImages(self.images, size, device), self.labels.to(device))
        return self._resized[key]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i].unsqueeze(0)), self.labels[i]


class EpochShuffle(Sampler[int]):
    """A new permutation every epoch, drawn from (seed, epoch) alone: epoch e is shuffled the same way
    whether the run got there in one go or was resumed from a checkpoint. Lightning calls
    ``set_epoch`` at the start of each epoch. ``resume=(epoch, samples)``: that epoch starts after its
    first ``samples`` samples (of this shard), for a run resumed from a checkpoint saved in the middle
    of it.

    With ``world`` processes (DDP), process ``rank`` takes every ``world``-th index of the epoch's
    permutation from position ``rank``: the processes see disjoint shards of equal length, so that
    batch b of every process together is batch b of the one-process run (the same samples; the
    ``n % world`` last ones of each permutation are left out, so that no process waits for another).
    """

    def __init__(self, n: int, seed: int, resume: tuple[int, int] = (0, 0), rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0..{world - 1}")
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.resume_epoch, self.resume_skip = resume
        # The epoch it starts in, before Lightning's first set_epoch: a resumed run's loader is
        # iterated once before that call, and worker processes fetch indices at once.
        self.epoch = self.resume_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self):
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2)
        g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        order = torch.randperm(self.n, generator=g)[: len(self) * self.world][self.rank :: self.world].tolist()
        if self.epoch == self.resume_epoch and self.resume_skip:  # resumed mid-epoch: the rest of it
            order, self.resume_skip = order[self.resume_skip :], 0
        return iter(order)


class Shard(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of ``range(n)`` in order: one process's share of the test
    set, every sample evaluated exactly once over all processes (shards may differ in length by one)."""

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        self.indices = range(rank, n, world)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def per_process_batch(batch_size: int, world: int) -> int:
    """Each of ``world`` processes' share of the batch: the run's batch stays ``batch_size``."""
    if batch_size % world:
        raise DataError(
            f"data.batch_size={batch_size} cannot be split evenly over {world} processes; "
            f"choose a multiple of {world} (the batch is that of all processes together)"
        )
    return batch_size // world


# The held-out validation split (``data.val_size``) is drawn with this seed, not the run's: every
# job of a sweep, whatever its seed, holds out the same images, so paired comparisons stay paired.
VAL_SPLIT_SEED = 20160316


def validation_split(n: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) of ``n`` training images, ``val_size`` of them held
    out, chosen with ``VAL_SPLIT_SEED``; both sorted, so the training set keeps the file's order."""
    if not 0 <= val_size < n:
        raise DataError(f"data.val_size={val_size} must be from 0 (no validation split) to {n - 1}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    return order[val_size:].sort().values, order[:val_size].sort().values


class FashionMNISTDataModule(pl.LightningDataModule):
    """Fashion-MNIST at ``resize`` pixels: the train set shuffled anew each epoch (from the seed and
    the epoch, see ``EpochShuffle``), the test set evaluated each epoch. With ``val_size`` > 0 that
    many training images are held out (``validation_split``, the same for every seed) and evaluated
    each epoch too: ``val_dataloader`` then gives two loaders, validation first, test second.

    Its loaders yield ``(images, labels)``: float images (B, 1, resize, resize) in [0, 1] and int64
    labels. In a run on several processes each process gets its own shard and its share of the
    batch (``batch_size`` is the batch of all of them together); the trainer runs with
    ``use_distributed_sampler=False``, since the loaders shard themselves. Any other pipeline that
    yields the same can replace them without touching the model.
    """

    def __init__(
        self,
        root: str | None = None,
        cache_dir: str = "~/.cache/resnet-exp",
        download: bool = True,
        resize: int = 96,
        batch_size: int = 256,
        num_workers: int = 2,
        seed: int = 0,
        pipeline: str = "auto",
        val_size: int = 0,
    ) -> None:
        super().__init__()
        if pipeline not in PIPELINES:
            raise DataError(f"data.pipeline={pipeline} is not a pipeline; choose one of: {', '.join(PIPELINES)}")
        self.pipeline = pipeline
        self.root, self.cache_dir, self.download = root, cache_dir, download
        self.resize, self.batch_size, self.num_workers, self.seed = resize, batch_size, num_workers, seed
        self.val_size = val_size
        self._placed: torch.device | None = None
        self.directory: Path | None = None
        self.resume = (0, 0)  # (epoch, batches of it already trained), set by resume_at
        self.train_set: ImageTensors | None = None
        self.val_set: ImageTensors | None = None
        self.test_set: ImageTensors | None = None

    def prepare_data(self) -> None:
        locate(self.root, self.cache_dir, self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.directory = locate(self.root, self.cache_dir, download=False) if self.directory is None else self.directory
        transform = resize_transform(self.resize)
        images, labels = load_split(self.directory, "train")
        train, val = validation_split(len(labels), self.val_size)
        self.train_set = ImageTensors(images[train], labels[train], transform)
        self.val_set = ImageTensors(images[val], labels[val], transform) if self.val_size else None
        self.test_set = ImageTensors(*load_split(self.directory, "test"), transform)

    def resume_at(self, epoch: int, batches: int) -> None:
        """Start the training data at batch ``batches`` of epoch ``epoch`` (0-based), where a
        checkpoint saved mid-epoch left off."""
        self.resume = (epoch, batches)

    def _ranks(self) -> tuple[int, int]:
        """(this process's rank, the number of processes) of the run this data module serves."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def device(self) -> torch.device:
        """The device the model trains on: the trainer's; outside a trainer, ``place``'s, or the CPU."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.strategy.root_device
        return self._placed or torch.device("cpu")

    def place(self, device: torch.device) -> None:
        """Serve batches on ``device`` without a trainer (a plain training loop, a probe)."""
        self._placed = torch.device(device)

    def resolved_pipeline(self) -> str:
        """``data.pipeline`` with ``auto`` decided for the device the model trains on."""
        return resolve_pipeline(self.pipeline, self.device().type)

    def _loader(self, dataset: ImageTensors, shuffle: bool) -> DataLoader | DeviceBatches:
        rank, world = self._ranks()
        batch = per_process_batch(self.batch_size, world)
        sampler = (
            EpochShuffle(len(dataset), self.seed, (self.resume[0], self.resume[1] * batch), rank, world)
            if shuffle
            else Shard(len(dataset), rank, world)
        )
        if self.resolved_pipeline() == "device":
            return DeviceBatches(*dataset.resized(self.device(), self.resize), batch, sampler)
        return DataLoader(
            dataset,
            batch_size=batch,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            multiprocessing_context=worker_context() if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The sets evaluated after every epoch: the test set, preceded by the validation split
        where there is one."""
        if self.val_set is None:
            return self._loader(self.test_set, shuffle=False)
        return [self._loader(self.val_set, shuffle=False), self._loader(self.test_set, shuffle=False)]

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
