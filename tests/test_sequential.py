"""Seeds until the answer is resolved: the confidence sequence against its own martingale and under
optional stopping, the planning command on the committed records, and a sequential sweep through
the real CLI that stops on a planted difference, is killed in a round and resumes, and whose report
states its design."""

from __future__ import annotations

import math
import signal
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from resnet_exp.analysis.sequential import (
    confidence_sequence,
    decide,
    first_finite,
    fixed_pairs_for_equivalence,
    fixed_pairs_to_differ,
    mixture_ratio,
    simulate_coverage,
)
from resnet_exp.report import main as report_main
from resnet_exp.runs.records import read_status
from tests.conftest import ROOT, run_cli, run_cli_here, start, status, wait_until


def test_the_confidence_sequence_is_where_its_martingale_stays_below_one_over_alpha():
    """The closed form against the mixture martingale it inverts: 1/alpha at both ends, below
    inside, above outside; 1 after one pair (the data's shape says nothing yet); not finite until
    first_finite pairs, then shrinking."""
    d = [0.3, -0.2, 0.5, 0.1, -0.4, 0.2]
    low, high = confidence_sequence(d, 0.05)
    assert mixture_ratio(d, low) == pytest.approx(20) and mixture_ratio(d, high) == pytest.approx(20)
    assert mixture_ratio(d, (low + high) / 2) < 20 and mixture_ratio(d, high + 0.01) > 20
    assert mixture_ratio([0.7], 0.0) == pytest.approx(1.0)
    n = first_finite(0.05)
    assert not math.isfinite(confidence_sequence(d[: n - 1])[0]) and math.isfinite(confidence_sequence(d[:n])[0])
    assert decide([1.0, 1.2, 0.9, 1.1], 0.05, 0.5).state == "differ"
    assert decide([0.01, -0.02, 0.0, 0.01, 0.02], 0.05, 0.5).state == "equivalent"
    assert decide([0.4, -0.5, 0.6, -0.3], 0.05, 0.5).state == "open"


def test_under_optional_stopping_the_sequence_keeps_its_level_and_a_recomputed_t_interval_does_not():
    """Looking after every pair up to 20, stopping whenever: the confidence sequence ever leaves
    out the true mean at most alpha of the time, normal or heavy-tailed; a 95% t-interval
    recomputed at each look does several times as often (the reason for the sweeper)."""
    for draw in (lambda rng, s: rng.standard_normal(s), lambda rng, s: rng.standard_t(3, s)):
        cs, t = simulate_coverage(draw, 20000, 20, 0.05, seed=7)
        assert cs <= 0.05 and t >= 3 * 0.05, (cs, t)


def test_fixed_n_pairs_match_a_simulated_design():
    """The fixed-n pair counts, checked by simulating the fixed-n test they are for at that n (and
    one pair fewer falling short)."""
    from scipy import stats

    rng = np.random.default_rng(3)
    sd, margin, diff = 0.42, 0.5, 1.0

    def tost_power(n: int) -> float:
        x = rng.normal(0.0, sd, (20000, n))
        m, s = x.mean(1), x.std(1, ddof=1)
        half = stats.t.ppf(0.95, n - 1) * s / math.sqrt(n)
        return float(((m - half > -margin) & (m + half < margin)).mean())

    def t_power(n: int) -> float:
        x = rng.normal(diff, sd, (20000, n))
        return float((stats.ttest_1samp(x, 0.0, axis=1).pvalue < 0.05).mean())

    n = fixed_pairs_for_equivalence(sd, margin)
    assert tost_power(n) >= 0.78 and tost_power(n - 1) < 0.82
    n = fixed_pairs_to_differ(sd, diff)
    assert t_power(n) >= 0.78 and t_power(n - 1) < 0.82


