"""The seed's step scaling (loss.reduction=batch_size) and BatchNorm statistics recomputed before
evaluation (evaluation.precise_bn_batches): each against operations composed by hand, and what
they leave alone."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from resnet_exp.config import compose_config
from resnet_exp.models.resnet import ResNet
from resnet_exp.training.build import build
from resnet_exp.training.precise_bn import batch_norms, indices, recompute
from tests.conftest import RESULTS, SMALL, rows, run_cli


def trained(reduction: str) -> tuple[dict, list[tuple[torch.Tensor, torch.Tensor]], torch.nn.Module]:
    """One epoch on 20 training images at batch 16 (a full batch, then a partial one of 4), fp32:
    the weights after it, the batches it saw, and the network it started from."""
    cfg = compose_config(["data.val_size=59980", "data.batch_size=16", "trainer.max_epochs=1",
                          "trainer.limit_val_batches=0", "trainer.precision=32-true", "trainer.accelerator=cpu",
                          f"loss.reduction={reduction}", "diagnostics.signal=false"])  # fmt: skip
    pl.seed_everything(0, verbose=False)
    datamodule, module = build(cfg)
    start = {k: v.clone() for k, v in module.net.state_dict().items()}
    seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append((batch[0].clone(), batch[1].clone()))

    trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()])  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    net = ResNet(**cfg.block, **cfg.model)
    net.load_state_dict(start)
    return module.net.state_dict(), seen, net


def test_seed_step_scaling_shortens_the_partial_batchs_step_only():
    """SGD (lr 0.1, no momentum) by hand: the full batch's mean loss, then the partial batch's mean
    loss times 4/16 (batch_size) or not (mean). The same operations in the same order as the run,
    so the weights agree on any CPU."""
    for reduction, scale in (("batch_size", 4 / 16), ("mean", 1.0)):
        weights, seen, net = trained(reduction)
        assert [len(y) for _, y in seen] == [16, 4]
        net = net.to(memory_format=torch.channels_last).train()
        for (x, y), factor in zip(seen, (1.0, scale)):
            net.zero_grad()
            (F.cross_entropy(net(x), y) * factor).backward()
            with torch.no_grad():
                for p in net.parameters():
                    # SGD's own update, p + (-lr) * grad in one operation: ``p -= 0.1 * p.grad`` rounds
                    # differently in the last bit, and the partial batch's BatchNorm over 4 images
                    # magnifies that into gradients percent apart on some CPUs
                    p.add_(p.grad, alpha=-0.1)
        for k, v in net.state_dict().items():
            assert torch.allclose(weights[k], v, rtol=1e-4, atol=1e-6), (reduction, k)


def test_precise_bn_averages_the_fixed_batches_statistics_and_touches_nothing_else():
    torch.manual_seed(0)
    net = ResNet("post", stem_channels=4, channels=(4,), blocks=(1,))
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [torch.randn(8, 1, 32, 32) for _ in range(3)]
    recompute(net.eval(), batches)
    stem = net.conv
    with torch.no_grad():
        acts = [stem(x) for x in batches]  # what the stem's BatchNorm normalises
    mean = torch.stack([a.mean(dim=(0, 2, 3)) for a in acts]).mean(0)
    var = torch.stack([a.var(dim=(0, 2, 3), unbiased=True) for a in acts]).mean(0)
    assert torch.allclose(net.bn.running_mean, mean, atol=1e-6) and torch.allclose(net.bn.running_var, var, atol=1e-5)
    assert not net.training and all(bn.momentum == 0.1 for bn in batch_norms(net))
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
    first, again = indices(60_000, 3, 256), indices(60_000, 3, 256)
    assert [len(i) for i in first] == [256] * 3 and all(torch.equal(a, b) for a, b in zip(first, again))


def test_precise_bn_in_a_run_leaves_training_alone_and_is_timed_apart(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    small = [o for o in SMALL if not o.startswith("evaluation.")]  # the sweep sets it
    r = run_cli("resnet_exp.run", "-m", "evaluation.precise_bn_batches=0,2", "trainer.max_epochs=2",
                "trainer.limit_train_batches=4", "trainer.deterministic=true", *small, "logger.wandb.mode=disabled",
                f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    off, on = rows(sweep / "0"), rows(sweep / "1")
    train = ("epoch", "train/loss", "train/acc")
    assert [{k: x[k] for k in train} for x in on] == [{k: x[k] for k in train} for x in off]
    assert all(float(x["time/precise_bn_s"]) > 0 for x in on) and "time/precise_bn_s" not in off[0]
    assert all(set(RESULTS) <= set(x) for x in on) and "test/acc_running" not in off[0]
    # epoch 1: the running averages the precise run set aside are the plain run's, on the same
    # weights, so its *_running numbers are exactly what the plain run logged
    assert (on[0]["test/acc_running"], on[0]["test/loss_running"]) == (off[0]["test/acc"], off[0]["test/loss"])
    assert on[0]["test/acc"] != off[0]["test/acc"] or on[0]["test/loss"] != off[0]["test/loss"]
    state = [torch.load(sweep / n / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for n in "01"]
    weights = [k for k in state[0] if k.startswith("net.") and "running" not in k and "num_batches" not in k]
    assert all(torch.equal(state[0][k], state[1][k]) for k in weights)
    assert any(not torch.equal(state[0][k], state[1][k]) for k in state[0] if "running_mean" in k)
