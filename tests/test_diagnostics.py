"""Signal propagation per residual unit: the measures against a hand computation, the probe batch
shared by every job, and training left exactly as it is without the measures (real CLI)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resnet_exp.models.resnet import ResNet
from resnet_exp.tracking.offline import read_run
from resnet_exp.training.diagnostics import probe, probe_indices
from tests.conftest import RESULTS, SMALL, rows, run_cli


def test_measures_match_a_hand_computation_on_a_tiny_network():
    """The same network run layer by layer by hand, each unit's input kept to read its gradient:
    the probe's output std per unit, input gradient norm per unit and weight gradient norm per
    stage are those numbers."""
    torch.manual_seed(0)
    net = ResNet("pre", stem_channels=3, channels=(3, 4), blocks=(2, 1)).train()
    x, y = torch.randn(8, 1, 32, 32), torch.randint(0, 10, (8,))
    got = probe(net, x, y)

    twin = ResNet("pre", stem_channels=3, channels=(3, 4), blocks=(2, 1)).train()
    twin.load_state_dict(net.state_dict())
    h = twin.pool(twin.relu(twin.bn(twin.conv(x))))
    inputs, stds = [], []
    for stage in (twin.stage1, twin.stage2):
        for unit in stage:
            h = h.detach().requires_grad_(True) if not h.requires_grad else h
            h.retain_grad()
            inputs.append(h)
            h = unit(h)
            stds.append(float(h.detach().std()))
    F.cross_entropy(twin.fc(twin.gap(h)), y).backward()
    unit_rows = [r for r in got if r["kind"] == "unit"]
    assert [r["name"] for r in unit_rows] == ["stage1.0", "stage1.1", "stage2.0"]
    assert [r["depth"] for r in unit_rows] == [1, 2, 3]
    assert [r["act_std"] for r in unit_rows] == [float(s) for s in stds]
    assert [r["input_grad_norm"] for r in unit_rows] == [float(i.grad.norm()) for i in inputs]
    stage_rows = [r for r in got if r["kind"] == "stage"]
    for row, stage in zip(stage_rows, (twin.stage1, twin.stage2)):
        want = float(torch.stack([p.grad.pow(2).sum() for p in stage.parameters()]).sum().sqrt())
        assert row["weight_grad_norm"] == want, row["name"]


def test_the_probe_batch_is_the_same_images_for_every_job(data_dir):
    from resnet_exp.data.module import ImageDataModule

    idx = probe_indices(60_000, 256)
    assert torch.equal(idx, probe_indices(60_000, 256)) and len(set(idx.tolist())) == 256
    sets = []
    for seed in (1, 2):
        dm = ImageDataModule(root=str(data_dir), seed=seed)
        dm.setup()
        sets.append(dm.train_set.images[probe_indices(len(dm.train_set), 256)])
    assert torch.equal(sets[0], sets[1])


def test_a_run_with_the_measures_trains_exactly_as_one_without(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    r = run_cli("resnet_exp.run", "-m", "diagnostics.signal=true,false", "trainer.max_epochs=2",
                "trainer.limit_train_batches=4", "trainer.deterministic=true", *SMALL, f"hydra.sweep.dir={sweep}",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    on, off = sweep / "0", sweep / "1"
    assert [{k: x[k] for k in ("epoch", *RESULTS)} for x in rows(on)] == [
        {k: x[k] for k in ("epoch", *RESULTS)} for x in rows(off)
    ]
    on_state = torch.load(on / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    off_state = torch.load(off / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(on_state[k], off_state[k]) for k in off_state)  # BN statistics included
    signal = (on / "signal.csv").read_text().splitlines()
    assert signal[0] == "epoch,kind,name,depth,act_std,input_grad_norm,weight_grad_norm"
    assert len(signal) == 1 + 3 * (6 + 3)  # epochs 0-2: six units and three stages each
    assert not (off / "signal.csv").exists()
    (run_dir,) = (on / "wandb").glob("offline-run-*")
    logged = [h for h in read_run(run_dir).history if "signal/act_std/stage3.1" in h]
    assert [h["epoch"] for h in logged] == [0, 1, 2]
