"""The training curve within epochs (training/curve.py) in a real Lightning Trainer, on a tiny
module whose batches' losses a recorder beside it keeps: the rows against windows composed by hand
from those losses, with gradients accumulated over two batches, after a stop on a signal at a step
whose row is due and at one whose row is not (the project's StopOnSignal, then a resume from its
checkpoint), and when the divergence guard stops training. (Through the CLI, with W&B and DDP:
test_cli, test_reliability, test_scale_out.)"""

from __future__ import annotations

import csv
import math
import signal

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from resnet_exp.data.sampling import EpochShuffle
from resnet_exp.runs.job import Diverged
from resnet_exp.runs.signals import Signals, StopOnSignal
from resnet_exp.training.curve import TrainingCurve
from resnet_exp.training.guard import DivergenceGuard

BATCH, BATCHES = 8, 7


class Tiny(pl.LightningModule):
    """A linear classifier that sets ``batch_loss`` as the project's Classifier does; from optimizer
    step ``nan_from`` (counted from 1) on, its loss is NaN."""

    def __init__(self, nan_from: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 3)
        self.nan_from = nan_from

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        if self.nan_from is not None and self.global_step + 1 >= self.nan_from:
            loss = loss * float("nan")
        self.batch_loss = (loss.detach(), y.numel())
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data(resume: tuple[int, int] = (0, 0)) -> DataLoader:
    """The same batches every run, shuffled by epoch as the project's are; ``resume=(epoch, samples)``
    starts that epoch (from 0) after its first samples, as the project's data module does after a
    checkpoint taken within an epoch."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(BATCH * BATCHES, 4, generator=g), torch.randint(0, 3, (BATCH * BATCHES,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, sampler=EpochShuffle(BATCH * BATCHES, 0, resume))


class Recorder(pl.Callback):
    """Each batch's (epoch, optimizer steps after it, loss): what the windows are composed from."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen.append((trainer.current_epoch + 1, trainer.global_step, float(module.batch_loss[0])))


class SignalAt(pl.Callback):
    """A signal arrives during batch ``at`` (counted from 1 over the whole run)."""

    def __init__(self, signals: Signals, at: int) -> None:
        self.signals, self.at, self.count = signals, at, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.count += 1
        if self.count == self.at:
            self.signals.received = "signal SIGTERM"


def trainer(tmp_path, callbacks, epochs=2, accumulate=1) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, accumulate_grad_batches=accumulate, callbacks=callbacks, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=tmp_path, num_sanity_val_steps=0)  # fmt: skip


def curve(folder) -> list[tuple[int, int, int, int, float]]:
    with open(folder / "train_curve.csv", newline="") as f:
        return [(int(r["epoch"]), int(r["step"]), int(r["steps"]), int(r["images"]), float(r["train/loss"]))
                for r in csv.DictReader(f)]  # fmt: skip


def by_hand(seen, ends: list[int]) -> list[tuple[int, int, int, int, float]]:
    """The rows for windows that close at the batches ``ends`` (indices into ``seen``, counted from 1)."""
    rows, start, last_step = [], 0, 0
    for end in ends:
        window = seen[start:end]
        epoch, step = window[-1][0], window[-1][1]
        mean = sum(loss * BATCH for _, _, loss in window) / (BATCH * len(window))
        rows.append((epoch, step, step - last_step, BATCH * len(window), pytest.approx(mean, rel=1e-6)))
        start, last_step = end, step
    return rows


def test_rows_are_the_mean_loss_of_their_steps_with_accumulated_gradients(tmp_path):
    """every=3, two batches a step: steps after batches 2, 4, 6 and the epoch's last (7): a row at
    step 3 (batches 1-6) and at the epoch's end (step 4, batch 7); in epoch 2 at step 6 (batches
    8-11) and 8 (12-14). No row at step 0, where the first batch has made no step yet."""
    recorder = Recorder()
    trainer(tmp_path, [recorder, TrainingCurve(tmp_path, every=3)], accumulate=2).fit(Tiny(), data())
    assert [s for _, s, _ in recorder.seen] == [0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 6, 7, 8]
    assert curve(tmp_path) == by_hand(recorder.seen, [6, 7, 11, 14])
    assert [r[2] for r in curve(tmp_path)] == [3, 1, 2, 2]


@pytest.mark.parametrize("stop_in", [9, 10])
def test_a_stop_and_a_resume_end_with_the_rows_of_an_unstopped_run(tmp_path, stop_in):
    """every=5, 7 steps an epoch: rows at 5, 7, 10, 14. A signal in batch 10 stops the run at step 10,
    where a row is due (the checkpoint is taken before the curve's hook writes it); in batch 9, at
    step 9, within the window 8-10. Either way the resumed run's rows are the unstopped run's."""
    recorder = Recorder()
    (tmp_path / "clean").mkdir()
    trainer(tmp_path / "clean", [recorder, TrainingCurve(tmp_path / "clean", every=5)]).fit(Tiny(), data())
    want = curve(tmp_path / "clean")
    assert want == by_hand(recorder.seen, [5, 7, 10, 14])

    job, ckpt = tmp_path / "stopped", tmp_path / "stopped" / "interrupted.ckpt"
    job.mkdir()
    signals = Signals()
    stopping = [SignalAt(signals, stop_in), StopOnSignal(signals, ckpt), TrainingCurve(job, every=5)]  # fit.py's order
    ctrl_c = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit):  # Lightning ends a fit a KeyboardInterrupt stopped so (fit.py says why)
        trainer(job, stopping).fit(Tiny(), data())
    signal.signal(signal.SIGINT, ctrl_c)  # which Lightning set to be ignored while it shut down
    assert ckpt.is_file() and [r[1] for r in curve(job)] == [5, 7]
    trainer(job, [TrainingCurve(job, every=5)]).fit(
        Tiny(), data(resume=(1, BATCH * (stop_in - BATCHES))), ckpt_path=ckpt
    )
    assert curve(job) == [tuple(r) for r in want]


def test_a_job_the_guard_stops_ends_its_curve_with_the_window_of_the_bad_step(tmp_path):
    """NaN from step 9 on, the guard before the curve (as in the config's defaults and
    +callbacks=training_curve): rows at 5 and 7, then the window 8-9 with the NaN, at step 9."""
    recorder = Recorder()
    with pytest.raises(Diverged):
        trainer(tmp_path, [recorder, DivergenceGuard(every=1), TrainingCurve(tmp_path, every=5)]).fit(
            Tiny(nan_from=9), data()
        )
    rows = curve(tmp_path)
    assert [r[:4] for r in rows] == [(1, 5, 5, 40), (1, 7, 2, 16), (2, 9, 2, 16)]
    assert rows[:2] == by_hand(recorder.seen, [5, 7]) and math.isnan(rows[2][4])
