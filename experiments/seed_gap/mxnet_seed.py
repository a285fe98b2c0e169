"""The seed's own code, in the seed's framework: the small ResNet of Dive into Deep Learning's ResNet
chapter (MXNet edition, as the seed adapted it) trained with the book's train_ch5 loop, so that the
seed's test curve can be reproduced where the seed's numbers came from, not from our port.

Runs in its own environment (MXNet 1.9.1 needs numpy < 1.24; it is not a dependency of the project):
    experiments/seed_gap/mxnet_env.sh VENV
    VENV/bin/python experiments/seed_gap/mxnet_seed.py --order post --seed 1 --out post-1.json

Faithful to the seed: Gluon's FashionMNIST (decoded as Gluon does, from the .gz files the project
reads: Debian's are recompressed, so Gluon's SHA-1 check of the download would refuse them),
transforms.Resize(96) + ToTensor, DataLoader(shuffle=True, last_batch="keep"), Xavier init,
plain SGD lr 0.1 with trainer.step(batch_size) on the summed loss, the test set evaluated after
every epoch with BatchNorm's moving statistics (outside autograd.record). What differs: the CPU
instead of the seed's GPU, and a seed for MXNet's, numpy's and Python's random generators.

Options beyond the seed, for the seed_gap question (each off by default):
  --step mean          every batch's mean loss, a full step for the last, partial batch (our default)
Prints the seed's line per epoch; --out writes every number as JSON.

    --replay IN.npz OUT.npz   the other half of step_check.py: one seed step from each of our states
                              (weights and BatchNorm statistics from IN) on the same batch; every
                              weight and moving statistic after it into OUT
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd
from mxnet.gluon import data as gdata
from mxnet.gluon import loss as gloss
from mxnet.gluon import nn

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


class Residual(nn.Block):
    """d2l's Residual (post, ResNet v1) and its pre-activation twin (BN-ReLU-conv-BN-ReLU-conv; a
    projection shortcut takes relu(x)), as the seed wrote them."""

    def __init__(self, num_channels, order, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.order = order
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def forward(self, X):
        if self.order == "post":
            Y = nd.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            return nd.relu(Y + X)
        Y = self.conv1(nd.relu(self.bn1(X)))
        Y = self.conv2(nd.relu(self.bn2(Y)))
        if self.conv3:
            X = self.conv3(nd.relu(X))
        return Y + X


def resnet_block(num_channels, num_residuals, order, first_block=False):
    blk = nn.Sequential()
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.add(Residual(num_channels, order, use_1x1conv=True, strides=2))
        else:
            blk.add(Residual(num_channels, order))
    return blk


def seed_net(order):
    net = nn.Sequential()
    net.add(
        nn.Conv2D(32, kernel_size=7, strides=2, padding=3),
        nn.BatchNorm(),
        nn.Activation("relu"),
        nn.MaxPool2D(pool_size=3, strides=2, padding=1),
    )
    net.add(resnet_block(32, 2, order, first_block=True), resnet_block(64, 2, order), resnet_block(128, 2, order))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


class FashionMNIST(gdata.vision.FashionMNIST):
    """Gluon's FashionMNIST read from ``root`` as it is (no download, no SHA-1 of the .gz file);
    decoded exactly as Gluon's MNIST._get_data does."""

    def _get_data(self):
        data, label = (self._train_data, self._train_label) if self._train else (self._test_data, self._test_label)
        with gzip.open(os.path.join(self._root, label[0]), "rb") as fin:
            fin.read(8)
            label = np.frombuffer(fin.read(), dtype=np.uint8).astype(np.int32)
        with gzip.open(os.path.join(self._root, data[0]), "rb") as fin:
            fin.read(16)
            data = np.frombuffer(fin.read(), dtype=np.uint8).reshape(len(label), 28, 28, 1)
        self._data = nd.array(data, dtype=data.dtype)
        self._label = label


def load_data_fashion_mnist(batch_size, resize, root, num_workers, train_limit=0):
    """d2l's load_data_fashion_mnist, with the root given (the files are read, never downloaded)."""
    transformer = gdata.vision.transforms.Compose(
        [gdata.vision.transforms.Resize(resize), gdata.vision.transforms.ToTensor()]
    )
    mnist_train = FashionMNIST(root=root, train=True)
    mnist_test = FashionMNIST(root=root, train=False)
    if train_limit:
        mnist_train = gdata.SimpleDataset(list(zip(mnist_train._data[:train_limit], mnist_train._label[:train_limit])))
    train_iter = gdata.DataLoader(
        mnist_train.transform_first(transformer), batch_size, shuffle=True, num_workers=num_workers
    )
    test_iter = gdata.DataLoader(
        mnist_test.transform_first(transformer), batch_size, shuffle=False, num_workers=num_workers
    )
    return train_iter, test_iter


def evaluate_accuracy(data_iter, net, ctx):
    acc_sum, n = nd.array([0], ctx=ctx), 0
    for X, y in data_iter:
        X, y = X.as_in_context(ctx), y.as_in_context(ctx).astype("float32")
        acc_sum += (net(X).argmax(axis=1) == y).sum()
        n += y.size
    return acc_sum.asscalar() / n


def train_step(net, trainer, loss, X, y, batch_size, step):
    with autograd.record():
        y_hat = net(X)
        l_sum = loss(y_hat, y).sum()
    l_sum.backward()
    # the seed: trainer.step(batch_size), so a last batch of 96 takes a 96/256 step;
    # "mean": every batch's mean (PyTorch's cross-entropy with a full step for every batch)
    trainer.step(batch_size if step == "seed" else y.shape[0])
    return l_sum, y_hat