def test_the_plan_of_post_against_pre_agrees_with_what_its_8_pairs_showed():
    """The planning command on the committed block_order records: 8 pairs with precise BN, their
    90% interval inside ±0.5, and a fixed-n design at their spread needing no more than 8; the
    docs' tables are what the command makes now."""
    sources = [
        "experiments/bf16_vs_fp32/jobs",
        "experiments/block_order/jobs",
        "experiments/block_order/jobs_more_seeds",
    ]
    r = subprocess.run([sys.executable, "-m", "resnet_exp.plan", *sources, "--where", "trainer.precision=32-true"],
                       capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if "| precise BN |" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["block.order=pre - block.order=post", "precise BN", "8"]
    assert cells[5].endswith("inside ±0.5") and not cells[5].endswith("not inside ±0.5")
    assert int(cells[7]) <= 8
    # at the mean difference measured (not 0) a TOST needs at least as many pairs
    assert int(cells[7]) <= int(cells[8]) <= 8
    r = subprocess.run([sys.executable, "-m", "resnet_exp.plan", "--doc", "docs/sequential.md"],
                       capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr


PLANTED = (
    "hydra/sweeper=sequential",
    "hydra.sweeper.max_seeds=6",
    "optim.lr=0.1,0.001",  # a difference of tens of points after 20 batches
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=4",
    "data.batch_size=32",
    "diagnostics.probe_size=16",
    "evaluation.precise_bn_batches=2",
    "logger.wandb.mode=disabled",
)


def test_a_sequential_sweep_stops_on_a_planted_difference_resumes_after_a_kill_and_says_its_design(tmp_path, data_dir):
    """lr 0.1 against lr 0.001: killed (SIGKILL) in its second round, the same command resumes it
    and it stops as soon as its confidence sequence is finite and excludes 0, at first_finite seeds
    of at most 6, jobs numbered setting by seed; its record and its report say so."""
    sweep = tmp_path / "sweep"
    args = ["resnet_exp.run", "-m", *PLANTED, f"hydra.sweep.dir={sweep}"]
    proc = start(args, tmp_path)
    wait_until(lambda: (sweep / "2" / "status.json").is_file(), proc)  # round 2 under way
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert read_status(sweep / "2")["status"] == "stopped"  # running, its process gone

    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    n = first_finite(0.05)
    assert f"Sequential sweep: every comparison resolved after {n} seeds" in resumed.stdout
    jobs = sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit())
    assert jobs == list(range(2 * n))
    for j in jobs:
        config = OmegaConf.load(sweep / str(j) / "config.yaml")
        assert (config.optim.lr, config.seed) == ((0.1, 0.001)[j % 2], j // 2 + 1)
        assert status(sweep / str(j))["status"] == "completed"
    state = OmegaConf.load(sweep / "sequential.yaml")
    assert state.design == "sequential" and state.alpha == 0.05 and state.margin_points == 0.5
    assert [r.seeds for r in state.rounds] == list(range(1, n + 1))
    (last,) = state.rounds[-1].decisions.values()
    assert last.state == "differ" and last.n == n and float(last.high) < 0
    assert [r.decisions["optim.lr=0.001 - optim.lr=0.1"].state for r in state.rounds[:-1]] == ["open"] * (n - 1)

    assert report_main([str(sweep), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    design = text.split("## Design")[1].split("## What was swept")[0]
    assert "**sequential** design" in design and f"Stopped: every comparison resolved after {n} seeds." in design
    assert f"after {n} seeds: optim.lr=0.001 - optim.lr=0.1: {n} pairs" in design and "they differ" in design


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["block.order=post,pre", "seed=1,2"], "seed is chosen by hydra/sweeper=sequential"),
        (["block.order=post"], "hydra/sweeper=sequential compares settings: sweep at least two"),
        (["block.order=post,pre", "hydra.sweeper.max_seeds=2"], "hydra.sweeper.max_seeds=2 must be at least"),
        (["block.order=post,pre", "hydra.sweeper.alpha=abc"], "hydra.sweeper.alpha=abc must be a finite number"),
        (["block.order=post,pre", "hydra.sweeper.measure=best"], "hydra.sweeper.measure=best must be one of: auto"),
    ],
)
def test_a_sequential_sweep_that_cannot_run_as_designed_is_refused_in_one_line(
    tmp_path, monkeypatch, capfd, args, message
):
    code, err = run_cli_here("-m", "hydra/sweeper=sequential", *args, f"output_dir={tmp_path}/out",
                             cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd)  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {message}"), err
    assert not (tmp_path / "out").exists()


def test_a_sequential_sweep_with_nothing_to_find_runs_to_its_maximum_and_says_so(tmp_path, data_dir):
    """Two settings that differ only in the noise of precise BN's batches, and a margin too narrow
    to show equivalence in 4 pairs: the sweep runs every round and stops at max_seeds, naming the
    comparison still open."""
    sweep = tmp_path / "sweep"
    r = run_cli("resnet_exp.run", "-m", "hydra/sweeper=sequential", "hydra.sweeper.max_seeds=4",
                "hydra.sweeper.margin=0.01", "evaluation.precise_bn_batches=1,2", "trainer.max_epochs=1",
                "trainer.limit_train_batches=10", "trainer.limit_val_batches=2", "data.batch_size=32",
                "diagnostics.probe_size=16", "logger.wandb.mode=disabled", f"hydra.sweep.dir={sweep}",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Sequential sweep: max_seeds=4 reached with a comparison still open" in r.stdout
    state = OmegaConf.load(sweep / "sequential.yaml")
    assert [round_.seeds for round_ in state.rounds] == [1, 2, 3, 4]
    assert all(d.state == "open" for round_ in state.rounds for d in round_.decisions.values())
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(8))


def test_a_fixed_n_sweep_extended_after_a_look_is_flagged_in_its_report(tmp_path, data_dir):
    """A sweep of seed 1, then the same folder swept over seeds 1 and 2: its sweep.yaml keeps both
    commands, and the report's design says it was extended after a look."""
    from tests.conftest import TINY

    sweep = tmp_path / "sweep"
    for seeds in ("1", "1,2"):
        r = run_cli("resnet_exp.run", "-m", f"seed={seeds}", *TINY, "logger.wandb.mode=disabled",
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
    history = OmegaConf.load(sweep / "sweep.yaml").history
    assert [h.jobs for h in history] == [1, 2] and "seed=1,2" in history[1].command
    assert report_main([str(sweep), "--out", str(tmp_path / "r")]) == 0
    design = (tmp_path / "r" / "report.md").read_text().split("## Design")[1].split("## What was swept")[0]
    assert f"- `{sweep}`: **fixed-n, extended after a look**: first 1 job " in design
    assert "then 2 (`python -m resnet_exp.run -m seed=1,2" in design
