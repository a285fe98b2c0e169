"""The real Fashion-MNIST files: found, checked, served at 96 px; broken files named in errors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision import transforms

from resnet_exp.data import DataError, fashion_mnist
from resnet_exp.data.fashion_mnist import load_split, locate
from resnet_exp.data.module import ImageDataModule
from resnet_exp.data.pipelines import resize_transform


def test_real_files_load_and_check(data_dir):
    images, labels = load_split(data_dir, "train")
    assert images.shape == (60_000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [6000] * 10
    images, labels = load_split(data_dir, "test")
    assert images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [1000] * 10


def test_datamodule_batches_at_96_px(data_dir):
    dm = ImageDataModule(root=str(data_dir), batch_size=32, num_workers=0)
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 96, 96) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.9
    assert y.shape == (32,) and 0 <= int(y.min()) and int(y.max()) <= 9
    xt, yt = next(iter(dm.val_dataloader()))
    # the test set is not shuffled: its first batch is the file's first 32 images
    assert torch.equal(yt, dm.test_set.labels[:32])
    assert len(dm.train_dataloader()) == 1875 and len(dm.val_dataloader()) == 313


def _first_batch(seed: int, data_dir: Path) -> torch.Tensor:
    dm = ImageDataModule(root=str(data_dir), batch_size=64, num_workers=0, seed=seed)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))[1]


def test_same_seed_same_batches(data_dir):
    a, b, c = _first_batch(3, data_dir), _first_batch(3, data_dir), _first_batch(4, data_dir)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pixels_match_torchvision_pil_pipeline(data_dir):
    """The textbook path: PIL image, transforms.Resize(96), ToTensor."""
    images, _ = load_split(data_dir, "test")
    ours = resize_transform(96)
    reference = transforms.Compose([transforms.Resize(96), transforms.ToTensor()])
    for i in (0, 1, 4242):
        a = ours(images[i])
        b = reference(Image.fromarray(images[i, 0].numpy(), mode="L"))
        assert a.shape == b.shape == (1, 96, 96)
        assert float((a - b).abs().max()) <= 2 / 255


@pytest.fixture()
def plain_copy(data_dir, tmp_path) -> Path:
    """The four IDX files gunzipped into a directory of their own."""
    out = tmp_path / "plain"
    out.mkdir()
    for gz in data_dir.glob("*.gz"):
        with gzip.open(gz, "rb") as src, open(out / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def test_plain_and_gzipped_directories_read_the_same(data_dir, plain_copy):
    assert locate(str(plain_copy), "unused") == plain_copy
    for split in ("train", "test"):
        for a, b in zip(load_split(plain_copy, split), load_split(data_dir, split)):
            assert torch.equal(a, b)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(DataError, match=rf"data.root={tmp_path}/nope is not a directory"):
        locate(str(tmp_path / "nope"), "unused")


def test_directory_without_the_files_lists_them(tmp_path):
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k"):
        locate(str(tmp_path), "unused")


def test_truncated_gzip_file_is_named(data_dir, tmp_path):
    for gz in data_dir.glob("*.gz"):
        shutil.copy(gz, tmp_path)
    victim = tmp_path / "train-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"{victim}: cannot be read .*truncated or corrupt"):
        load_split(tmp_path, "train")
    load_split(tmp_path, "test")  # the intact files still load


def test_truncated_plain_file_is_named(plain_copy):
    victim = plain_copy / "t10k-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:-784])
    with pytest.raises(DataError, match=rf"{victim}: 7839232 bytes, expected 7840016; the file is truncated"):
        load_split(plain_copy, "test")


def test_wrong_magic_is_named(plain_copy):
    images, labels = plain_copy / "t10k-images-idx3-ubyte", plain_copy / "t10k-labels-idx1-ubyte"
    images.rename(plain_copy / "swap")
    labels.rename(images)
    (plain_copy / "swap").rename(labels)
    with pytest.raises(DataError, match=rf"{images}: magic number 2049, expected 2051 \(an IDX image file\)"):
        load_split(plain_copy, "test")


def set_label(path: Path, index: int, value: int) -> None:
    """Overwrite label ``index`` of a plain IDX label file (after its 8-byte header)."""
    raw = bytearray(path.read_bytes())
    raw[8 + index] = value
    path.write_bytes(bytes(raw))


def test_label_out_of_range_is_named(plain_copy):
    labels = plain_copy / "t10k-labels-idx1-ubyte"
    set_label(labels, 5, 11)
    with pytest.raises(DataError, match=rf"{labels}: label 11 at index 5 is outside 0-9"):
        load_split(plain_copy, "test")


def test_a_file_changed_after_it_was_read_is_read_again(plain_copy):
    """A process reads each split once (the check before a sweep and each job's set-up share it),
    and hands out copies; a file replaced or rewritten since is read and checked again."""
    images, labels = load_split(plain_copy, "test")
    images[0] = 0  # a copy: the next caller gets the file's pixels
    assert int(load_split(plain_copy, "test")[0][0].sum()) > 0
    path = plain_copy / "t10k-labels-idx1-ubyte"
    set_label(path, 7, 10)
    with pytest.raises(DataError, match=rf"{path}: label 10 at index 7 is outside 0-9"):
        load_split(plain_copy, "test")


def test_nothing_found_says_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(DataError) as err:
        locate(None, str(tmp_path / "cache"), download=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path}/no-debian (Debian's dataset-fashion-mnist): not installed" in message
    assert f"{tmp_path}/cache/FashionMNIST/raw: empty" in message
    assert "apt-get install dataset-fashion-mnist" in message and "data.root=DIR" in message


def test_cache_directory_is_used_when_debian_is_absent(data_dir, tmp_path, monkeypatch):
    """The layout torchvision's download leaves (cache/FashionMNIST/raw/*.gz) is found without a download."""
    raw = tmp_path / "cache" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in data_dir.glob("*.gz"):
        shutil.copy(gz, raw)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    assert locate(None, str(tmp_path / "cache"), download=False) == raw


def test_epoch_shuffle_depends_on_seed_and_epoch_alone():
    """A resumed run must see epoch e in the same order as a run that got there in one go."""
    from resnet_exp.data.sampling import EpochShuffle

    def order(seed, epoch, fresh=True):
        s = EpochShuffle(1000, seed)
        if not fresh:  # a sampler that already went through earlier epochs
            for e in range(epoch):
                s.set_epoch(e)
                list(s)
        s.set_epoch(epoch)
        return list(s)

    assert sorted(order(3, 2)) == list(range(1000))
    assert order(3, 2) == order(3, 2, fresh=False)
    assert order(3, 2) != order(3, 3) and order(3, 2) != order(4, 2)


def test_processes_read_disjoint_shards_that_make_up_the_one_process_batches():
    """With DDP, process r takes positions r, r + world, ... of the epoch's permutation: batch b of all
    processes together holds exactly the samples of batch b of the one-process run, none twice."""
    from resnet_exp.data.sampling import EpochShuffle, Shard

    n, seed, batch = 1000, 5, 24
    for epoch in (0, 3):
        one = EpochShuffle(n, seed)
        one.set_epoch(epoch)
        single = list(one)
        for world in (2, 3):
            shards = []
            for rank in range(world):
                s = EpochShuffle(n, seed, rank=rank, world=world)
                s.set_epoch(epoch)
                shards.append(list(s))
            assert [len(s) for s in shards] == [n // world] * world  # equal: no process waits for another
            seen = [i for s in shards for i in s]
            assert len(seen) == len(set(seen)) == n - n % world
            assert set(seen) == set(single[: n - n % world])
            per = batch // world
            for b in range(len(shards[0]) // per):
                together = {i for s in shards for i in s[b * per : (b + 1) * per]}
                assert together == set(single[b * batch : (b + 1) * batch])
    # A resume in the middle of an epoch goes on with the rest of this process's shard.
    s = EpochShuffle(n, seed, resume=(0, 48), rank=1, world=2)
    assert list(s) == single_epoch_shard(n, seed, 1, 2)[48:]
    # The test set: every sample once over the processes, in order within each.
    shards = [list(Shard(10, r, 3)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def single_epoch_shard(n: int, seed: int, rank: int, world: int) -> list[int]:
    from resnet_exp.data.sampling import EpochShuffle

    return list(EpochShuffle(n, seed))[: n - n % world][rank::world]


def test_the_batch_is_split_over_the_processes_or_refused():
    from resnet_exp.data.sampling import per_process_batch

    assert per_process_batch(256, 1) == 256 and per_process_batch(256, 4) == 64
    with pytest.raises(DataError, match=r"^data.batch_size=256 cannot be split evenly over 3 processes; choose a"):
        per_process_batch(256, 3)


def test_device_pipeline_batches_match_the_torchvision_pipeline(data_dir):
    """pipeline=device (the data set resized once on the device, batches gathered there) gives the
    batches of the torchvision DataLoader path: the same samples in the same order, pixels within one
    grey level; and exactly the batches that resizing each batch on its own would give."""
    from resnet_exp.data.pipelines import DeviceBatches, resize_batch

    def module(pipeline):
        dm = ImageDataModule(root=str(data_dir), batch_size=64, num_workers=0, seed=3, pipeline=pipeline)
        dm.setup()
        dm.resume_at(0, 2)  # a resume in epoch 1 after two batches: both must skip the same ones
        return dm

    tv, dev = module("torchvision"), module("device")
    assert dev.resolved_pipeline() == "device" and tv.resolved_pipeline() == "torchvision"
    assert module("auto").resolved_pipeline() == "device"  # the default, on the CPU too
    for make in ("train_dataloader", "val_dataloader"):
        a, b = getattr(tv, make)(), getattr(dev, make)()
        assert isinstance(b, DeviceBatches) and len(a) == len(b)
        for (xa, ya), (xb, yb), _ in zip(a, b, range(3)):
            assert xb.shape == xa.shape == (64, 1, 96, 96) and xb.dtype == xa.dtype == torch.float32
            assert torch.equal(ya, yb)
            assert (xa - xb).abs().max() <= 1 / 255 + 1e-6
            assert (xa - xb).abs().mean() < 1e-3
            assert xb.is_contiguous(memory_format=torch.channels_last)
        # the set resized once holds, image for image, what resizing a batch gives
        images = (dev.train_set if make == "train_dataloader" else dev.test_set).images
        order = list(b.sampler)[:64]
        assert torch.equal(next(iter(b))[0], resize_batch(images[order], 96))
    with pytest.raises(DataError, match=r"^data.pipeline=gpu is not a pipeline; choose one of: auto, device, torch"):
        ImageDataModule(pipeline="gpu")


def test_validation_split_is_held_out_of_training_and_the_same_for_every_seed(data_dir):
    from resnet_exp.data.sampling import validation_split

    train, val = validation_split(60_000, 5_000)
    assert len(train) == 55_000 and len(val) == 5_000
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(60_000))  # disjoint, complete
    assert torch.equal(validation_split(60_000, 5_000)[1], val)  # fixed: not drawn from the run's seed
    images, labels = load_split(data_dir, "train")
    dms = []
    for seed in (1, 2):
        dm = ImageDataModule(root=str(data_dir), batch_size=100, num_workers=0, seed=seed, val_size=5_000)
        dm.setup()
        dms.append(dm)
        assert torch.equal(dm.val_set.images, images[val]) and torch.equal(dm.train_set.images, images[train])
        loaders = dm.val_dataloader()
        assert [len(dl) for dl in loaders] == [50, 100]  # validation first, then the test set
        assert len(dm.train_dataloader()) == 550
    assert torch.equal(dms[0].val_set.labels, dms[1].val_set.labels)
    no_split = ImageDataModule(root=str(data_dir), num_workers=0)
    no_split.setup()
    assert no_split.val_set is None and len(no_split.train_set) == 60_000
    with pytest.raises(DataError, match=r"^data.val_size=60000 must be from 0 \(no validation split\) to 59999$"):
        validation_split(60_000, 60_000)


def test_images_resized_when_first_needed_equal_the_set_resized_at_once(data_dir):
    """On the CPU the device pipeline resizes each image when a batch first needs it; the batches
    are those of the whole set resized at once (as on a GPU), whatever the order of the requests."""
    from resnet_exp.data.pipelines import ResizedImages, resize_all

    images = load_split(data_dir, "test")[0][:3000]
    at_once = resize_all(images, 96)
    lazy = ResizedImages(images, 96, torch.device("cpu"))
    assert lazy.lazy and not bool(lazy.done.any())
    for idx in (torch.tensor([5, 2999, 7]), torch.randperm(3000)[:256], torch.arange(3000)):
        assert torch.equal(lazy[idx], at_once[idx])
    assert bool(lazy.done.all())


def write_cifar10(folder: Path, per_batch: int = 16, seed: int = 0) -> dict[str, tuple]:
    """A small CIFAR-10 in the release's own format: ``cifar-10-batches-py`` with five training
    batches and a test batch, each a pickled dict of uint8 ``data`` (N, 3072: the red, green and
    blue planes of a 32x32 image) and ``labels``. Returns what each split holds."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    held: dict[str, list] = {"train": [], "test": []}
    for name in [f"data_batch_{n}" for n in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {
            "batch_label": name,
            "labels": labels,
            "data": data,
            "filenames": [f"{i}.png" for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        held["test" if name == "test_batch" else "train"].append((data, labels))
    return {
        split: (np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32), sum((lab for _, lab in parts), []))
        for split, parts in held.items()
    }


def test_cifar10_batches_are_read_channel_by_channel_and_bad_ones_named(tmp_path):
    from resnet_exp.data import files

    cifar10 = files("cifar10")
    folder = tmp_path / "cifar-10-batches-py"
    held = write_cifar10(folder)
    for root in (folder, tmp_path):  # the folder itself, or one that holds it
        assert cifar10.locate(str(root), "unused", download=False) == folder
    for split, (images, labels) in held.items():
        x, y = cifar10.load_split(folder, split)
        assert x.shape == (80 if split == "train" else 16, 3, 32, 32) and x.dtype == torch.uint8
        assert torch.equal(x, torch.from_numpy(images)) and y.tolist() == labels and y.dtype == torch.int64
    # image 0's green plane is bytes 1024-2047 of its row, as the release lays it out
    row = held["train"][0].reshape(-1, 3072)[0]
    assert torch.equal(cifar10.load_split(folder, "train")[0][0, 1].flatten(), torch.from_numpy(row[1024:2048].copy()))

    victim = folder / "data_batch_3"
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"^{victim}: cannot be read as a CIFAR-10 batch \("):
        cifar10.load_split(folder, "train")
    import pickle

    victim.write_bytes(pickle.dumps(shutil.rmtree))  # a pickle that names a function: never called
    with pytest.raises(
        DataError, match=rf"^{victim}: cannot be read .*names shutil.rmtree, which a CIFAR-10 batch does not hold"
    ):
        cifar10.load_split(folder, "train")
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match=rf"^data.root={folder} lacks test_batch \(in it or in cifar-10-batches-py/\)$"):
        cifar10.locate(str(folder), "unused", download=False)


def test_normalisation_statistics_are_the_training_sets_own(data_dir):
    """data.normalize divides by the spec's per-channel mean and std: those of Fashion-MNIST's
    60,000 training images at their own size, on the [0, 1] scale, to the four decimals the spec
    gives."""
    from resnet_exp.data import data_set

    images, _ = load_split(locate(str(data_dir), "unused"), "train")
    x = images.double() / 255
    spec = data_set("fashion_mnist")
    assert (round(x.mean().item(), 4),) == spec.mean
    assert (round(x.std().item(), 4),) == spec.std


def test_crop_flip_is_he_et_al_s_pad_crop_and_flip_composed_by_hand():
    """crop_flip pads each image by 4 zeros, crops its own size at the drawn offset and flips it
    left-right where the draw says: the same as composing those three steps by hand from the same
    draws (CPU generator, in the order rows, columns, flips)."""
    from resnet_exp.data.pipelines import PAD, crop_flip

    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = crop_flip(x, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    rows = torch.randint(0, 2 * PAD + 1, (2,), generator=g)
    cols = torch.randint(0, 2 * PAD + 1, (2,), generator=g)
    flips = torch.rand(2, generator=g) < 0.5
    for k in range(2):
        padded = torch.zeros(3, 6 + 2 * PAD, 6 + 2 * PAD)
        padded[:, PAD : PAD + 6, PAD : PAD + 6] = x[k]
        crop = padded[:, rows[k] : rows[k] + 6, cols[k] : cols[k] + 6]
        assert torch.equal(out[k], crop.flip(-1) if flips[k] else crop)
    assert out.shape == x.shape


def test_normalised_and_augmented_batches_on_both_pipelines(data_dir):
    """With data.normalize and data.augment=crop_flip: the test batches of both pipelines are the
    resized images less the mean over the std (to one grey level, as without); the training batches
    are augmented, the same batch drawn again the same way (a resume mid-epoch sees what the first
    attempt saw), another epoch differently; precise BN's fixed images are normalised, not augmented."""
    from resnet_exp.data import data_set

    spec = data_set("fashion_mnist")

    def module(pipeline, **kw):
        dm = ImageDataModule(root=str(data_dir), batch_size=32, num_workers=0, seed=3, pipeline=pipeline, **kw)
        dm.setup()
        return dm

    plain = module("device")
    for pipeline in ("device", "torchvision"):
        dm = module(pipeline, normalize=True, augment="crop_flip")
        (xn, yn), (xp, yp) = next(iter(dm.val_dataloader())), next(iter(plain.val_dataloader()))
        assert torch.equal(yn, yp)
        assert (xn - (xp - spec.mean[0]) / spec.std[0]).abs().max() <= (1 / 255) / spec.std[0] + 1e-5
        train, train_plain = next(iter(dm.train_dataloader()))[0], next(iter(plain.train_dataloader()))[0]
        assert train.shape == train_plain.shape == (32, 1, 96, 96)
        assert not torch.allclose(train, (train_plain - spec.mean[0]) / spec.std[0], atol=0.05)  # augmented
    dev = module("device", normalize=True, augment="crop_flip")
    loader = dev.train_dataloader()
    first, again = next(iter(loader))[0], next(iter(loader))[0]
    assert torch.equal(first, again)
    loader.sampler.set_epoch(1)
    assert not torch.equal(next(iter(loader))[0], first)
    fixed, _ = dev.training_images(torch.arange(4), torch.device("cpu"))
    raw, _ = plain.training_images(torch.arange(4), torch.device("cpu"))
    assert torch.allclose(fixed, (raw - spec.mean[0]) / spec.std[0])
    with pytest.raises(DataError, match=r"^data.augment=flip is not valid; choose one of: none, crop_flip"):
        ImageDataModule(augment="flip")
