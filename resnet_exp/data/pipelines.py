"""From uint8 images (N, C, H, W) to float batches (B, C, size, size) in [0, 1]: torchvision's
transform per image behind a DataLoader (``pipeline=torchvision``), or the whole set resized once
and gathered batch by batch on the training device (``pipeline=device``), to the same values."""

from __future__ import annotations

import multiprocessing

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2


def resize_transform(size: int | None) -> v2.Transform:
    """The seed's transform: bilinear resize of the image (C, H, W) to ``size``, then floats in [0, 1];
    ``size`` None: the image at its own size, as floats in [0, 1]."""
    resize = [] if size is None else [v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)]
    return v2.Compose([*resize, v2.ToDtype(torch.float32, scale=True)])


def keeps_size(images: torch.Tensor, size: int | None) -> bool:
    """Whether resizing ``images`` (B, C, H, W) to ``size`` leaves them as they are: ``size`` None
    (the data set's own size) or their own square size."""
    return size is None or tuple(images.shape[-2:]) == (size, size)


def resolve_pipeline(pipeline: str, device_type: str) -> str:
    """``pipeline`` with ``auto`` decided for a device of type ``device_type``: ``device`` on the CPU
    and on CUDA GPUs, where it is the faster pipeline; torchvision's DataLoader elsewhere."""
    if pipeline != "auto":
        return pipeline
    return "device" if device_type in ("cpu", "cuda") else "torchvision"


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (B, C, H, W), on any device, as ``resize_transform`` resizes each one: bilinear
    (antialiased) to ``size``, rounded to whole levels as torchvision's uint8 resize is;
    uint8 (B, C, size, size); ``images`` themselves where ``keeps_size``."""
    if keeps_size(images, size):
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """A batch of uint8 images (B, C, H, W) as ``resize_transform`` makes each one: ``resize_uint8``,
    then floats in [0, 1]; shape (B, C, size, size)."""
    return resize_uint8(images, size).float().div_(255)


def resize_all(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """``resize_uint8`` of a whole data set, a chunk at a time (bounded float memory); each image is
    resized on its own, so the result is the same as batch by batch."""
    out = torch.empty(len(images), images.shape[1], size, size, dtype=torch.uint8, device=images.device)
    for start in range(0, len(images), chunk):
        out[start : start + chunk] = resize_uint8(images[start : start + chunk], size)
    return out


def model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images at the training size as the network takes them: floats in [0, 1], channels_last."""
    return images.float().div_(255).contiguous(memory_format=torch.channels_last)


class ResizedImages:
    """A data set's images resized to ``size`` (``resize_uint8``: uint8, N x C x size x size) on
    ``device``, each image resized once. On a GPU all of them at once (milliseconds); on the CPU
    each when a batch first needs it (the first epoch pays what resizing per batch costs, later
    epochs only gather; a run of a few batches resizes only those)."""

    def __init__(self, images: torch.Tensor, size: int | None, device: torch.device) -> None:
        source = images.to(device)
        kept = keeps_size(images, size)
        self.lazy = torch.device(device).type == "cpu" and not kept
        if kept:
            self.resized = source
        elif self.lazy:
            self.source = source
            self.resized = torch.empty(len(images), images.shape[1], size, size, dtype=torch.uint8, device=device)
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
    device (553 MB for Fashion-MNIST's training set at 96 px, ``ResizedImages``), batches gathered from it by
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
            yield model_input(self.images[idx]), self.labels[idx]


def worker_context() -> str | None:
    """How loader worker processes start: named, not inherited. Inside a job of the parallel launcher
    (a joblib/loky worker) the inherited default is loky's own context, which cannot start them;
    ``fork`` is what the DataLoader uses by default on Linux anyway. None (the platform's default)
    where there is no fork."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


class ImageTensors(Dataset):
    """uint8 images (N, C, H, W) and labels, each image transformed on access as (C, size, size)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self._resized: dict[tuple[torch.device, int], tuple[ResizedImages, torch.Tensor]] = {}

    def resized(self, device: torch.device, size: int | None) -> tuple[ResizedImages, torch.Tensor]:
        """The images resized to ``size`` and the labels, on ``device``: one ``ResizedImages`` per
        device and size."""
        key = (torch.device(device), size)
        if key not in self._resized:
            self._resized[key] = (ResizedImages(self.images, size, device), self.labels.to(device))
        return self._resized[key]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.labels[i]

