"""The committed experiments' scripts, on a few batches: they run their sweeps, chain to the
experiments they reuse, resume (a second run trains nothing) and write their reports."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import RESULTS, ROOT, TINY, status

# A batch of each job, the rest as TINY; a later value of a key replaces the script's.
ONE_BATCH = (*TINY, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "logger.wandb.mode=disabled")


def experiment_env(overrides: list[str], reports: Path, **more: str) -> dict[str, str]:
    """The environment of an experiment's run.sh here: this interpreter, W&B offline, ``overrides``
    added to every sweep (EXPERIMENT_OVERRIDES), reports and kept records under ``reports``."""
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "EXPERIMENT_OVERRIDES": " ".join(overrides),
        "EXPERIMENT_OUT": str(reports),
        **more,
    }


@pytest.mark.long
def test_bf16_vs_fp32_full_step_script_runs_block_order_full_step_first_and_pairs_the_seeds(tmp_path, data_dir):
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    env = experiment_env([*ONE_BATCH, "seed=1,2"], reports)  # seeds 1 and 2 of each sweep

    def run() -> subprocess.CompletedProcess:
        script = ROOT / "experiments" / "bf16_vs_fp32_full_step" / "run.sh"
        return subprocess.run([str(script), str(runs)], env=env, capture_output=True, text=True, cwd=tmp_path)

    def committed() -> dict:
        return {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()}

    committed_before = committed()
    r = run()
    assert r.returncode == 0, r.stderr[-3000:]
    block_order, fp32 = runs / "block_order", runs / "bf16_vs_fp32"
    assert sorted(p.name for p in block_order.iterdir() if p.name.isdigit()) == [str(n) for n in range(4)]
    assert all(status(block_order / str(n))["status"] == "completed" for n in range(4))
    assert [status(fp32 / str(n))["precision"] for n in range(2)] == ["32-true"] * 2
    # each experiment's report in its own folder; the comparison pairs block_order's post seeds 1-2
    full = reports / "block_order_full_step"
    assert (full / "report.md").is_file() and (full / "curves.png").is_file()
    # each experiment keeps its own sweep's records (no checkpoints), and block_order_full_step's report is made from them
    for name, sweep, jobs in (
        ("block_order_full_step", "block_order", 4),
        ("bf16_vs_fp32_full_step", "bf16_vs_fp32", 2),
    ):
        kept = reports / name / "jobs"
        assert sorted(p.name for p in kept.iterdir() if p.is_dir()) == sorted(str(n) for n in range(jobs))
        for n in range(jobs):
            assert (kept / str(n) / "metrics.csv").read_bytes() == (runs / sweep / str(n) / "metrics.csv").read_bytes()
            assert not (kept / str(n) / "checkpoints").exists()
    assert f"Read from: `{full / 'jobs'}`\n" in (full / "report.md").read_text()  # outside the repository: absolute
    summary = list(csv.DictReader(open(reports / "bf16_vs_fp32_full_step" / "summary.csv")))
    assert sorted((row["trainer.precision"], row["seed"]) for row in summary) == sorted(
        (p, s) for p in ("auto", "32-true") for s in "12"
    )
    text = (reports / "bf16_vs_fp32_full_step" / "report.md").read_text()
    assert "| trainer.precision=auto | trainer.precision=32-true | paired |" in text
    assert committed() == committed_before  # the experiments' own folders are left alone
    # (run again, a script skips its completed jobs: the seed_gap chain below reruns bf16_vs_fp32's
    # and block_order's scripts, which share these scripts' sweep() of common.sh)


@pytest.mark.long
def test_seed_gap_script_pairs_each_seeds_two_trainings_and_two_evaluations(tmp_path, data_dir):
    """seed_gap/run.sh (without its MXNet step and its whole-epoch probe) on a few batches: the remedies sweep (5 seeds, the
    default training and the seed's step scaling, each evaluated with precise BN and with the
    running averages on the same weights), its kept records, and analysis.md pairing them by seed."""
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    tiny = [o for o in TINY if not o.startswith("trainer.max_epochs")]
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "SEED_GAP_MXNET": "0",
        "SEED_GAP_PROBE": "0",
        # seeds 1 and 2 of the five (a later value of a key replaces the script's)
        "EXPERIMENT_OVERRIDES": " ".join([*tiny, "trainer.max_epochs=2", "logger.wandb.mode=disabled", "seed=1,2"]),
        "EXPERIMENT_OUT": str(reports),
    }
    committed = {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()}
    script = ROOT / "experiments" / "seed_gap" / "run.sh"
    r = subprocess.run([str(script), str(runs)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    sweep, kept = runs / "seed_gap_remedies", reports / "seed_gap" / "jobs"
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    configs = [(sweep / str(n) / "config.yaml").read_text() for n in range(4)]
    assert [("seed: %d" % s) in c and f"reduction: {arm}" in c for c, (s, arm) in zip(configs, [
        (s, arm) for s in range(1, 3) for arm in ("mean", "batch_size")])] == [True] * 4  # fmt: skip
    for n in range(4):
        rows = list(csv.DictReader(open(kept / str(n) / "metrics.csv")))
        assert len(rows) == 2 and all(float(row["test/acc_running"]) >= 0 and row["test/acc"] for row in rows)
    text = (reports / "seed_gap" / "analysis.md").read_text()
    assert "## The remedies at full size" in text and "## How much test accuracy swings" in text
    remedies = text.split("## The remedies at full size")[1]
    table = [line for line in remedies.splitlines() if line.startswith("| post | ")]
    assert [line.split(" | ")[1:4] for line in table[:4]] == [
        [str(s), arm, str(n)] for n, (s, arm) in enumerate((s, a) for s in range(1, 3) for a in ("mean", "batch_size"))
    ]
    final_running = float(list(csv.DictReader(open(kept / "0" / "metrics.csv")))[-1]["test/acc_running"]) * 100
    assert table[0].split(" | ")[4] == f"{final_running:.2f}"
    assert remedies.count("(n=2)") == 15  # five paired comparisons, three measures each
    assert "Against ../block_order" not in remedies  # its runs are full size: another recipe
    assert {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()} == committed

    # bf16_vs_fp32/run.sh pairs fp32 runs of today's default with these bf16 ones (the seed's step
    # jobs only), here two seeds of them
    env["BF16_RECORDS"] = str(kept)
    script = ROOT / "experiments" / "bf16_vs_fp32" / "run.sh"
    r = subprocess.run([str(script), str(runs)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    fp32 = reports / "bf16_vs_fp32" / "jobs"
    assert [(OmegaConf.load(fp32 / n / "config.yaml").trainer.precision, status(fp32 / n)["precision"])
            for n in "01"] == [("32-true", "32-true")] * 2  # fmt: skip
    assert OmegaConf.load(fp32 / "0" / "config.yaml").loss.reduction == "batch_size"  # the default, not named
    text = (reports / "bf16_vs_fp32" / "equivalence.md").read_text()
    assert f"Jobs: bf16 `{kept}` (jobs/1, jobs/3), fp32 `{fp32}` (jobs/0, jobs/1)" in text
    rows = [line for line in text.splitlines() if line.startswith(("| precise BN | 2 |", "| running averages | 2 |"))]
    assert len(rows) == 2 and ("**Equivalent**" in text) != ("**Not shown equivalent**" in text)
    bf16_final = float(list(csv.DictReader(open(kept / "1" / "metrics.csv")))[-1]["test/acc"]) * 100
    fp32_final = float(list(csv.DictReader(open(fp32 / "0" / "metrics.csv")))[-1]["test/acc"]) * 100
    assert f"| 1 | {bf16_final:.2f} / {fp32_final:.2f} |" in text
    summary = list(csv.DictReader(open(reports / "bf16_vs_fp32" / "summary.csv")))
    assert sorted((row["trainer.precision"], row["seed"]) for row in summary) == sorted(
        [("auto", s) for s in "12"] + [("32-true", s) for s in "12"]
    )
    assert {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()} == committed

    # On another machine (new runs, no checkpoints) with job 0's records kept: job 0 is skipped as
    # completed, job 1 trains, and the kept records end as those of one machine
    def results() -> dict:
        return {n: [{k: r[k] for k in RESULTS} for r in csv.DictReader(open(fp32 / n / "metrics.csv"))] for n in "01"}

    first = results()
    shutil.rmtree(fp32 / "1")
    r = subprocess.run([str(script), str(tmp_path / "runs2")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert f"{tmp_path}/runs2/bf16_vs_fp32_seed_step/0: completed before (restored from {fp32}/0/)" in out
    assert out.count("completed before: skipped") == 1
    assert (tmp_path / "runs2" / "bf16_vs_fp32_seed_step" / "1" / "checkpoints" / "last.ckpt").is_file()
    assert results() == first  # the same seed on the same CPU

    # block_order/run.sh trains pre and pairs it with those fp32 post jobs; identity_mappings/run.sh
    # trains the other three orderings and reports all five, beside He et al.'s Table 2
    env["POST_RECORDS"] = str(fp32)
    script = ROOT / "experiments" / "block_order" / "run.sh"
    r = subprocess.run(
        [str(script), str(runs)], env={**env, "MORE_SEEDS": ""}, capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr[-3000:]
    pre = reports / "block_order" / "jobs"
    assert [OmegaConf.load(pre / n / "config.yaml").block.order for n in "01"] == ["pre", "pre"]
    summary = list(csv.DictReader(open(reports / "block_order" / "summary.csv")))
    assert sorted((row["block.order"], row["seed"]) for row in summary) == [
        ("post", "1"),
        ("post", "2"),
        ("pre", "1"),
        ("pre", "2"),
    ]
    text = (reports / "block_order" / "report.md").read_text()
    assert "| block.order=post | block.order=pre | paired |" in text

    env["PRE_RECORDS"] = str(pre)
    script = ROOT / "experiments" / "identity_mappings" / "run.sh"
    r = subprocess.run([str(script), str(runs)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    others = runs / "identity_mappings_seed_step"
    trained = [
        (OmegaConf.load(others / str(n) / "config.yaml").block.order, status(others / str(n))["status"])
        for n in range(6)
    ]
    assert trained == [(o, "completed") for o in ("bn_after_add", "relu_before_add", "relu_only_pre") for _ in "12"]
    summary = list(csv.DictReader(open(reports / "identity_mappings" / "summary.csv")))
    assert len(summary) == 10 and {row["block.order"] for row in summary} == {
        "post", "bn_after_add", "relu_before_add", "relu_only_pre", "pre"}  # fmt: skip
    table = (reports / "identity_mappings" / "he_table.md").read_text()
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    assert [row[0] for row in rows] == [
        "| `post`",
        "| `bn_after_add`",
        "| `relu_before_add`",
        "| `relu_only_pre`",
        "| `pre`",
    ]
    assert [row[2] for row in rows] == ["6.61", "8.17", "7.84", "6.71", "6.37"] and [row[4] for row in rows] == [
        "2"
    ] * 5
    post_error = np.mean([100 * (1 - float(r["final_precise_bn"])) for r in summary if r["block.order"] == "post"])
    assert rows[0][5].startswith(f"{post_error:.2f} ± ") and "Kendall's tau" in table and "Incomplete" not in table
    # run.sh hands it an absolute path, named so where it lies outside the working directory (here);
    # from a folder above it (a clone's root, for the committed table) it is named as a clone has it
    summary_csv = reports / "identity_mappings" / "summary.csv"
    assert f"From `{summary_csv}`." in table
    script = ROOT / "experiments" / "identity_mappings" / "he_table.py"
    r = subprocess.run([sys.executable, str(script), str(summary_csv)], capture_output=True, text=True, cwd=reports)
    assert r.returncode == 0 and r.stdout == table.replace(f"`{summary_csv}`", "`identity_mappings/summary.csv`")

    # block_order/run.sh's further seeds (here seed 6; every seed of its pre sweep, not narrowed): the
    # pre jobs of seeds 1-2 are skipped as completed, 3-5 train, then post and pre of seed 6 in their
    # own sweep and records, and the report holds them all
    wide = {**env, "MORE_SEEDS": "6", "EXPERIMENT_OVERRIDES": env["EXPERIMENT_OVERRIDES"].replace(" seed=1,2", "")}
    script = ROOT / "experiments" / "block_order" / "run.sh"
    r = subprocess.run([str(script), str(runs)], env=wide, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (r.stdout + r.stderr).count("completed before: skipped") == 2
    more = reports / "block_order" / "jobs_more_seeds"
    assert [(c.block.order, c.seed) for c in (OmegaConf.load(more / n / "config.yaml") for n in "01")] == [
        ("post", 6), ("pre", 6)]  # fmt: skip
    assert all(status(more / n)["status"] == "completed" for n in "01") and not (more / "2").exists()
    summary = list(csv.DictReader(open(reports / "block_order" / "summary.csv")))
    assert sorted((row["block.order"], int(row["seed"])) for row in summary) == sorted(
        [("post", s) for s in (1, 2, 6)] + [("pre", s) for s in (1, 2, 3, 4, 5, 6)]
    )

    # the README's Results tables (experiments/results.py) of these records: today's default's five
    # orderings from their three folders, seed_gap's bf16 post, pre minus post paired on the seeds
    # both completed (1, 2 and 6), pre's others named as left out
    script = ROOT / "experiments" / "results.py"
    r = subprocess.run([sys.executable, str(script), "--experiments", str(reports)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {tuple(line.split(" | ")[:3]): line.split(" | ") for line in r.stdout.splitlines() if line.count(" | ") > 2}
    default = "seed's step, fp32"
    assert [(k[0], k[2]) for k in rows if default in k[1]] == [
        ("| post", "3"), ("| pre", "6"), ("| bn_after_add", "2"), ("| relu_before_add", "2"), ("| relu_only_pre", "2")]  # fmt: skip
    both = "[`bf16_vs_fp32`](experiments/bf16_vs_fp32/), [`block_order`](experiments/block_order/)"
    post = rows["| post", f"{default} ({both})", "3"]
    jobs = (fp32 / "0", fp32 / "1", more / "0")  # post seeds 1, 2 and 6
    finals = [float(list(csv.DictReader(open(d / "metrics.csv")))[-1]["test/acc"]) for d in jobs]
    assert post[4].startswith(f"{100 * np.mean(finals):.2f} ± {100 * np.std(finals, ddof=1):.2f} [")
    assert post[7] == "6.61 (2) |"
    assert [k[2] for k in rows if "seed_gap" in k[1]] == ["2"]  # the seed's step jobs only, in what this CPU ran
    paired = [line for line in r.stdout.splitlines() if line.startswith(f"| {default} | ")]
    assert len(paired) == 1 and paired[0].startswith(f"| {default} | 3 (pre's seeds 3, 4, 5 unpaired, left out) | ")
    pre_jobs = {1: pre / "0", 2: pre / "1", 6: more / "1"}
    pre_finals = {s: float(list(csv.DictReader(open(d / "metrics.csv")))[-1]["test/acc"]) for s, d in pre_jobs.items()}
    diff = np.mean([pre_finals[s] - f for s, f in zip((1, 2, 6), finals)])
    assert paired[0].split(" | ")[2].startswith(f"{100 * diff:+.2f} [")
    assert {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()} == committed


@pytest.mark.long
def test_depth_script_runs_its_signal_sweeps_and_the_control_and_writes_its_tables(tmp_path, data_dir):
    """depth/run.sh narrowed to ResNet-20, the plain and pre networks and one seed, a batch each:
    its three sweeps through experiment=depth (the GPU preset's jobs, on the CPU), the signal tables
    and figure, and the depth table from the seed-recipe sweep's records. (Resuming is common.sh's,
    which the other scripts' tests run twice.)"""
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    # one depth, two networks, one seed
    env = experiment_env([*ONE_BATCH, "model=cifar_resnet20", "block=plain,post,pre", "seed=1"], reports)
    script = ROOT / "experiments" / "depth" / "run.sh"
    r = subprocess.run([str(script), str(runs)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    recipe = runs / "depth_seed_recipe"
    configs = [OmegaConf.load(recipe / str(n) / "config.yaml") for n in range(2)]
    assert [(c.seed, c.block.shortcut, c.block.order) for c in configs] == [
        (1, "none", "post"),
        (1, "projection", "post"),
    ]
    assert all(c.data.resize is None and c.model.stem == "small" and list(c.model.blocks) == [3, 3, 3] for c in configs)
    assert all(status(recipe / str(n))["status"] == "completed" for n in range(2))
    out = reports / "depth"
    signal = (out / "signal_depth.md").read_text()
    assert "| layers | plain | post | pre |" in signal and "## What the records show" in signal
    assert (out / "signal_depth.png").is_file()
    table = (out / "depth_table.md").read_text()
    assert "| `plain` | 20 | " in table and "| `pre` | 20 | " in table and "(n=1)" in table
    assert sorted(p.name for p in (out / "jobs").iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    # the first epoch again with the training curve, kept with its curve, and checked against the
    # seed-recipe jobs' first epochs (one batch each here: the same batch, the same loss)
    first = out / "first_epoch_jobs"
    assert sorted(p.name for p in first.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert all((first / n / "train_curve.csv").is_file() for n in "012")
    text = (out / "first_epoch.md").read_text()
    assert "## 20 layers" in text and "| `pre` minus `post` | 1 | " in text
    assert "the same to the bit for 3 of 3 jobs" in text
    assert (out / "first_epoch.png").is_file()


@pytest.mark.parametrize(
    ("plain", "post", "verdict"),
    [
        # (pairs, mean, 95% low, high) of 56 minus 20 layers' final training loss
        ((2, 0.16, 0.05, 0.28), (1, -0.01, math.nan, math.nan),
         "not decided yet: plain 56 minus 20 is higher, residual not resolved (fewer than 2 pairs)."),
        ((3, 0.16, 0.05, 0.28), (3, -0.02, -0.03, -0.01),
         "the degradation problem is reproduced: the plain network trains worse at 56 layers than at 20, "
         "the residual one better."),
        ((3, 0.16, 0.05, 0.28), (3, 0.0, -0.02, 0.02),
         "the degradation problem is reproduced: the plain network trains worse at 56 layers than at 20; the "
         "residual one does not train worse by as much (its change +0.000 [-0.020, +0.020] (3 pairs) includes 0 "
         "and lies below the plain's +0.160 [+0.050, +0.280] (3 pairs))."),
        ((3, 0.16, 0.05, 0.28), (3, 0.05, -0.01, 0.11),
         "the degradation problem is not shown by these records: plain 56 minus 20 is higher, residual not "
         "resolved (the interval includes 0)."),
        ((3, 0.16, 0.05, 0.28), (3, 0.03, 0.01, 0.04),
         "the degradation problem is not reproduced: both train worse at 56 layers (plain 56 minus 20 is "
         "higher, residual higher)."),
        ((3, 0.05, -0.01, 0.11), (3, -0.02, -0.03, -0.01),
         "the degradation problem is not shown by these records: plain 56 minus 20 is not resolved (the "
         "interval includes 0), residual lower."),
    ],
)  # fmt: skip
def test_depth_s_positive_control_verdict_claims_only_what_the_intervals_show(plain, post, verdict):
    """The degradation verdict: reproduced only where the plain network's deeper-minus-shallower
    training loss is above 0 and the residual one's is below 0, or includes 0 wholly below the
    plain's; undecided below 2 pairs of either, whatever the plain network shows."""
    spec = importlib.util.spec_from_file_location("depth_table", ROOT / "experiments" / "depth" / "depth_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    assert table.degradation(plain, post, 20, 56) == verdict


def test_depth_presets_compose_he_et_al_s_ladder_and_schedule():
    """experiment=depth: every ordering and the plain network at 20, 56, 110 and 164 layers, five
    seeds, at 28 px; experiment=depth_he_schedule: the same on He et al.'s schedule in epochs of
    Fashion-MNIST at batch 128 (136 epochs: 63,784 steps, the divisions by 10 after epochs 68 and 102)."""
    from resnet_exp.config import compose_config

    cfg = compose_config(["experiment=depth"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.model == "cifar_resnet20,cifar_resnet56,cifar_resnet110,cifar_resnet164"
    assert params.block == "plain,post,bn_after_add,relu_before_add,relu_only_pre,pre" and params.seed == "1,2,3,4,5"
    assert cfg.data.resize is None and cfg.hydra.mode.name == "MULTIRUN"
    he = compose_config(["experiment=depth_he_schedule"], return_hydra_config=True)
    assert he.hydra.sweeper.params == params
    assert (he.optim.momentum, he.optim.weight_decay, he.data.batch_size, he.trainer.max_epochs) == (
        0.9,
        1e-4,
        128,
        136,
    )
    assert he.scheduler._target_ == "torch.optim.lr_scheduler.MultiStepLR" and list(he.scheduler.milestones) == [
        68,
        102,
    ]
    steps = -(-60_000 // 128)
    assert (steps * 136, steps * 68, steps * 102) == (63_784, 31_892, 47_838)


def test_depth_committed_tables_are_what_their_scripts_make_from_the_records(tmp_path):
    """The plan in experiments/depth/README.md and cost.md are plan.py's from the measurements; the
    committed signal tables, depth table and first-epoch table are signal_depth.py's, depth_table.py's
    and first_epoch.py's from the committed records, byte for byte."""
    depth = ROOT / "experiments" / "depth"
    r = subprocess.run([sys.executable, str(depth / "plan.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # the plan region's spending counts every completed job kept of the plan's two sweeps
    kept = [status(job)["status"] for f in ("jobs", "first_epoch_jobs") for job in (depth / f).glob("[0-9]*")]
    assert f": {kept.count('completed')} of 42 jobs complete, " in (depth / "README.md").read_text()
    r = subprocess.run(
        [sys.executable, str(depth / "signal_depth.py"), "experiments/depth/signal_init_jobs",
         "experiments/depth/signal_steps_jobs", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in ("signal_depth.md", "signal_depth.csv"):
        assert (tmp_path / name).read_text() == (depth / name).read_text(), name
    r = subprocess.run(
        [sys.executable, str(depth / "depth_table.py"), "experiments/depth/jobs"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0 and r.stdout == (depth / "depth_table.md").read_text(), r.stderr
    r = subprocess.run(
        [sys.executable, str(depth / "first_epoch.py"), "experiments/depth/first_epoch_jobs", "--full",
         "experiments/depth/jobs", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "first_epoch.md").read_text() == (depth / "first_epoch.md").read_text()


def test_depth_ladder_cost_counts_each_preset_s_jobs_at_a_gpu_s_measured_speed(tmp_path, capsys):
    """plan.py's GPU ladder: a preset's jobs per network are its orderings x seeds, each its epochs x
    the factor x 60,000 images at the bench's speed for its batch. A GPU's records fill the GPU column,
    read by what each says it measured; a batch measured at 256 only stands in for 128 with a star,
    which the total then carries; a network without a record is "not measured", and a total over
    networks not all measured says how many were. Records of another size, a compiled step, a CPU or
    no bench at all are skipped by name; of two records of one kind, the longer measure counts."""
    spec = importlib.util.spec_from_file_location("depth_plan", ROOT / "experiments" / "depth" / "plan.py")
    plan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan)
    base = json.loads((ROOT / "experiments" / "depth" / "cost" / "cifar_resnet20_32-true.json").read_text())

    def record(name, model, precision, batch, speed, steps=20, size="data.resize=null", compile="none", device="GPU X"):
        overrides = ([f"model={model}"] if model else []) + [size, "trainer.precision=auto"]
        framework = {"images_per_s": speed, "precision": precision, "compile": compile}
        r = base | {
            "device": device,
            "batch_size": batch,
            "steps": steps,
            "framework": framework,
            "overrides": overrides,
        }
        (tmp_path / name).write_text(json.dumps(r))

    record("r20.json", "cifar_resnet20", "32-true", 256, 10_000.0)
    record("r20_b128.json", "cifar_resnet20", "32-true", 128, 5_000.0)
    record("r20_bf16.json", "cifar_resnet20", "bf16-mixed", 256, 20_000.0)
    record("r56_short.json", "cifar_resnet56", "32-true", 256, 1_000.0, steps=5)
    record("r56.json", "cifar_resnet56", "32-true", 256, 2_000.0)  # 20 steps: counts over the 5 above
    for model in ("cifar_resnet56", "cifar_resnet110", "cifar_resnet164"):
        record(f"{model}_bf16.json", model, "bf16-mixed", 256, 4_000.0)
    record("r110.json", "cifar_resnet110", "32-true", 256, 1.0, size="data.resize=96")  # not 28 px
    record("r164.json", "cifar_resnet164", "32-true", 256, 1.0, compile="reduce-overhead")
    record("cpu.json", "cifar_resnet110", "32-true", 256, 1.0, device="CPU (x86_64, 2 threads)")
    record("bench_default.json", None, "32-true", 256, 1.0, size="data.resize=96")  # the seed network
    (tmp_path / "versions.json").write_text("{}")
    lines, sentence = plan.ladder(1.5, tmp_path)
    skipped = capsys.readouterr().err
    for name in ("r110.json", "r164.json", "cpu.json", "versions.json"):
        assert f"skipped {tmp_path / name}: " in skipped, name
    assert "bench_default.json" not in skipped  # the seed network's record: read, not in the ladder
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in lines if line.startswith("| `")}
    cell = lambda preset, network: rows[f"`{preset}`", network].strip("|").split("|")[-1].strip()  # noqa: E731
    # 6 orderings x 5 seeds = 30 jobs; 30 x 10 epochs x 1.5 x 60,000 / 10,000 images/s = 2,700 s: 0.75 hours;
    # bf16 at 20,000: 0.375, shown to one decimal
    assert "| 30 | 10, 256 |" in rows["`depth`", "ResNet-20 (28 px)"]
    assert cell("depth", "ResNet-20 (28 px)") == "0.8 / 0.4"
    # 30 x 10 x 1.5 x 60,000 / 2,000 = 13,500 s = 3.75 hours; bf16 at 4,000: 1.875
    assert cell("depth", "ResNet-56 (28 px)") == "3.8 / 1.9"
    assert cell("depth", "ResNet-110 (28 px)") == "not measured / 1.9"
    # fp32 measured for 2 of 4 networks; bf16 for all: 0.375 + 3 x 1.875 = 6.0
    assert cell("depth", "in all") == "2 of 4 networks measured / 6"
    # He et al.'s schedule: 136 epochs at batch 128: 30 x 136 x 1.5 x 60,000 / 5,000 s = 20.4 hours;
    # ResNet-56 has no batch-128 record: 30 x 136 x 1.5 x 60,000 / 2,000 s = 51.0 hours at batch 256's
    assert "| 30 | 136, 128 |" in rows["`depth_he_schedule`", "ResNet-20 (28 px)"]
    assert cell("depth_he_schedule", "ResNet-20 (28 px)") == "20.4 / 5.1*"
    assert cell("depth_he_schedule", "ResNet-56 (28 px)") == "51.0* / 25.5*"
    # bf16 at batch 256's speeds: (30 x 136 x 1.5 x 60,000 / 3,600) x (1/20,000 + 3/4,000) = 81.6
    assert cell("depth_he_schedule", "in all") == "2 of 4 networks measured / 82*"
    assert "`cost_gpu/` (GPU X)" in "\n".join(lines)
    assert "on one GPU (GPU X) 2 of 4 networks measured (fp32) / 6 (bf16)" in sentence
    record("other.json", "cifar_resnet20", "32-true", 256, 1.0, device="GPU Y")
    with pytest.raises(SystemExit, match=r"records of 2 devices \(GPU X, GPU Y\); keep one kind there"):
        plan.ladder(1.5, tmp_path)


def test_the_seeds_figures_are_computed_from_its_printed_log(tmp_path):
    """references.SEED reads the seed's two logs (20 epoch lines as its program printed them); every
    figure quoted of the seed follows from them: here composed by hand from those lines. The
    seed_gap tables that set our runs beside the seed's are analyze.py's, from the committed
    records and the log, and its analysis.md too (a figure typed by hand fails here)."""
    from resnet_exp.analysis.references import SEED

    post, pre = SEED["post"], SEED["pre"]
    assert list(SEED) == ["post", "pre"] and len(post.epochs) == len(pre.epochs) == 10
    assert post.curve == [0.862, 0.900, 0.886, 0.884, 0.901, 0.896, 0.912, 0.917, 0.904, 0.893]
    assert (post.first_loss, post.final, post.best, post.best_epoch) == (0.5569, 0.893, 0.917, 8)
    assert (pre.first_loss, pre.final, pre.best, pre.best_epoch) == (1.186, 0.908, 0.917, 9)
    # largest drops: post 90.0 -> 88.6 after epoch 2; pre 91.7 -> 90.8 after epoch 9
    assert post.largest_drop[1] == 2 and round(post.largest_drop[0], 3) == 0.014
    assert pre.largest_drop[1] == 9 and round(pre.largest_drop[0], 3) == 0.009
    assert round(post.late_range(5), 3) == 0.024 and round(pre.late_range(5), 3) == 0.012
    assert [e.time_s for e in pre.epochs][:2] == [41.7, 41.5]

    seed_gap = ROOT / "experiments" / "seed_gap"
    inputs = ["--block-order", "../block_order_full_step/jobs", "--mxnet", "mxnet", "--probe", "bn_probe.txt",
              "--remedies", "jobs"]  # fmt: skip
    readme = [*inputs, "--step-check", "step_check.md", "--step-probe", "step_probe.md", "--readme"]
    r = subprocess.run([sys.executable, "analyze.py", *readme, "README.md", "--check"],
                       capture_output=True, text=True, cwd=seed_gap)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "analyze.py", *inputs], capture_output=True, text=True, cwd=seed_gap)
    assert r.returncode == 0 and r.stdout == (seed_gap / "analysis.md").read_text(), r.stderr
    assert "| the seed, post (one run) | 1 | 1.4 (epoch 2 to 3) | 2.4 | |" in r.stdout
    # a figure edited by hand in the README's region is found
    copy = tmp_path / "README.md"
    copy.write_text((seed_gap / "README.md").read_text().replace("| 1.4 (epoch 2 to 3) |", "| 1.6 (epoch 2 to 3) |"))
    r = subprocess.run([sys.executable, "analyze.py", *readme, str(copy), "--check"],
                       capture_output=True, text=True, cwd=seed_gap)  # fmt: skip
    assert r.returncode == 1 and "analysis regions are not what the records give" in r.stderr
    # the answer's figures are made from the records too: a hand edit there is found the same way
    copy.write_text((seed_gap / "README.md").read_text().replace("largest drop 8.79 → 3.78", "largest drop 8.8 → 3.8"))
    r = subprocess.run([sys.executable, "analyze.py", *readme, str(copy), "--check"],
                       capture_output=True, text=True, cwd=seed_gap)  # fmt: skip
    assert r.returncode == 1 and "analysis regions are not what the records give" in r.stderr
    # and the README's regions cannot be made without every input they come from
    r = subprocess.run([sys.executable, "analyze.py", *inputs, "--readme", str(copy), "--check"],
                       capture_output=True, text=True, cwd=seed_gap)  # fmt: skip
    assert r.returncode == 2 and "--readme needs --step-check, --step-probe" in r.stderr


def test_make_experiments_runs_every_experiment_with_a_run_script():
    """`make experiments` (the README: "runs them all") names every folder with a run.sh, each once,
    and only those."""
    import re

    makefile = (ROOT / "Makefile").read_text()
    (line,) = re.findall(r"^EXPERIMENTS := (.*)$", makefile, flags=re.M)
    named = line.split()
    scripts = sorted(p.parent.name for p in (ROOT / "experiments").glob("*/run.sh"))
    assert sorted(named) == scripts and len(set(named)) == len(named), (named, scripts)


def test_keep_copies_every_record_a_job_writes():
    """keep.sh's list of a job's files is records.RECORDS (what a report reads and a copy keeps)."""
    import re

    from resnet_exp.runs.records import RECORDS

    (listed,) = re.findall(r"for f in ([\w. ]+); do", (ROOT / "experiments" / "keep.sh").read_text())
    assert listed.split() == list(RECORDS)


def test_the_same_machine_bf16_design_runs_the_pairs_its_plan_asks_for():
    """bf16_same_machine is designed before it runs: its seeds (run.sh) are as many as its README's
    plan table (made by python -m resnet_exp.plan from the 5 earlier pairs, checked current here)
    says a fixed-n TOST needs at their mean difference, with precise BN; both precisions per seed."""
    import re

    folder = ROOT / "experiments" / "bf16_same_machine"
    r = subprocess.run([sys.executable, "-m", "resnet_exp.plan", "--doc", str(folder / "README.md")],
                       capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (row,) = [line for line in (folder / "README.md").read_text().splitlines() if "| precise BN |" in line]
    needed = int([c.strip() for c in row.strip("|").split("|")][8])
    script = (folder / "run.sh").read_text()
    first, last = map(int, re.search(r'seed="\$\(seq -s, (\d+) (\d+)\)"', script).groups())
    assert last - first + 1 == needed
    assert "trainer.precision=32-true,bf16-mixed" in script
    # its README's cost (costs.py, checked current by test_docs) counts those jobs in each precision
    spec = importlib.util.spec_from_file_location("costs", ROOT / "experiments" / "costs.py")
    costs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(costs)
    plan = costs.PLANNED["bf16_same_machine/README.md"]
    assert [(precision, n) for _, precision, n in plan] == [("32-true", needed), ("bf16-mixed", needed)]