def pairs(net):
    """(our state-dict prefix, Gluon block) for every layer with parameters: our ResNet's names."""
    yield "conv", net[0]
    yield "bn", net[1]
    for s, stage in enumerate((net[4], net[5], net[6]), start=1):
        for u, unit in enumerate(stage):
            for ours, theirs in (("conv1", unit.conv1), ("bn1", unit.bn1), ("conv2", unit.conv2), ("bn2", unit.bn2)):
                yield f"stage{s}.{u}.{ours}", theirs
            if unit.conv3 is not None:
                yield f"stage{s}.{u}.shortcut", unit.conv3
    yield "fc.1", net[8]


# our parameter and buffer names, Gluon's
NAMES = {"weight": "weight", "bias": "bias"}
BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}


def state(net):
    out = {}
    for prefix, block in pairs(net):
        names = BN_NAMES if isinstance(block, nn.BatchNorm) else NAMES
        for ours, theirs in names.items():
            out[f"{prefix}.{ours}"] = getattr(block, theirs).data().asnumpy()
    return out


def load_state(net, arrays, prefix):
    for name, block in pairs(net):
        names = BN_NAMES if isinstance(block, nn.BatchNorm) else NAMES
        for ours, theirs in names.items():
            param = getattr(block, theirs)
            param.set_data(nd.array(arrays[f"{prefix}{name}.{ours}"], dtype=param.dtype))


def replay(src, dst):
    """One seed step from each of our states (``src``, from step_check.py): for every step ``i``,
    the weights and BatchNorm statistics ``before{i}/``, the batch ``x{i}``, ``y{i}``; what the step
    makes of them into ``dst`` as ``step{i}/``; the logits of ``x_eval`` in evaluation mode from
    the state ``final/``; and Gluon's resize of the raw images. In the
    ``dtype`` given (float64: MXNet's own kernels, oneDNN has none)."""
    given = np.load(src)
    batch_size, steps, dtype = int(given["batch_size"]), int(given["steps"]), str(given["dtype"])
    net = seed_net(str(given["order"]))
    net.initialize(init=init.Xavier())
    net.cast(dtype)
    net(nd.array(given["x0"][:2], dtype=dtype))  # Gluon sizes its parameters at the first call
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": float(given["lr"])})
    loss = gloss.SoftmaxCrossEntropyLoss()
    out = {}
    for i in range(steps):
        load_state(net, given, f"before{i}/")
        X, y = nd.array(given[f"x{i}"], dtype=dtype), nd.array(given[f"y{i}"], dtype=dtype)
        train_step(net, trainer, loss, X, y, batch_size, "seed")
        out.update({f"step{i}/{k}": v for k, v in state(net).items()})
    load_state(net, given, "final/")  # evaluation mode (outside autograd.record): the moving statistics
    out["eval_logits"] = net(nd.array(given["x_eval"], dtype=dtype)).asnumpy()
    transformer = gdata.vision.transforms.Compose(
        [gdata.vision.transforms.Resize(96), gdata.vision.transforms.ToTensor()]
    )
    out["seed_resized"] = np.stack(
        [transformer(nd.array(img[:, :, None], dtype="uint8")).asnumpy() for img in given["raw"]]
    )
    np.savez(dst, **out)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--replay":
        return replay(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--order", choices=["post", "pre"], default="post")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--root", default=DEBIAN_DIR, help="folder with the four original .gz files")
    parser.add_argument(
        "--num-workers", type=int, default=0, help="loader processes (the seed: 4; compute dominates here)"
    )
    parser.add_argument("--step", choices=["seed", "mean"], default="seed")
    parser.add_argument("--train-limit", type=int, default=0, help="first N training images only (trying it out)")
    parser.add_argument("--out", help="JSON file for every number")
    args = parser.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    mx.random.seed(args.seed)
    ctx = mx.cpu()
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, 96, args.root, args.num_workers, args.train_limit)
    net = seed_net(args.order)
    net.initialize(force_reinit=True, ctx=ctx, init=init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr})
    loss = gloss.SoftmaxCrossEntropyLoss()
    record = {
        "framework": f"mxnet {mx.__version__}",
        "args": vars(args),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "epochs": [],
    }
    print("training on", ctx, "with", record["framework"], flush=True)
    for epoch in range(args.epochs):
        train_l_sum, train_acc_sum, n, start = 0.0, 0.0, 0, time.time()
        for X, y in train_iter:
            X, y = X.as_in_context(ctx), y.as_in_context(ctx)
            l_sum, y_hat = train_step(net, trainer, loss, X, y, args.batch_size, args.step)
            y = y.astype("float32")
            train_l_sum += l_sum.asscalar()
            train_acc_sum += (y_hat.argmax(axis=1) == y).sum().asscalar()
            n += y.size
        test_acc = evaluate_accuracy(test_iter, net, ctx)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_l_sum / n,
            "train_acc": train_acc_sum / n,
            "test_acc": float(test_acc),
            "time_s": time.time() - start,
        }
        record["epochs"].append(row)
        print(
            "epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec"
            % (row["epoch"], row["train_loss"], row["train_acc"], row["test_acc"], row["time_s"]),
            flush=True,
        )
        if args.out:
            with open(args.out + ".part", "w") as f:
                json.dump(record, f, indent=1)
            os.replace(args.out + ".part", args.out)


if __name__ == "__main__":
    main()
