"""The LightningDataModule: a data set's files (``data.name``), read and split, served through a
pipeline in the sampling's order."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from resnet_exp.data import AUGMENTATIONS, PIPELINES, DataError, data_set, files
from resnet_exp.data.pipelines import (
    PAD,
    DeviceBatches,
    Finish,
    ImageTensors,
    model_input,
    normalize,
    resize_transform,
    resolve_pipeline,
    worker_context,
)
from resnet_exp.data.sampling import EpochShuffle, Shard, per_process_batch, validation_split


class ImageDataModule(pl.LightningDataModule):
    """The data set ``name`` (``resnet_exp.data.DATA_SETS``) at ``resize`` pixels (None: its own
    size): the train set shuffled anew each epoch (from the seed and
    the epoch, see ``EpochShuffle``), the test set evaluated each epoch. With ``val_size`` > 0 that
    many training images are held out (``validation_split``, the same for every seed) and evaluated
    each epoch too: ``val_dataloader`` then gives two loaders, validation first, test second.

    Its loaders yield ``(images, labels)``: float images (B, C, resize, resize) in [0, 1] and int64
    labels. In a run on several processes each process gets its own shard and its share of the
    batch (``batch_size`` is the batch of all of them together); the trainer runs with
    ``use_distributed_sampler=False``, since the loaders shard themselves. Any other pipeline that
    yields the same can replace them without touching the model.
    """

    def __init__(
        self,
        name: str = "fashion_mnist",
        root: str | None = None,
        cache_dir: str = "~/.cache/resnet-exp",
        download: bool = True,
        resize: int | None = 96,
        batch_size: int = 256,
        num_workers: int = 2,
        seed: int = 0,
        pipeline: str = "auto",
        val_size: int = 0,
        normalize: bool = False,
        augment: str = "none",
    ) -> None:
        super().__init__()
        if pipeline not in PIPELINES:
            raise DataError(f"data.pipeline={pipeline} is not a pipeline; choose one of: {', '.join(PIPELINES)}")
        if augment not in AUGMENTATIONS:
            raise DataError(f"data.augment={augment} is not valid; choose one of: {', '.join(AUGMENTATIONS)}")
        spec = data_set(name)
        # He et al.'s crop pads their 32-pixel images by 4: the same share of the image at the training size
        pad = max(1, round(PAD * (resize or spec.size) / 32))
        self.finish = Finish(str(augment), *((spec.mean, spec.std) if normalize else (None, None)), pad)
        self.pipeline = pipeline
        self.files = files(name)  # a DataError names the data sets where name is none of them
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
        self.files.locate(self.root, self.cache_dir, self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.directory is None:
            self.directory = self.files.locate(self.root, self.cache_dir, download=False)
        transform = resize_transform(self.resize, self.finish)
        images, labels = self.files.load_split(self.directory, "train")
        train, val = validation_split(len(labels), self.val_size)
        self.train_set = ImageTensors(
            images[train], labels[train], resize_transform(self.resize, self.finish, train=True)
        )
        self.val_set = ImageTensors(images[val], labels[val], transform) if self.val_size else None
        self.test_set = ImageTensors(*self.files.load_split(self.directory, "test"), transform)

    @property
    def train_size(self) -> int:
        """How many images the training set holds (after the validation split)."""
        return len(self.train_set)

    def training_images(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Training images ``idx`` (into the training set) and their labels on ``device``, as the
        device loader serves a batch: resized once, floats in [0, 1], channels_last. For what looks
        at fixed training images between steps: precise BN, the signal probes (normalised as every
        batch is, not augmented)."""
        images, labels = self.train_set.resized(device, self.resize)
        idx = idx.to(device)
        return normalize(model_input(images[idx]), self.finish), labels[idx]

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
            seed = self.seed if shuffle else None  # the training batches alone are augmented
            return DeviceBatches(*dataset.resized(self.device(), self.resize), batch, sampler, self.finish, seed)
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
