"""Our training step against the seed's, in the seed's own framework (MXNet 1.9.1).

    python experiments/seed_gap/step_check.py --mxnet-python VENV/bin/python [--order post] [--steps 5]

Our ResNet (the project's, built from its config) trains for ``--steps`` SGD steps (lr 0.1) on
real training images, resized as the project resizes them: full batches of 256, then a partial one
of 96, as an epoch ends. Before every step its whole state (weights and every BatchNorm's running
mean and variance) is copied into the seed's MXNet network (``mxnet_seed.py``), which takes the
seed's step on the same batch (summed loss, ``trainer.step(256)``), in float32 and in float64.
From the same state, ours takes the step three ways: our default loss (``loss.reduction=mean``) and
the seed's step scaling (``loss.reduction=batch_size``, as training/classifier.py computes it) in float32, and
the latter in float64. float64 against float64 tells whether the two steps are the same
computation; float32 against float32 how far the two frameworks' roundings take them apart.

Compared, per step: the change of all weights, of all running means and of all running variances,
as ``|ours - seed| / |seed|`` of the changes over all layers (L2 norms). Weights that our float64
step leaves in place are left out (biases of convolutions that a BatchNorm follows: their gradient
is zero in exact arithmetic, so both frameworks move them by rounding noise alone). After the last
step both evaluate 256 test images in evaluation mode (BatchNorm normalising with its running
statistics) from our final state. Also: the seed's resize of the first batch's 28x28 images
(Gluon's transforms.Resize(96) + ToTensor) against ours. Prints a markdown report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from resnet_exp.config import compose_config
from resnet_exp.training.build import datamodule, network

HERE = Path(__file__).resolve().parent
LR, BATCH = 0.1, 256


def states(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy().copy() for k, v in net.state_dict().items() if "num_batches" not in k}


def step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reduction: str) -> None:
    """One plain SGD step in train mode, with training/classifier.py's loss for ``reduction``."""
    net.train().zero_grad()
    loss = F.cross_entropy(net(x), y)
    if reduction == "batch_size":
        loss = loss * (len(y) / BATCH)
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= LR * p.grad


def one_step(cfg, state: dict[str, torch.Tensor], x, y, reduction: str, dtype=torch.float32) -> dict[str, np.ndarray]:
    net = network(cfg).to(dtype)
    net.load_state_dict(state)
    step(net, x.to(dtype), y, reduction)
    return states(net)


def zero_gradient(before: dict[str, np.ndarray], after64: dict[str, np.ndarray]) -> set[str]:
    """The weights that a float64 step leaves in place (change below 1e-9 of the largest): biases of
    convolutions that a BatchNorm follows, whose gradient is zero in exact arithmetic."""
    change = {k: np.linalg.norm(after64[k] - before[k]) for k in after64 if "running" not in k}
    return {k for k, c in change.items() if c < 1e-9 * max(change.values())}


