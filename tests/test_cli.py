"""End to end through the real CLI: sweeps on the CPU with a few batches of the real data set."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from resnet_exp.analysis.jobs import read_wandb
from resnet_exp.report import main as report_main
from resnet_exp.runs.console import python_command
from resnet_exp.tracking.offline import read_run
from resnet_exp.training.hardware import ISA, cpu_model
from tests.conftest import TINY, run_cli, status

# the seed's line; by default each accuracy measured with precise BN, the running averages' beside it
EPOCH_LINE = re.compile(
    r"^epoch 1, loss \d+\.\d{4}, train acc \d\.\d{3}, test acc \d\.\d{3} \(running \d\.\d{3}\), time \d+\.\d sec$", re.M
)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_post_pre_sweep_end_to_end(tmp_path, data_dir):
    tiny = [o for o in TINY if not o.startswith("evaluation.")]  # the user's command: evaluation as by default
    r = run_cli("resnet_exp.run", "-m", "block.order=post,pre", *tiny, f"output_dir={tmp_path}/out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(EPOCH_LINE.findall(r.stdout + r.stderr)) == 2
    # The console: the sweep's directory, each job's, one line per epoch, the results at a glance;
    # nothing of Lightning's set-up, W&B's chatter or Python's warnings, no progress-bar fragments.
    console = r.stdout + r.stderr
    for noise in ("Seed set to", "Trainable params", "GPU available", "wandb:", "Tip:", "Warning", "\x1b", "\r"):
        assert noise not in console, noise
    assert r.stderr == ""

    (sweep,) = (tmp_path / "out" / "sweeps").iterdir()
    info = OmegaConf.load(sweep / "sweep.yaml")
    assert info.swept == ["block.order"] and info.jobs == 2
    runs = []
    for num, order in (("0", "post"), ("1", "pre")):
        job = sweep / num
        config = OmegaConf.load(job / "config.yaml")
        assert config.block.order == order and config.data.batch_size == 16
        assert "${" not in (job / "config.yaml").read_text()

        (row,) = rows(job / "metrics.csv")  # one epoch, one row
        assert float(row["epoch"]) == 1
        for key in ("train/loss", "train/acc", "test/loss", "test/acc", "time/epoch_s", "time/images_per_s"):
            assert float(row[key]) >= 0, key
        assert 0 <= float(row["test/acc"]) <= 1

        ckpt = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert ckpt["epoch"] == 0 and any(k.startswith("net.stage3.1.conv2") for k in ckpt["state_dict"])
        assert (job / "checkpoints" / "best.ckpt").is_file()
        # the job's log holds the whole story, as plain text
        log = (job / "run.log").read_text()
        assert "Seed set to 0" in log and "GPU available" in log and EPOCH_LINE.search(log.replace("] - ", "]\n"))
        assert "\x1b" not in log and "\r" not in log
        assert f"job {job}" in console

        status = json.loads((job / "status.json").read_text())
        assert status["status"] == "completed"
        assert status["final"]["test/acc"] == float(row["test/acc"])
        # the default path: the device pipeline, in the seed's fp32
        assert (status["pipeline"], status["precision"]) == ("device", "32-true")
        # the machine it ran on, to tell costs and pairs of different machine kinds apart
        assert status["machine"] == {
            "cpu": cpu_model(),
            "isa": [n for n in ISA if getattr(torch.cpu, "get_capabilities", dict)().get(n)],
            "cores": len(os.sched_getaffinity(0)),
            "threads": int(os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads()),
            "kernels": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            **({"gpu": torch.cuda.get_device_name()} if torch.cuda.is_available() else {}),  # the default trains there
        }

        (run_dir,) = (job / "wandb").glob("offline-run-*")
        run = read_run(run_dir)
        runs.append(run)
        assert run.name == f"block.order={order}"
        assert run.group == info.group
        assert run.tags == [order]
        assert run.config["block"] == {"order": order, "shortcut": "projection", "projection_input": "relu"}
        assert run.config["optim"]["lr"] == 0.1
        assert "${" not in json.dumps(run.config)
        (history,) = [h for h in run.history if "test/acc" in h]
        assert history["test/acc"] == float(row["test/acc"]) and history["epoch"] == 1
        assert history["test/acc_running"] == float(row["test/acc_running"])
        for key in ("test/acc", "test/acc_running"):
            assert run.metrics[key] == {"step_metric": "epoch", "summary": ["max"]}
            assert run.summary[key] == {"max": float(row[key])}
        # each measure labelled where W&B shows the run
        assert run.notes.startswith("test/acc, val/acc: precise BN (BatchNorm statistics recomputed over 40 ")
        assert "test/acc_running, val/acc_running: the same weights with BatchNorm's running averages" in run.notes
        assert run.exit_code == 0
    assert runs[0].run_id != runs[1].run_id
    glance = console[console.index("Final test accuracy (%), mean ± std over the completed runs:") :].splitlines()
    finals = [
        [float(rows(sweep / n / "metrics.csv")[0][k]) * 100 for k in ("test/acc", "test/acc_running")] for n in "01"
    ]
    assert glance[1:4] == [
        f"  block.order=post  1 of 1 completed  precise BN {finals[0][0]:.2f}; running averages {finals[0][1]:.2f}",
        f"  block.order=pre   1 of 1 completed  precise BN {finals[1][0]:.2f}; running averages {finals[1][1]:.2f}",
        f"Full report (statistics, curves, every job): {python_command(tmp_path)} -m resnet_exp.report {sweep}",
    ]

    # The report reads the same numbers from the job directories and from what W&B received.
    assert report_main([str(sweep), "--out", str(tmp_path / "from_dirs")]) == 0
    assert report_main(["--wandb-offline", str(sweep), "--out", str(tmp_path / "from_wandb")]) == 0
    from_dirs = rows(tmp_path / "from_dirs" / "summary.csv")
    from_wandb = rows(tmp_path / "from_wandb" / "summary.csv")
    assert [r["job"] for r in from_wandb] == ["block.order=post", "block.order=pre"]
    strip = ("job",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in from_dirs] == [
        {k: v for k, v in r.items() if k not in strip} for r in from_wandb
    ]
    assert "| block.order=post | 1 |" in (tmp_path / "from_wandb" / "report.md").read_text()

    # --wandb goes through wandb's public API: here it answers with the runs W&B recorded offline.
    class RecordedRun:
        def __init__(self, run):
            self.id, self.name, self.config, self.state, self._history = (
                run.run_id,
                run.name,
                run.config,
                "finished",
                run.history,
            )

        def scan_history(self):
            return iter(self._history)

    class RecordedApi:
        def runs(self, path, filters):
            assert path == "me/resnet-exp" and filters == {"group": info.group}
            return [RecordedRun(r) for r in runs if r.group == filters["group"]]

    api_jobs = read_wandb("me/resnet-exp", info.group, api=RecordedApi())
    assert [(j.name, j.status, j.final) for j in api_jobs] == [
        (f"block.order={o}", "completed", float(rows(sweep / n / "metrics.csv")[0]["test/acc"]))
        for n, o in (("0", "post"), ("1", "pre"))
    ]


def test_printed_commands_name_the_interpreter_that_runs_them(tmp_path, monkeypatch):
    """A command the project prints (the resume line, the report's) runs as printed: ``python`` where
    that is this interpreter on the PATH (an activated environment), else this interpreter's path,
    relative below the current directory."""
    exe = Path(sys.executable).absolute()
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    assert python_command(tmp_path) == "python"
    monkeypatch.setenv("PATH", str(tmp_path))  # no python on it
    assert python_command(tmp_path) == str(exe)
    assert python_command(exe.parents[2]) == str(exe.relative_to(exe.parents[2]))  # e.g. .venv/bin/python
    r = subprocess.run([python_command(exe.parents[2]), "-c", "print(1)"], cwd=exe.parents[2], capture_output=True)
    assert r.stdout == b"1\n"


@pytest.mark.parametrize("command", ["bench", "dashboard", "gpu_check", "plan", "report", "summary", "tune"])
def test_every_commands_help_says_what_it_does_in_a_whole_sentence(command, capsys):
    """--help: argparse's usage, then the docstring's first paragraph without the usage it opens
    with (no sentence cut at the docstring's first line break)."""
    import importlib

    module = importlib.import_module(f"resnet_exp.{command}")
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and out.startswith(f"usage: python -m resnet_exp.{command}")
    said = " ".join(out.split("\n\n")[1].split())
    paragraph = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    assert paragraph.endswith(said) and not said.startswith("`") and said.endswith((".", ")", ":")), said
    assert "--where" not in out or "only the jobs whose config" in " ".join(out.split())


def test_shape_summary_cli(tmp_path):
    r = run_cli("resnet_exp.summary", "--size", "224", "block.order=pre", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shapes = re.findall(r"^(\w+)\s+output shape: (\(.*\))$", r.stdout, re.M)
    assert shapes == [
        ("conv", "(1, 32, 112, 112)"),
        ("bn", "(1, 32, 112, 112)"),
        ("relu", "(1, 32, 112, 112)"),
        ("pool", "(1, 32, 56, 56)"),
        ("stage1", "(1, 32, 56, 56)"),
        ("stage2", "(1, 64, 28, 28)"),
        ("stage3", "(1, 128, 14, 14)"),
        ("gap", "(1, 128, 1, 1)"),
        ("fc", "(1, 10)"),
    ]


def test_wandb_online_without_credentials_falls_back_to_offline(tmp_path, data_dir):
    """Online with no credentials: a one-line warning, the run completes, W&B writes offline files."""
    r = run_cli(
        "resnet_exp.run",
        *TINY,
        "logger.wandb.mode=online",
        f"output_dir={tmp_path}/out",
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "WANDB_MODE": "online", "WANDB_SILENT": "false"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [line for line in (r.stdout + r.stderr).splitlines() if "W&B could not start" in line]
    assert len(warnings) == 1
    assert "W&B could not start online (UsageError: " in warnings[0]
    assert warnings[0].endswith("/wandb instead, upload later with `wandb sync`")
    (job,) = (tmp_path / "out" / "runs").iterdir()
    (row,) = rows(job / "metrics.csv")
    assert float(row["epoch"]) == 1 and 0 <= float(row["test/acc"]) <= 1
    assert json.loads((job / "status.json").read_text())["status"] == "completed"
    (offline,) = job.glob("wandb/offline-run-*")
    assert [h["test/acc"] for h in read_run(offline).history if "test/acc" in h] == [float(row["test/acc"])]


def test_identity_mappings_preset_sweeps_all_five_orderings(tmp_path, data_dir):
    """The experiment preset through the real CLI, cut to one seed and a few batches."""
    r = run_cli(
        "resnet_exp.run",
        "experiment=identity_mappings",
        "seed=1",
        *TINY,
        "logger.wandb.mode=disabled",
        f"output_dir={tmp_path}/out",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (sweep,) = (tmp_path / "out" / "sweeps").iterdir()
    info = OmegaConf.load(sweep / "sweep.yaml")
    assert info.swept == ["block.order"] and info.jobs == 5  # seed=1 on the command line wins
    orders = []
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        config = OmegaConf.load(job / "config.yaml")
        orders.append(config.block.order)
        assert config.seed == 1
        assert json.loads((job / "status.json").read_text())["status"] == "completed"
        (row,) = rows(job / "metrics.csv")
        assert 0 <= float(row["test/acc"]) <= 1
    assert orders == ["post", "bn_after_add", "relu_before_add", "relu_only_pre", "pre"]


def test_dashboard_view_for_a_sweep(tmp_path):
    """The W&B view is built and validated offline; saving it needs W&B online."""
    r = run_cli("resnet_exp.dashboard", "me/resnet-exp", "--group", "sweep-x", "--print", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    spec = json.loads(r.stdout)
    assert (spec["entity"], spec["project"], spec["displayName"]) == ("me", "resnet-exp", "sweep-x by block.order")
    runset = spec["spec"]["section"]["runSets"][0]
    assert runset["filters"]["filters"] == [
        {"key": {"section": "run", "name": "group"}, "op": "=", "value": "sweep-x", "disabled": False}
    ]
    assert runset["grouping"] == [{"section": "config", "name": "block.value.order"}]
    (section,) = spec["spec"]["section"]["panelBankConfig"]["sections"]
    plots = [
        (
            p["config"]["xAxis"],
            p["config"]["metrics"],
            p["config"]["groupBy"],
            p["config"]["groupAgg"],
            p["config"]["groupArea"],
        )
        for p in section["panels"]
    ]
    assert plots == [
        ("epoch", ["test/acc"], "block.value.order", "mean", "stddev"),
        ("epoch", ["test/acc_running"], "block.value.order", "mean", "stddev"),
        ("epoch", ["train/loss"], "block.value.order", "mean", "stddev"),
    ]
    titles = [p["config"]["chartTitle"] for p in section["panels"]]
    assert titles[:2] == [
        "test/acc (precise BN where on) by epoch, mean ± std per block.order",
        "test/acc_running (running averages, the seed's protocol) by epoch, mean ± std per block.order",
    ]
    bad = run_cli("resnet_exp.dashboard", "resnet-exp", "--group", "g", cwd=tmp_path)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "error: 'resnet-exp' is not ENTITY/PROJECT (e.g. my-team/resnet-exp)"
    )


def test_configs_are_found_in_an_installed_wheel(tmp_path):
    """Not only in this checkout: a wheel carries conf/ as resnet_exp.conf."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "w"),
         str(ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "w").glob("resnet_exp-*.whl")
    # every module of the package and every preset of conf/ is in it (pyproject lists the packages
    # one by one: a new one left out would be found only where an editable install stands in)
    with zipfile.ZipFile(wheel) as z:
        carried = {n for n in z.namelist() if n.endswith((".py", ".yaml"))}
    source = {str(p.relative_to(ROOT)) for p in (ROOT / "resnet_exp").rglob("*.py")}
    source |= {"resnet_exp/conf/" + str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*.yaml")}
    source |= {str(p.relative_to(ROOT)) for p in (ROOT / "hydra_plugins").rglob("*.py")}
    assert source <= carried, sorted(source - carried)
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    r = run_cli("resnet_exp.summary", "model=resnet34", "block.order=relu_only_pre", cwd=tmp_path,
                env={"PYTHONPATH": str(target)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("block.order=relu_only_pre block.shortcut=projection, input (1, 1, 96, 96)")
    assert "stage4     output shape: (1, 512, 3, 3)" in r.stdout
    assert "final_bn   output shape: (1, 512, 3, 3)" in r.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import resnet_exp; print(resnet_exp.__file__)"],
        env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert probe.stdout.strip() == str(target / "resnet_exp" / "__init__.py")


def test_a_validation_split_is_evaluated_and_chooses_the_best_checkpoint(tmp_path, data_dir):
    """data.val_size: val/loss and val/acc every epoch beside the test metrics, in metrics.csv, on the
    console and in W&B; best.ckpt follows val/acc."""
    run = tmp_path / "run"
    r = run_cli("resnet_exp.run", *TINY, "trainer.max_epochs=2", "data.val_size=1000", f"hydra.run.dir={run}",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = rows(run / "metrics.csv")
    assert len(metrics) == 2 and all(0 <= float(m["val/acc"]) <= 1 and float(m["val/loss"]) > 0 for m in metrics)
    line = (
        r"epoch 1, loss [\d.]+, train acc [\d.]+, val acc [\d.]+ \(running [\d.]+\), test acc [\d.]+ \(running [\d.]+\)"
    )
    assert re.search(line, r.stdout + r.stderr)
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    (state,) = [v for k, v in best["callbacks"].items() if "'monitor': 'val/acc'" in k]
    vals = [float(m["val/acc"]) for m in metrics]
    assert best["epoch"] == vals.index(max(vals)) and state["best_model_score"] == max(vals)
    (run_dir,) = (run / "wandb").glob("offline-run-*")
    recorded = [h for h in read_run(run_dir).history if "val/acc" in h]
    assert [h["val/acc"] for h in recorded] == pytest.approx(vals)
    # best.ckpt says what it is: the LightningModule comes back from it alone, config and weights
    from resnet_exp.training.classifier import Classifier

    restored = Classifier.load_from_checkpoint(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert restored.hparams.config == OmegaConf.to_container(OmegaConf.load(run / "config.yaml"))
    weights = {k.removeprefix("net."): v for k, v in best["state_dict"].items() if k.startswith("net.")}
    assert all(torch.equal(restored.net.state_dict()[k], v) for k, v in weights.items())
    assert restored.validation and restored.net.order == "post"
    # nor does it pickle anything of the package (it loads with weights_only), so a module that
    # moves never breaks a checkpoint written before: no pickled global names a module of it (the
    # config's strings may, e.g. a callback's _target_)
    with zipfile.ZipFile(run / "checkpoints" / "best.ckpt") as z:
        assert not [
            g for n in z.namelist() if n.endswith(".pkl") for g in pickled_globals(z.read(n)) if "resnet_exp" in g
        ]


def pickled_globals(data: bytes) -> list[str]:
    """The globals a pickle names (``module name``), by its opcodes: GLOBAL's argument, and the two
    strings pushed before a STACK_GLOBAL."""
    import pickletools

    found, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.append(" ".join(strings[-2:]))
        elif isinstance(arg, str):
            strings.append(arg)
    return found


def test_a_second_data_set_is_a_config_choice_and_the_network_takes_its_channels(tmp_path):
    """data=cifar10 on a small CIFAR-10 in the release's own format: the job trains 3-channel
    images, the stem's conv takes 3 channels because the data set has them; a channel count that
    does not match is refused before any work."""
    from tests.test_data import write_cifar10

    write_cifar10(tmp_path / "cifar" / "cifar-10-batches-py")
    run = tmp_path / "run"
    common = ("resnet_exp.run", "data=cifar10", f"data.root={tmp_path / 'cifar'}", *TINY, "logger.wandb.mode=disabled")
    r = run_cli(*common, f"hydra.run.dir={run}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    saved = OmegaConf.load(run / "config.yaml")
    assert (saved.data.name, saved.model.in_channels) == ("cifar10", 3)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"]["net.conv.weight"].shape == (32, 3, 7, 7)  # the stem's conv
    assert len(rows(run / "metrics.csv")) == 1

    refused = run_cli(*common, "model.in_channels=1", f"hydra.run.dir={tmp_path / 'no'}", cwd=tmp_path)
    assert refused.returncode == 2 and not (tmp_path / "no").exists()
    assert refused.stderr.strip() == (
        "error: model.in_channels=1 does not match CIFAR-10's 3-channel (colour) images; use 3 "
        "(the default takes the data set's)"
    )


def test_a_callback_and_a_logger_are_added_from_the_command_line(tmp_path, data_dir):
    """``+callbacks=[early_stopping,lr_monitor]`` and ``logger=tensorboard`` (conf/callbacks/,
    conf/logger/) are built by Hydra from their ``_target_``, no code: an EarlyStopping that cannot
    see an improvement of a whole point stops the job after its second epoch (of four), which its
    record says; the learning rate joins each epoch's row of metrics.csv; and
    TensorBoard's event file in the job's folder holds the epochs' test accuracy that metrics.csv
    holds. A callback without a ``_target_`` is refused in one line before any work."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    small = [o for o in TINY if not o.startswith("trainer.max_epochs")]
    r = run_cli("resnet_exp.run", "logger=tensorboard", "+callbacks=[early_stopping,lr_monitor]", "callbacks.early_stopping.patience=0",
                "callbacks.early_stopping.min_delta=1.0", "trainer.max_epochs=4", "data.val_size=1000", *small,
                "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    job = tmp_path / "run"
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "completed" and status["epochs"] == 2
    assert status["ended_early"] == "a callback stopped training after epoch 2 of 4"
    with open(job / "metrics.csv") as f:
        epochs = list(csv.DictReader(f))
    logged = [float(row["test/acc"]) for row in epochs]
    # one row an epoch: the learning rate, logged at each epoch's start, in its epoch's row
    assert [(row["epoch"], row["lr-SGD"]) for row in epochs] == [("1.0", "0.1"), ("2.0", "0.1")]
    (events,) = (job / "tensorboard").glob("events.out.tfevents.*")
    board = EventAccumulator(str(events.parent))
    board.Reload()
    assert [round(e.value, 6) for e in board.Scalars("test/acc")] == [round(v, 6) for v in logged]

    r = run_cli("resnet_exp.run", "+callbacks.mine.patience=1", *TINY, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: callbacks.mine must be a config with a _target_ (the class to build, e.g. "
        "pytorch_lightning.callbacks.EarlyStopping); see conf/callbacks/ and conf/logger/"
    ), r.stderr
    assert not (tmp_path / "outputs").exists()  # refused before any work
    # it stops on the validation split, never on the test set: without one it is refused up front
    r = run_cli("resnet_exp.run", "+callbacks=early_stopping", *TINY, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: callbacks.early_stopping.monitor=val/acc needs a validation split: set data.val_size (e.g. 5000 "
        "training images held out)"
    ), r.stderr


def test_the_training_curve_records_the_loss_within_epochs(tmp_path, data_dir):
    """``+callbacks=training_curve callbacks.training_curve.every=3``, two epochs of 7 batches: a row
    at steps 3, 6 and the epoch's last (7), then 9, 12, 14 (no window spans two epochs); each row the
    mean loss of its steps' images, so that an epoch's rows, weighted by images, give its
    ``train/loss`` in metrics.csv; the same rows in W&B against ``curve/step``. ``every=0`` is refused
    in one line. (A stop and a resume end with the rows of an unstopped job: test_reliability.)"""
    small = [o for o in TINY if not o.startswith(("trainer.max_epochs", "trainer.limit_train_batches"))]
    r = run_cli("resnet_exp.run", "+callbacks=training_curve", "callbacks.training_curve.every=3",
                "trainer.max_epochs=2", "trainer.limit_train_batches=7", *small, "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    job = tmp_path / "run"
    with open(job / "train_curve.csv") as f:
        curve = list(csv.DictReader(f))
    assert [(int(row["epoch"]), int(row["step"]), int(row["steps"]), int(row["images"])) for row in curve] == [
        (1, 3, 3, 48), (1, 6, 3, 48), (1, 7, 1, 16), (2, 9, 2, 32), (2, 12, 3, 48), (2, 14, 2, 32),
    ]  # fmt: skip
    with open(job / "metrics.csv") as f:
        epochs = list(csv.DictReader(f))
    for epoch, row in enumerate(epochs, 1):
        mine = [(float(c["train/loss"]), int(c["images"])) for c in curve if int(c["epoch"]) == epoch]
        mean = sum(loss * n for loss, n in mine) / sum(n for _, n in mine)
        assert mean == pytest.approx(float(row["train/loss"]), rel=1e-5)
    (run,) = [read_run(d) for d in (job / "wandb").glob("offline-run-*")]
    logged = [(h["curve/step"], h["curve/train_loss"]) for h in run.history if "curve/step" in h]
    assert logged == [(int(c["step"]), pytest.approx(float(c["train/loss"]), rel=1e-6)) for c in curve]
    assert run.metrics["curve/*"]["step_metric"] == "curve/step"
    r = run_cli("resnet_exp.run", "+callbacks=training_curve", "callbacks.training_curve.every=0", *TINY,
                "hydra.run.dir=refused", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: callbacks.training_curve.every=0 must be a whole number of steps, at least 1"
    ), r.stderr
    assert not (tmp_path / "refused").exists()


def test_the_projects_own_callbacks_come_from_the_config(tmp_path, data_dir):
    """The divergence guard and the signal probe are ``callbacks`` entries (the schema's defaults)
    that Hydra builds: with ``callbacks.divergence_guard=null`` a job at lr 1e6 trains on through
    NaN losses to the end (where the guard stops it at once, test_reliability), and its records
    say what happened: ``diverged``, found at the epoch's end, the NaN loss in metrics.csv, the
    guard null in its saved config;
    ``callbacks.signal_propagation=null`` leaves no signal.csv. Dropping one with ``~`` (a saved
    config that would not say so), a target that cannot be found, and an argument of the wrong
    kind are refused in one line before any work."""
    r = run_cli("resnet_exp.run", "optim.lr=1e6", "callbacks.divergence_guard=null", "callbacks.signal_propagation=null",
                "trainer.limit_train_batches=4", *TINY[:1], *TINY[2:], "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    job = tmp_path / "run"
    assert status(job)["status"] == "diverged" and status(job)["step"] is None
    assert status(job)["error"] == (
        "diverged at epoch 1, found at the epoch's end (callbacks.divergence_guard was off)"
    )
    (row,) = rows(job / "metrics.csv")
    assert row["epoch"] == "1.0" and row["train/loss"] == "nan"
    saved = OmegaConf.load(job / "config.yaml").callbacks
    assert saved == {"divergence_guard": None, "signal_propagation": None}
    assert not (job / "signal.csv").exists() and (job / "metrics.csv").is_file()
    for overrides, error in (
        (["~callbacks.divergence_guard"], "callbacks.divergence_guard was removed; set callbacks.divergence_guard=null "
         "to turn it off, so that the job's saved config says it ran without it"),
        (["callbacks.divergence_guard._target_=resnet_exp.training.guard.Guard"],
         "callbacks.divergence_guard._target_=resnet_exp.training.guard.Guard cannot be found (ModuleNotFoundError: "
         "No module named 'resnet_exp.training.guard.Guard'; 'resnet_exp.training.guard' is not a package)"),
        (["callbacks.divergence_guard.every=0"],
         "callbacks.divergence_guard.every=0 must be a whole number of steps, at least 1"),
        (["logger=tensorboard", "logger.others.tensorboard.default_hp_metric=often"],
         "logger.others.tensorboard.default_hp_metric=often must be true or false "
         "(pytorch_lightning.loggers.TensorBoardLogger's default_hp_metric)"),
    ):  # fmt: skip
        r = run_cli("resnet_exp.run", *overrides, *TINY, "hydra.run.dir=refused", cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.strip() == f"error: {error}", (overrides, r.stderr)
    assert not (tmp_path / "refused").exists()  # refused before any work
