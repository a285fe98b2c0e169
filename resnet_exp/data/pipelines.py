"""From uint8 images (N, C, H, W) to float batches (B, C, size, size) in [0, 1]: torchvision's
transform per image behind a DataLoader (``pipeline=torchvision``), or the whole set resized once
and gathered batch by batch on the training device (``pipeline=device``), to the same values. Where
the config asks, both then augment the training batches (``data.augment=crop_flip``: He et al.'s
pad-4 crop and flip) and normalise every batch by the data set's per-channel mean and std
(``data.normalize``); off in the seed's recipe."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2

from resnet_exp.data.sampling import generator

PAD = 4  # He et al.'s crop: a 32-pixel image padded by 4 pixels on each side (scaled with the size)


@dataclass(frozen=True)
class Finish:
    """What follows the resize, from the config: the training batches' augmentation
    (``data.augment``) and the normalisation by the data set's per-channel ``mean`` and ``std``
    (``data.normalize``: None where off)."""

    augment: str = "none"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pad: int = PAD  # the crop's padding at the training size: He et al.'s 4 of 32, scaled


def resize_transform(size: int | None, finish: Finish = Finish(), train: bool = False) -> v2.Transform:
    """The seed's transform: bilinear resize of the image (C, H, W) to ``size``, then floats in [0, 1];
    ``size`` None: the image at its own size, as floats in [0, 1]. Then, for a training image, the
    augmentation ``finish`` names (drawn from the loader workers' random state: unlike the device
    pipeline's, not the same draws again after a resume), and for every image its normalisation."""
    resize = [] if size is None else [v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)]
    steps = [*resize, v2.ToDtype(torch.float32, scale=True)]
    if train and finish.augment == "crop_flip":
        steps += [CropSelf(finish.pad), v2.RandomHorizontalFlip()]
    if finish.mean is not None:
        steps.append(v2.Normalize(finish.mean, finish.std))
    return v2.Compose(steps)


class CropSelf(v2.Transform):
    """``RandomCrop`` of an image's own size, padded by ``pad`` zeros on each side."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return v2.RandomCrop(image.shape[-1], padding=self.pad)(image)


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """He et al.'s augmentation of a float batch (B, C, H, W) on its device, image by image: padded
    by ``pad`` zeros on each side, cropped back to H x W at a random offset, flipped left-right with
    probability 1/2; the draws from ``generator`` (on the CPU), so a batch is augmented the same way
    wherever it is drawn again."""
    b, c, h, w = x.shape
    rows = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device, non_blocking=True)
    cols = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device, non_blocking=True)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device, non_blocking=True)
    padded = F.pad(x, (pad, pad, pad, pad))
    i = (rows[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    j = (cols[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    out = padded[
        torch.arange(b, device=x.device)[:, None, None, None],
        torch.arange(c, device=x.device)[None, :, None, None],
        i,
        j,
    ]
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


_STATS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def normalize(x: torch.Tensor, finish: Finish) -> torch.Tensor:
    """A float batch (B, C, H, W) less the data set's per-channel mean, over its std (where on)."""
    if finish.mean is None:
        return x
    key = (finish.mean, finish.std, x.device)
    if key not in _STATS:  # made on the device once, not copied there every batch
        _STATS[key] = tuple(torch.tensor(v, device=x.device).view(1, -1, 1, 1) for v in (finish.mean, finish.std))
    mean, std = _STATS[key]
    return (x - mean) / std


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

    def __init__(
        self,
        images: ResizedImages,
        labels: torch.Tensor,
        batch_size: int,
        sampler: Sampler[int],
        finish: Finish = Finish(),
        augment_seed: int | None = None,
    ) -> None:
        self.images, self.labels, self.batch_size, self.sampler = images, labels, batch_size, sampler
        self.finish, self.augment_seed = finish, augment_seed  # augment_seed: None, no augmentation
        self.batch_sampler = None  # as a DataLoader built from a sampler: Lightning looks for both

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        indices = list(self.sampler)
        order = torch.as_tensor(indices, dtype=torch.long).to(self.labels.device, non_blocking=True)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = model_input(self.images[idx])
            if self.augment_seed is not None and self.finish.augment == "crop_flip":
                # drawn from (seed, epoch, the batch's first image): the same on a resume mid-epoch
                g = generator(self.augment_seed, getattr(self.sampler, "epoch", 0), indices[start])
                x = crop_flip(x, g, self.finish.pad).contiguous(memory_format=torch.channels_last)
            yield normalize(x, self.finish), self.labels[idx]


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