def replay(
    args, before, batches, final, x_eval, raw, dtype: str
) -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The seed's step from each of ``before``'s states in MXNet (``mxnet_seed.py --replay``), in
    ``dtype``: the state after each step, the evaluation-mode logits of ``x_eval`` from the state
    ``final``, and Gluon's resize of ``raw``."""
    with tempfile.TemporaryDirectory() as tmp:
        given, back = Path(tmp) / "ours.npz", Path(tmp) / "seed.npz"
        arrays = {f"before{i}/{k}": v.astype(dtype) for i, s in enumerate(before) for k, v in s.items()}
        arrays.update({f"x{i}": x.numpy().astype(dtype) for i, (x, _) in enumerate(batches)})
        arrays.update({f"y{i}": y.numpy() for i, (_, y) in enumerate(batches)})
        arrays.update({f"final/{k}": v.astype(dtype) for k, v in final.items()})
        np.savez(given, order=args.order, batch_size=BATCH, steps=len(batches), lr=LR, raw=raw, dtype=dtype,
                 x_eval=x_eval.astype(dtype), **arrays)  # fmt: skip
        quiet = {**os.environ, "MXNET_STORAGE_FALLBACK_LOG_VERBOSE": "0"}  # float64 runs MXNet's own kernels
        command = [args.mxnet_python, str(HERE / "mxnet_seed.py"), "--replay", str(given), str(back)]
        subprocess.run(command, check=True, env=quiet)
        out = dict(np.load(back))
    steps = [{k.split("/", 1)[1]: v.astype(np.float64) for k, v in out.items() if k.startswith(f"step{i}/")}
             for i in range(len(batches))]  # fmt: skip
    return steps, out["eval_logits"].astype(np.float64), out["seed_resized"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mxnet-python", required=True, help="the interpreter of a venv with mxnet (mxnet_env.sh)")
    parser.add_argument("--order", choices=["post", "pre"], default="post")
    parser.add_argument("--steps", type=int, default=5, help="steps in all; the last is the partial batch")
    args = parser.parse_args()

    cfg = compose_config([f"block.order={args.order}", "seed=1"])
    torch.manual_seed(cfg.seed)
    net = network(cfg)
    dm = datamodule(cfg)
    dm.setup()
    images, labels = dm.train_set.resized(torch.device("cpu"), dm.resize)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(cfg.seed))
    sizes = [BATCH] * (args.steps - 1) + [len(labels) % BATCH]
    bounds = np.cumsum([0, *sizes])
    idx = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    batches = [(images[i].float().div(255), labels[i]) for i in idx]

    before, ours = [], {"mean": [], "batch_size": [], "float64": []}
    for x, y in batches:  # the trajectory: our steps with the seed's scaling; from each state, three steps
        state = {k: v.clone() for k, v in net.state_dict().items()}
        before.append(states(net))
        ours["mean"].append(one_step(cfg, state, x, y, "mean"))
        ours["batch_size"].append(one_step(cfg, state, x, y, "batch_size"))
        ours["float64"].append(one_step(cfg, state, x, y, "batch_size", torch.float64))
        step(net, x, y, "batch_size")
    skip = zero_gradient(before[0], ours["float64"][0])

    raw = dm.train_set.images[idx[0][:64]].numpy()
    final = states(net)
    test_images, _ = dm.test_set.resized(torch.device("cpu"), dm.resize)
    x_eval = test_images[torch.arange(BATCH)].float().div(255)
    logits = {}
    for dtype in (torch.float32, torch.float64):
        ours_eval = network(cfg).to(dtype)
        ours_eval.load_state_dict({k: torch.from_numpy(v) for k, v in final.items()}, strict=False)
        with torch.no_grad():
            logits[dtype] = ours_eval.eval()(x_eval.to(dtype)).double().numpy()
    replays = [replay(args, before, batches, final, x_eval.numpy(), raw, d) for d in ("float32", "float64")]
    (seed32, eval32, resized), (seed64, eval64, _) = replays

    kinds = {
        "weights": lambda k: "running" not in k and k not in skip,
        "running means": lambda k: k.endswith("running_mean"),
        "running variances": lambda k: k.endswith("running_var"),
    }

    def distance(i: int, mine: dict[str, np.ndarray], theirs: dict[str, np.ndarray], chosen) -> float:
        keys = [k for k in mine if chosen(k)]
        a = np.concatenate([(mine[k] - before[i][k]).ravel() for k in keys])
        b = np.concatenate([(theirs[k] - before[i][k]).ravel() for k in keys])
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    print(f"## One training step, ours against the seed's MXNet network ({args.order})\n")
    print(f"From the same state, on the same batch, SGD lr {LR}, on the CPU. Each cell: |change A - change B| /")
    print("|change B| over all layers (L2), A and B: ours (mean: our default loss; batch_size: the seed's step")
    print("scaling) and the seed's MXNet step, in float32 (fp32) or float64 (fp64); the last column of each")
    print(f"group is our own float32 step against our float64 one. {len(skip)} convolution biases that a")
    print("BatchNorm follows are left out of the weights (zero gradient in exact arithmetic: our float64")
    print("step leaves them in place).\n")
    columns = {
        "mean, fp32": lambda i: (ours["mean"][i], seed32[i]),
        "batch_size, fp32": lambda i: (ours["batch_size"][i], seed32[i]),
        "batch_size, fp64": lambda i: (ours["float64"][i], seed64[i]),
        "ours fp32 vs fp64": lambda i: (ours["batch_size"][i], ours["float64"][i]),
    }
    head = ["step", "images"] + [f"{kind}: {c}" for kind in kinds for c in columns]
    print("| " + " | ".join(head) + " |")
    print("|---" * len(head) + "|")
    for i, n in enumerate(sizes):
        cells = [f"{distance(i, *pair(i), chosen):.1e}" for chosen in kinds.values() for pair in columns.values()]
        print(f"| {i + 1} | {n} | " + " | ".join(cells) + " |")
    print(f"\nEvaluation mode after the last step, {BATCH} test images, logits ours against the seed's (same state):")
    for name, a, b in (("fp32", logits[torch.float32], eval32), ("fp64", logits[torch.float64], eval64)):
        same = float((a.argmax(1) == b.argmax(1)).mean())
        distance = np.linalg.norm(a - b) / np.linalg.norm(b)
        print(f"{name} |ours - seed's| / |seed's| {distance:.1e}, same class for {same:.1%}.")
    diff = np.abs(batches[0][0][: len(raw)].numpy() - resized)
    print(f"\nResize(96) of {len(raw)} training images, ours against Gluon's, on a 0-1 scale: largest difference "
          f"{diff.max():.4f} ({diff.max() * 255:.1f} grey levels), mean {diff.mean():.5f}.")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
