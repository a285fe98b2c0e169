"""The report on job directories with known numbers: exact statistics, failed jobs listed, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from resnet_exp.analysis.jobs import read_sweeps
from resnet_exp.analysis.render import render
from resnet_exp.report import main as report_main

T_975_2 = 4.302652729749462  # Student's t, 97.5% quantile, 2 degrees of freedom


def make_job(
    sweep: Path,
    num: int,
    order: str,
    seed: int,
    accs: list[float],
    status: str = "completed",
    error: str | None = None,
    vals: list[float] | None = None,
    running: list[float] | None = None,
) -> None:
    """A job directory with these per-epoch test accuracies; with ``running``, a job evaluated with
    precise BN (``accs``) and with the running averages (``running``) on the same weights."""
    job = sweep / str(num)
    job.mkdir(parents=True)
    config = {
        "block": {"order": order, "shortcut": "projection"},
        "model": {"channels": [32, 64, 128]},
        "data": {"batch_size": 256, "root": f"/data/{num}"},
        "optim": {"lr": 0.1},
        "trainer": {"max_epochs": 3, "deterministic": None},
        "seed": seed,
        "output_dir": f"out{num}",
    } | ({"evaluation": {"precise_bn_batches": 40}} if running else {})
    (job / "config.yaml").write_text(yaml.safe_dump(config))
    with open(job / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["epoch", "step", "test/acc", "train/loss", "time/epoch_s"]
            + (["val/acc"] if vals else [])
            + (["test/acc_running", "time/precise_bn_s"] if running else [])
        )
        for epoch, acc in enumerate(accs, 1):
            w.writerow(
                [float(epoch), epoch * 10, acc, 1.0 / epoch, 2.0 * epoch]
                + ([vals[epoch - 1]] if vals else [])
                + ([running[epoch - 1], 0.5] if running else [])
            )
    status_doc = {"status": status} | ({"error": error} if error else {})
    (job / "status.json").write_text(json.dumps(status_doc))


@pytest.fixture()
def sweep(tmp_path) -> Path:
    s = tmp_path / "sweep"
    # post: final 0.80, 0.82, 0.84 (mean 0.82, std 0.02); pre: final 0.85, 0.86, 0.87 (mean 0.86, std 0.01)
    for i, (seed, final) in enumerate(zip((1, 2, 3), (0.80, 0.82, 0.84))):
        make_job(s, i, "post", seed, [0.5, final + 0.05, final])
    for i, (seed, final) in enumerate(zip((1, 2, 3), (0.85, 0.86, 0.87))):
        make_job(s, 3 + i, "pre", seed, [0.6, 0.7, final])
    make_job(s, 6, "pre", 4, [0.3, float("nan")], status="failed", error="RuntimeError: CUDA out of memory\nmore")
    return s


def test_group_statistics_and_paired_comparison_are_exact(sweep):
    text, groups = render(read_sweeps([sweep]), [sweep])
    assert [g.label for g in groups] == ["block.order=post", "block.order=pre"]
    lo, hi = 0.82 - T_975_2 * 0.02 / 3**0.5, 0.82 + T_975_2 * 0.02 / 3**0.5
    # these jobs ran before precise BN existed: the running averages are their one measure
    assert (
        f"| block.order=post | 3 | running averages | 82.00 ± 2.00 [{lo * 100:.2f}, {hi * 100:.2f}] "
        "| 87.00 ± 2.00" in text
    )
    assert "[77.03, 86.97]" in text  # the same bounds, worked out by hand
    assert (
        "| block.order=pre | 3 | running averages | 86.00 ± 1.00 [83.52, 88.48] | 86.00 ± 1.00 [83.52, 88.48] "
        "| 3.0 (per run: 3, 3, 3) |" in text
    )
    assert "| 2.0 (per run: 2, 2, 2) |" in text  # post peaks at epoch 2
    # epochs take 2, 4, 6 s; no precise BN
    assert "| block.order=post | 3 | 1.0000 ± 0.0000 [1.0000, 1.0000] | 4.0 | n/a |  |" in text
    assert "## Pairwise comparisons of final test accuracy, running averages (the verdicts)" in text
    assert "precise BN" not in text.split("## Results per group")[1].split("| group |")[0].replace(
        "`evaluation.precise_bn_batches=0`", ""
    )
    # paired by seed 1-3: differences -0.05, -0.04, -0.03; mean -4 points, std 1 point
    half = T_975_2 * 0.01 / 3**0.5 * 100
    assert (
        f"| block.order=post | block.order=pre | paired | -4.00 | {-4 - half:+.2f} to {-4 + half:+.2f} "
        "| 0.0202 | 0.0202 |" in text
    )
    assert "block.order=pre ends higher than block.order=post by 4.00 points" in text
    # how much test accuracy swings: post falls 5 points into its last epoch; pre never falls, and
    # ranges 15, 16 and 17 points over its last two epochs
    assert "| block.order=post | running averages | 3 | 5.00 ± 0.00 [5.00] | 5.00 ± 0.00 [5.00] |" in text
    assert "| block.order=pre | running averages | 3 | 0.00 ± 0.00 [0.00] | 16.00 ± 1.00 [17.00] |" in text
    # no validation split: "best" is labelled as chosen on the test set, the final accuracy is the headline
    assert "| measure | final test acc | best test acc (epoch chosen on test) | epoch of best test acc, mean |" in text
    assert "which overstates the accuracy to expect on new data" in text
    # what was swept and what was held fixed; paths and logging are neither
    assert "- `block.order`: post, pre" in text and "- `seed`: 1, 2, 3, 4" in text
    assert "| `optim.lr` | 0.1 |" in text and "data.root" not in text and "output_dir" not in text


def test_failed_job_is_listed_not_dropped(sweep, tmp_path):
    assert report_main([str(sweep), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| sweep/6 | failed | 2 | RuntimeError: CUDA out of memory |" in text
    rows = list(csv.DictReader(open(tmp_path / "r" / "summary.csv")))
    assert [r["job"] for r in rows] == [f"sweep/{i}" for i in range(7)]
    assert rows[0] == {
        "job": "sweep/0",
        "block.order": "post",
        "seed": "1",
        "status": "completed",
        "epochs": "3",
        "final_precise_bn": "",
        "best_precise_bn": "",
        "best_epoch_precise_bn": "",
        "largest_drop_precise_bn": "",
        "late_range_precise_bn": "",
        "final_running": "0.8000",
        "best_running": "0.8500",
        "best_epoch_running": "2",
        "largest_drop_running": "0.0500",
        "late_range_running": "0.0500",
        "best_chosen_on": "test",
        "first_train_loss": "1.0000",
        "final_train_loss": "0.3333",
        "epochs_time_s": "12",
        "precise_bn_time_s": "",
    }
    assert rows[6]["status"] == "failed" and rows[6]["epochs"] == "2"
    png = (tmp_path / "r" / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_not_distinguishable_reading_and_several_sweeps(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for i, (seed, final) in enumerate(zip((1, 2), (0.80, 0.84))):
        make_job(a, i, "post", seed, [0.5, final])
    for i, (seed, final) in enumerate(zip((7, 8, 9), (0.81, 0.85, 0.83))):
        make_job(b, i, "pre", seed, [0.5, final])
    text, groups = render(read_sweeps([a, b]), [a, b])
    assert [len(g.done) for g in groups] == [2, 3]
    assert "| Welch |" in text and "Not distinguishable at n=2 and 3" in text
    # --where keeps a subset: here the seeds 7 and 9 of the second sweep
    assert report_main([str(a), str(b), "--where", "seed=7,9", "--out", str(tmp_path / "r")]) == 0
    summary = list(csv.DictReader(open(tmp_path / "r" / "summary.csv")))
    assert [(r["job"], r["seed"]) for r in summary] == [("b/0", "7"), ("b/2", "9")]
    assert report_main([str(a), "--where", "seed=99", "--out", str(tmp_path / "r")]) == 2
    # the sweeps are named as they lie under the working directory, without "..", else absolutely
    monkeypatch.chdir(b)
    assert report_main([str(tmp_path / "r" / ".." / "a"), "0/..", "--out", str(tmp_path / "r")]) == 0
    assert "Read from: `" + str(a) + "`, `.`\n" in (tmp_path / "r" / "report.md").read_text()
    monkeypatch.chdir(tmp_path)
    assert report_main([str(tmp_path / "r" / ".." / "a"), "b", "--out", str(tmp_path / "r")]) == 0
    assert "Read from: `a`, `b`\n" in (tmp_path / "r" / "report.md").read_text()


def test_a_key_gained_after_some_jobs_ran_counts_at_its_default(tmp_path):
    # jobs 0-1 ran before the project had loss.reduction; jobs 2-3 after, one at the default
    s = tmp_path / "sweep"
    for i, (order, seed) in enumerate([("post", 1), ("pre", 1), ("pre", 2), ("pre", 3)]):
        make_job(s, i, order, seed, [0.5, 0.8])
    for i, reduction in ((2, "mean"), (3, "batch_size")):
        config = yaml.safe_load((s / str(i) / "config.yaml").read_text())
        (s / str(i) / "config.yaml").write_text(yaml.safe_dump({**config, "loss": {"reduction": reduction}}))
    _, groups = render(read_sweeps([s]), [s])
    assert [(g.label, [j.name for j in g.jobs]) for g in groups] == [
        ("block.order=post, loss.reduction=mean", ["sweep/0"]),
        ("block.order=pre, loss.reduction=mean", ["sweep/1", "sweep/2"]),
        ("block.order=pre, loss.reduction=batch_size", ["sweep/3"]),
    ]


def test_error_on_a_directory_that_is_not_a_sweep(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {tmp_path}/empty is not a sweep directory: no job directories with a config.yaml in it "
        "(give outputs/sweeps/<sweep>, made by python -m resnet_exp.run -m ...)"
    )
    assert report_main([str(tmp_path / "missing")]) == 2
    assert not list((tmp_path / "empty").iterdir())


def test_with_a_validation_split_best_is_chosen_on_validation(tmp_path):
    """The best epoch is the one of highest val/acc (the first on a tie), and the test accuracy of
    that epoch is reported, not the highest test accuracy."""
    s = tmp_path / "sweep"
    make_job(s, 0, "post", 1, [0.80, 0.90, 0.85], vals=[0.70, 0.75, 0.75])  # val best at 2 (tie: first)
    make_job(s, 1, "post", 2, [0.80, 0.90, 0.84], vals=[0.70, 0.74, 0.76])  # val best at 3, test best at 2
    jobs = read_sweeps([s])
    assert [(j.best_epoch, j.best) for j in jobs] == [(2, 0.90), (3, 0.84)]
    text, _ = render(jobs, [s])
    assert "| measure | final test acc | test acc at the best validation epoch | best validation epoch, mean |" in text
    assert "| all jobs | 2 | running averages | 84.50 ± 0.71 [" in text and "| 87.00 ± 4.24 [" in text
    assert "| 2.5 (per run: 2, 3) |" in text


def test_reading_says_when_the_raw_interval_and_the_holm_verdict_disagree():
    from resnet_exp.analysis.groups import Group
    from resnet_exp.analysis.jobs import PRECISE
    from resnet_exp.analysis.stats import Comparison

    a, b = Group("block.order=pre"), Group("block.order=post")
    raw_only = Comparison(a, b, PRECISE, True, 5, 5, 0.012, 0.002, 0.022, p=0.03, p_holm=0.09)
    assert raw_only.sentence() == (
        "Not distinguishable at n=5 after correcting for the other comparisons: block.order=pre ends higher "
        "by 1.20 points and the raw 95% CI +0.20 to +2.20 excludes 0 (p=0.030), but the Holm-adjusted "
        "p=0.090 is not below 0.05."
    )
    both = Comparison(a, b, PRECISE, True, 5, 5, -0.012, -0.022, -0.002, p=0.01, p_holm=0.02)
    assert both.sentence().startswith("block.order=post ends higher than block.order=pre by 1.20 points")
    neither = Comparison(a, b, PRECISE, True, 5, 5, 0.004, -0.006, 0.014, p=0.4, p_holm=0.8)
    assert neither.sentence() == (
        "Not distinguishable at n=5: the difference of 0.40 points has a 95% CI -0.60 to +1.40 points that includes 0."
    )


def test_holm_adjusts_each_p_by_its_rank_and_keeps_the_order_monotone():
    """Holm-Bonferroni by hand: sorted 0.01, 0.03, 0.04 of three tests become 3 x 0.01, 2 x 0.03 and
    max(0.06, 1 x 0.04); a NaN (a test that could not run) counts for none and stays NaN."""
    import math

    from resnet_exp.analysis.stats import holm_adjusted

    adjusted = holm_adjusted([0.04, 0.01, math.nan, 0.03])
    assert [round(p, 10) for p in adjusted[:2]] == [0.06, 0.03] and math.isnan(adjusted[2])
    assert round(adjusted[3], 10) == 0.06
    assert holm_adjusted([0.6, 0.5]) == [1.0, 1.0]


def test_paired_differences_by_hand():
    """Differences 1, 2, 3 by hand: mean 2, standard error 1/sqrt(3), the 95% interval 2 ± t(0.975, 2)
    x se; t = 2 sqrt(3) gives p = 2 x sf(2 sqrt(3), 2); TOST at ±m takes the worse of the two
    one-sided tests, and is below 5% exactly when the 90% interval lies inside ±m."""
    import math

    from scipy import stats

    from resnet_exp.analysis.stats import PairedDifference

    d = PairedDifference((1.0, 2.0, 3.0))
    se, t975 = 1 / math.sqrt(3), stats.t.ppf(0.975, 2)
    assert d.n == 3 and d.mean == 2.0 and math.isclose(d.se, se)
    low, high = d.interval(0.95)
    assert math.isclose(low, 2 - t975 * se) and math.isclose(high, 2 + t975 * se)
    assert math.isclose(d.p, 2 * stats.t.sf(2 * math.sqrt(3), 2))
    assert math.isclose(d.tost_p(5.0), stats.t.cdf((2 - 5) / se, 2))  # the upper bound is the closer one
    edge = d.interval(0.90)[1]  # the margin at which the 90% interval just fits
    assert d.tost_p(edge * 1.001) < 0.05 < d.tost_p(edge * 0.999)
    alike = PairedDifference((0.5, 0.5))  # no spread: the point, and the tests' limits
    assert (alike.interval(), alike.p, alike.tost_p(1.0), alike.tost_p(0.4)) == ((0.5, 0.5), 0.0, 0.0, 1.0)
    assert PairedDifference((0.0, 0.0)).p == 1.0
    assert math.isnan(PairedDifference((1.0,)).interval()[0]) and math.isnan(PairedDifference((1.0,)).tost_p(1.0))


def test_curves_show_each_groups_mean_and_spread_in_percent(sweep, tmp_path):
    """The data behind curves.png: per panel and group, epochs 1..n, the mean and std over the
    completed runs, accuracies in % as in the tables; the failed job is not drawn."""
    from resnet_exp.analysis.groups import group_jobs, swept_keys
    from resnet_exp.analysis.plots import plot

    jobs = read_sweeps([sweep])
    data = plot(group_jobs(jobs, swept_keys(jobs)), tmp_path / "curves.png")
    # jobs without precise BN: their test/acc is the running averages' panel
    post = data["test/acc_running"]["block.order=post (n=3)"]
    assert post[0].tolist() == [1, 2, 3]
    assert post[1] == pytest.approx([50.0, 87.0, 82.0]) and post[2] == pytest.approx([0.0, 2.0, 2.0])
    assert data["test/acc_running"]["block.order=pre (n=3)"][1] == pytest.approx([60.0, 70.0, 86.0])
    assert data["train/loss"]["block.order=pre (n=3)"][1] == pytest.approx([1.0, 0.5, 1 / 3])
    # not measured or not logged in these jobs: no panel, no made-up line
    assert "test/acc" not in data and "train/acc" not in data
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_groups_are_named_by_preset_and_a_single_seed_is_not_swept(tmp_path):
    s = tmp_path / "sweep"
    for num, (preset, blocks) in enumerate((("resnet18", [2, 2, 2, 2]), ("resnet34", [3, 4, 6, 3]))):
        make_job(s, num, "post", 0, [0.5, 0.6])
        config = yaml.safe_load((s / str(num) / "config.yaml").read_text())
        config["model"]["blocks"] = blocks
        (s / str(num) / "config.yaml").write_text(yaml.safe_dump(config))
        (s / str(num) / ".hydra").mkdir()
        choices = {"model": preset, "block": "default", "logger": "default", "hydra/launcher": "basic"}
        (s / str(num) / ".hydra" / "hydra.yaml").write_text(
            yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}})
        )
    text, groups = render(read_sweeps([s]), [s])
    assert [g.label for g in groups] == ["model=resnet18", "model=resnet34"]  # not model.blocks=[3, 4, 6, 3]
    assert "- `model`: resnet18, resnet34\n\n" in text and "`seed`:" not in text
    assert "| `block` | default |" in text and "`logger`" not in text
    assert text.rstrip().endswith("2 jobs; per-job numbers in `summary.csv`, curves in `curves.png`.")


def test_jobs_of_two_experiments_group_by_ordering_and_keep_apart_by_folder(tmp_path):
    """post from one experiment's jobs/ beside two orderings an experiment preset swept, the same
    recipe: grouped by ordering alone, the preset still named, and each job told apart by folder."""
    post, other = tmp_path / "block_order" / "jobs", tmp_path / "identity_mappings" / "jobs"
    for seed in (1, 2):
        make_job(post, seed - 1, "post", seed, [0.5, 0.80 + seed / 100])
    for num, (order, seed) in enumerate((("relu_only_pre", 1), ("relu_only_pre", 2), ("bn_after_add", 1))):
        make_job(other, num, order, seed, [0.5, 0.83])
        (other / str(num) / ".hydra").mkdir()
        (other / str(num) / ".hydra" / "hydra.yaml").write_text(
            yaml.safe_dump({"hydra": {"runtime": {"choices": {"experiment": "identity_mappings"}}}})
        )
    text, groups = render(read_sweeps([post, other]), [post, other])
    assert [g.label for g in groups] == ["block.order=post", "block.order=relu_only_pre", "block.order=bn_after_add"]
    assert "- `experiment`: None, identity_mappings (a preset of other keys; here `block.order` determines it" in text
    assert report_main([str(post), str(other), "--out", str(tmp_path / "r")]) == 0
    summary = list(csv.DictReader(open(tmp_path / "r" / "summary.csv")))
    assert [r["job"] for r in summary] == [
        "block_order/jobs/0", "block_order/jobs/1",
        "identity_mappings/jobs/0", "identity_mappings/jobs/1", "identity_mappings/jobs/2",
    ]  # fmt: skip
    # a preset that the swept keys do not determine splits the groups, as any differing key does
    make_job(other, 3, "post", 3, [0.5, 0.83])
    (other / "3" / ".hydra").mkdir()
    (other / "3" / ".hydra" / "hydra.yaml").write_text((other / "0" / ".hydra" / "hydra.yaml").read_text())
    _, groups = render(read_sweeps([post, other]), [post, other])
    assert "block.order=post, experiment=identity_mappings" in [g.label for g in groups]


def test_signal_figure_shows_each_groups_mean_per_unit_at_init_and_end(sweep, tmp_path, capsys):
    """The data behind signal.png: per group, the mean over its completed runs of each unit's
    measure at epoch 0 and at the last epoch; runs without signal.csv are not drawn."""
    from resnet_exp.analysis.groups import group_jobs, swept_keys
    from resnet_exp.analysis.plots import plot_signal

    # two post runs, two pre runs: one of them resumed after the project gained the probe (no epoch 0)
    for num, scale, epochs in ((0, 1.0, (0, 1, 2)), (1, 3.0, (0, 1, 2)), (3, 2.0, (0, 1, 2)), (4, 4.0, (2,))):
        lines = ["epoch,kind,name,depth,act_std,input_grad_norm,weight_grad_norm"]
        for epoch in epochs:
            for depth in (1, 2):
                lines.append(f"{epoch},unit,stage1.{depth - 1},{depth},{scale * (epoch + depth)},{scale / depth},nan")
            lines.append(f"{epoch},stage,stage1,1,nan,nan,{scale}")
        (sweep / str(num) / "signal.csv").write_text("\n".join(lines) + "\n")
    jobs = read_sweeps([sweep])
    data = plot_signal(group_jobs(jobs, swept_keys(jobs)), tmp_path / "signal.png")
    post = "block.order=post (n=2)"
    assert data[("act_std", "init")][post][1] == pytest.approx([2.0, 4.0])  # mean of (1, 2) and (3, 6)
    assert data[("act_std", "end")][post][1] == pytest.approx([6.0, 8.0])
    assert data[("input_grad_norm", "init")]["block.order=pre (n=1)"][1] == pytest.approx([2.0, 1.0])
    assert data[("input_grad_norm", "end")]["block.order=pre (n=2)"][1] == pytest.approx([3.0, 1.5])
    assert data[("act_std", "init")][post][0].tolist() == [1, 2]
    assert (tmp_path / "signal.png").read_bytes().startswith(b"\x89PNG")
    # the report command draws it and says so; a later report of jobs without signal.csv in the
    # same folder takes the figure away instead of leaving one of other jobs beside its report
    out = tmp_path / "r"
    assert report_main([str(sweep), "--out", str(out)]) == 0
    assert (out / "signal.png").is_file() and f"{out / 'signal.png'}" in capsys.readouterr().out
    for num in (0, 1, 3, 4):
        (sweep / str(num) / "signal.csv").unlink()
    assert report_main([str(sweep), "--out", str(out)]) == 0
    assert not (out / "signal.png").exists() and "signal.png" not in capsys.readouterr().out
    assert (out / "report.md").is_file() and "signal.png" not in (out / "report.md").read_text()


def test_tune_picks_each_orderings_rate_on_validation_never_on_test(tmp_path, capsys):
    """The search's jobs are made so that validation and test disagree: the rate with the best test
    accuracy is not the one with the best validation accuracy. The choice must follow validation."""
    from resnet_exp.tune import main as tune_main

    s = tmp_path / "search"
    num = 0
    # (order, lr): (final val accs over seeds 1-2, final test accs)
    table = {
        ("post", 0.05): ((0.80, 0.82), (0.95, 0.95)),  # best on test: must not be chosen
        ("post", 0.1): ((0.86, 0.88), (0.85, 0.85)),  # best on validation
        ("pre", 0.1): ((0.84, 0.84), (0.90, 0.90)),
        ("pre", 0.2): ((0.87, 0.85), (0.80, 0.80)),  # best on validation (mean 0.86)
    }
    for (order, lr), (vals, tests) in table.items():
        for seed, (v, t) in enumerate(zip(vals, tests), 1):
            make_job(s, num, order, seed, [0.5, t], vals=[0.5, v])
            config = yaml.safe_load((s / str(num) / "config.yaml").read_text())
            config["optim"]["lr"] = lr
            config["data"]["val_size"] = 5000
            (s / str(num) / "config.yaml").write_text(yaml.safe_dump(config))
            num += 1
    assert tune_main([str(s), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "block.order=post optim.lr=0.1 seed=11,12,13,14,15 data.val_size=5000",
        "block.order=pre optim.lr=0.2 seed=11,12,13,14,15 data.val_size=5000",
    ]
    text = (tmp_path / "out" / "tuning.md").read_text()
    assert "## block.order=post: optim.lr=0.1" in text and "| 0.1 (chosen) | 2 | 87.00 ± 1.41 | 0.00 |" in text
    assert "| 0.05 | 2 | 81.00 ± 1.41 | 6.00 |" in text
    assert (tmp_path / "out" / "lr_curve.png").read_bytes().startswith(b"\x89PNG")
    # a search without a validation split is refused: there is nothing honest to choose by
    (s / "0" / "metrics.csv").write_text("epoch,step,test/acc,train/loss\n1.0,10,0.5,1.0\n")
    assert tune_main([str(s)]) == 2
    assert capsys.readouterr().err.startswith("error: search/0 has no validation accuracy")


def test_swing_measures_of_a_curve():
    from resnet_exp.analysis.jobs import largest_drop, late_range

    curve = [80.0, 86.0, 77.0, 88.0, 82.0, 90.0, 84.0, 91.0, 89.0, 87.0]
    assert largest_drop(curve) == 9.0  # epoch 2 -> 3
    assert late_range(curve) == 7.0  # epochs 6-10: 91 - 84
    assert late_range(curve, first_epoch=5) == 9.0  # epochs 5-10: 91 - 82
    assert late_range(curve, first_epoch=3) == 14.0  # epoch 3's 77 counts from epoch 3 on
    assert largest_drop(sorted(curve)) == 0.0


def test_both_measures_are_reported_each_labelled_and_compared_where_every_group_took_them(tmp_path):
    """Jobs run with precise BN carry two measures of the same weights: each gets its rows, swing and
    comparison, the verdicts on precise BN; a group that took the running averages only (an old
    job) is compared with the others on the running averages alone."""
    from resnet_exp.analysis.glance import glance
    from resnet_exp.analysis.groups import group_jobs
    from resnet_exp.analysis.plots import plot

    s = tmp_path / "sweep"
    for i, (seed, final, running) in enumerate(zip((1, 2, 3), (0.91, 0.92, 0.93), (0.80, 0.90, 0.85))):
        make_job(s, i, "post", seed, [0.88, final], running=[0.86, running])
    for i, (seed, final, running) in enumerate(zip((1, 2, 3), (0.90, 0.90, 0.90), (0.85, 0.86, 0.87))):
        make_job(s, 3 + i, "pre", seed, [0.85, final], running=[0.84, running])
    text, groups = render(read_sweeps([s]), [s])
    assert "| block.order=post | 3 | precise BN | 92.00 ± 1.00 [89.52, 94.48] |" in text
    assert "| block.order=post | 3 | running averages | 85.00 ± 5.00 [" in text
    assert "| block.order=pre | 3 | precise BN | 90.00 ± 0.00 [90.00, 90.00] |" in text
    assert "| block.order=post | 3 | 1.0000 ± 0.0000 [1.0000, 1.0000] | 3.0 | 0.5 |  |" in text
    verdicts = text.index("## Pairwise comparisons of final test accuracy, precise BN (the verdicts)")
    running = text.index("## Pairwise comparisons of final test accuracy, running averages\n")
    assert verdicts < running
    # precise BN: differences +1, +2, +3 points (mean +2, std 1); running: -5, +4, -2 (mean -1)
    half = T_975_2 * 0.01 / 3**0.5 * 100
    assert f"| block.order=post | block.order=pre | paired | +2.00 | {2 - half:+.2f} to {2 + half:+.2f} |" in text
    assert "| block.order=post | block.order=pre | paired | -1.00 |" in text[running:]
    # the swing: post falls 6 points (seed 1) by its running averages, never by precise BN
    assert "| block.order=post | precise BN | 3 | 0.00 ± 0.00 [0.00] |" in text
    assert "| block.order=post | running averages | 3 | 2.33 ± 3.21 [6.00] |" in text  # drops 6, 0, 1
    data = plot(group_jobs(read_sweeps([s]), ["block.order"]), tmp_path / "curves.png")
    assert data["test/acc"]["block.order=post (n=3)"][1] == pytest.approx([88.0, 92.0])
    assert data["test/acc_running"]["block.order=post (n=3)"][1] == pytest.approx([86.0, 85.0])
    lines = glance(s).splitlines()
    assert lines[1:3] == [
        "  block.order=post  3 of 3 completed  precise BN 92.00 ± 1.00; running averages 85.00 ± 5.00",
        "  block.order=pre   3 of 3 completed  precise BN 90.00 ± 0.00; running averages 86.00 ± 1.00",
    ]
    assert report_main([str(s), "--out", str(tmp_path / "r")]) == 0
    row = next(csv.DictReader(open(tmp_path / "r" / "summary.csv")))
    assert (row["final_precise_bn"], row["final_running"], row["largest_drop_running"]) == (
        "0.9100",
        "0.8000",
        "0.0600",
    )
    assert row["precise_bn_time_s"] == "1.0"

    # An old job (no precise BN) beside them: one measure in common, the running averages.
    old = tmp_path / "old"
    for i, seed in enumerate((1, 2, 3)):
        make_job(old, i, "bn_after_add", seed, [0.80, 0.82])
    text, _ = render(read_sweeps([s, old]), [s, old])
    assert "## Pairwise comparisons of final test accuracy, running averages (the verdicts)" in text
    assert "precise BN (the verdicts)" not in text
    # it ran before precise BN existed: read at the value jobs had then (0), which names its group
    old_group = "block.order=bn_after_add, evaluation.precise_bn_batches=0"
    assert f"| {old_group} | 3 | running averages | 82.00 ± 0.00 [" in text
    assert f"| {old_group} | 3 | precise BN |" not in text


def test_a_half_finished_sweep_names_what_it_swept_and_the_jobs_not_started(tmp_path):
    """sweep.yaml lists two jobs of block.order=post,pre and only the first has started: the report
    says what the sweep sweeps, and lists the second job as not started, instead of "nothing swept"."""
    from resnet_exp.analysis.glance import glance

    s = tmp_path / "sweep"
    make_job(s, 0, "post", 1, [0.5, 0.8])
    (s / "sweep.yaml").write_text(yaml.safe_dump({"group": "sweep-ab12", "swept": ["block.order"], "jobs": 2}))
    text, groups = render(read_sweeps([s]), [s])
    assert (
        f"- `block.order`: swept by `{s}` (its sweep.yaml lists 2 jobs), but only one value has a started job yet"
        in text
    )
    assert "- nothing:" not in text
    assert "| `block.order` |" not in text  # swept, not held fixed, though one value has started
    assert "| `optim.lr` | 0.1 |" in text
    assert "| sweep/1 | not started | 0 |  |" in text and "2 jobs;" in text
    assert [g.label for g in groups] == ["all jobs"] and [j.name for j in groups[0].jobs] == ["sweep/0"]
    assert glance(s).splitlines()[2] == "  and 1 job not started yet"
    assert report_main([str(s), "--out", str(tmp_path / "r")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r" / "summary.csv")))
    assert [(r["job"], r["status"]) for r in rows] == [("sweep/0", "completed"), ("sweep/1", "not started")]
    assert list(rows[0])[:4] == ["job", "seed", "status", "epochs"]  # no key reads as swept
    # none started at all: said in one line
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "sweep.yaml").write_text(yaml.safe_dump({"group": "g", "swept": [], "jobs": 3}))
    assert report_main([str(tmp_path / "empty")]) == 2
