"""Shared fixtures and helpers: the real Fashion-MNIST files, runners for the real CLI, readers of
a job directory's files, waits on what a running job writes."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# One intra-op thread per process, set before torch is imported, for this process and every command
# the tests run: the suite runs two workers, each starting commands, on as few as two cores, and two
# processes that each spread their ops over every core oversubscribe them (with torch's default,
# the suite took 35% longer). A test that needs the default count says so (``DEFAULT_THREADS``).
# OMP_NUM_THREADS set by whoever runs the suite wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from resnet_exp.data.fashion_mnist import DEBIAN_DIR, missing_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` run first (the rest keep their order): pytest-xdist hands tests out in
    collection order, so a minutes-long test collected late kept one worker busy after the other
    had finished (about 6% of the suite's time, simulated from its durations). Tests marked ``gpu``
    need CUDA: without it they are skipped, and listed so (``-ra``)."""
    items.sort(key=lambda item: "long" not in item.keywords)  # a stable sort
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here); python -m resnet_exp.gpu_check runs them on one")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Debian's dataset-fashion-mnist files; the suite needs the real data set, it never fakes it."""
    missing = missing_files(DEBIAN_DIR)
    assert not missing, f"{DEBIAN_DIR} lacks {missing}: run `make data` (apt-get install dataset-fashion-mnist)"
    return DEBIAN_DIR


# For ``env=``: the command spreads its ops over every core, as torch does by default.
DEFAULT_THREADS: dict[str, str | None] = {"OMP_NUM_THREADS": None}


def cli_env(env: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a command the tests run: W&B offline and quiet, no credentials, one
    intra-op thread (see above); a key given None in ``env`` is removed."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    full_env.pop("WANDB_API_KEY", None)
    full_env.update(env or {})
    return {k: v for k, v in full_env.items() if v is not None}


def run_cli(*args: str, cwd: Path, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` in a subprocess, as a user would, and wait for it to end (no time
    limit: a busy machine is slow, not wrong)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=cli_env(env), capture_output=True, text=True)


def run_cli_here(
    *args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> tuple[int, str]:
    """Run ``python -m resnet_exp.run <args>``'s entry point (``resnet_exp.run.cli``) in this process, in ``cwd``
    and the environment of ``cli_env``: its exit status and what it printed on stderr. For checks of
    bad input that stops the command before any work, seconds faster than a new interpreter each;
    ``run_cli`` still runs a few of them as a user would, to show that a fresh process prints one
    line too (no warning of an import before it)."""
    from hydra.core.global_hydra import GlobalHydra

    from resnet_exp.run import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["resnet_exp.run", *args])
    # cli() sets it for its own run; set here first, so that it is restored after (a delenv of a
    # variable that is not set records nothing to restore: a later test's new process inherited it)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    env = cli_env()
    for key in set(os.environ) - set(env):  # what cli_env leaves out (W&B credentials)
        monkeypatch.delenv(key)
    for key, value in env.items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # Hydra sets up logging for the command: undone after
    GlobalHydra.instance().clear()
    capfd.readouterr()
    try:
        cli()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        root.handlers[:], root.level = handlers, level
    return code, capfd.readouterr().err


def start(args: list[str], cwd: Path, env: dict[str, str | None] | None = None) -> subprocess.Popen:
    """Start ``python -m <args>`` without waiting; its stdout and stderr together in ``.stdout``."""
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def rows(job: Path, name: str = "metrics.csv") -> list[dict[str, str]]:
    """A job's metrics.csv (one dict per epoch), or another of its CSV files."""
    with open(job / name, newline="") as f:
        return list(csv.DictReader(f))


def status(job: Path) -> dict:
    return json.loads((job / "status.json").read_text())


def wait_until(happened: Callable[[], bool], proc: subprocess.Popen) -> None:
    """Wait until ``happened()`` (an event, not a time: it waits as long as the process runs, and
    fails at once if it ends first)."""
    while not happened():
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)  # polling interval


def checkpointed(job: Path, epochs: int) -> bool:
    """Whether ``job`` has ``epochs`` epochs logged and checkpointed (``last.ckpt``)."""
    import torch

    ckpt = job / "checkpoints" / "last.ckpt"
    if not ((job / "metrics.csv").is_file() and len(rows(job)) >= epochs and ckpt.is_file()):
        return False
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] + 1 >= epochs
    except Exception:  # replaced right now
        return False


def wait_for_epoch(job: Path, proc: subprocess.Popen, epochs: int) -> None:
    """Wait until ``job`` has ``epochs`` epochs logged and checkpointed (``wait_until``)."""
    wait_until(lambda: checkpointed(job, epochs), proc)


# A few batches of the real data: enough to exercise every path in seconds on a CPU. Loader and
# console settings are the default config's (the progress bar shows only on a terminal). Both
# evaluations run, as by default, precise BN over as few batches as the test set's (its default, 40,
# would be most of each epoch's work here).
TINY = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "data.batch_size=16",
    "diagnostics.probe_size=16",
    "evaluation.precise_bn_batches=2",
)
# A few more batches, with the default config's loader settings (data.num_workers is left alone).
SMALL = (
    "trainer.limit_val_batches=2",
    "data.batch_size=16",
    "diagnostics.probe_size=16",
    "evaluation.precise_bn_batches=2",
)
RESULTS = ("train/loss", "train/acc", "test/loss", "test/acc")


SLURM_LOCAL = ROOT / "tools" / "slurm-local.sh"


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """The one-node SLURM cluster of tools/slurm-local.sh, running (started here, once for all the
    suite's workers, where it is not): the environment a command needs to reach it (SLURM_CONF).
    Where it cannot run here (no SLURM and no apt-get as root to install it), the test is skipped
    with the script's one-line reason; ``.ci/run`` starts it before the suite, so CI runs them."""
    import fcntl

    lock = Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/resnet-exp-slurm") + ".lock")
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one worker starts it; the other waits, then finds it running
        if subprocess.run([SLURM_LOCAL, "status"], capture_output=True).returncode != 0:
            started = subprocess.run([SLURM_LOCAL, "start"], capture_output=True, text=True)
            if started.returncode != 0:
                reason = (started.stderr.strip().splitlines() or ["tools/slurm-local.sh start failed"])[-1]
                pytest.skip(f"no SLURM cluster here: {reason}")
    env = subprocess.run([SLURM_LOCAL, "env"], capture_output=True, text=True, check=True).stdout
    key, _, value = env.strip().removeprefix("export ").partition("=")
    return {key: value}


def slurm_cmd(*args: str, env: dict[str, str]) -> str:
    """A SLURM command (squeue, sacct, scontrol, scancel) against the test cluster; its stdout."""
    return subprocess.run(list(args), env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
