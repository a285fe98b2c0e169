"""Shared fixtures: the real Fashion-MNIST files and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_exp.data import DEBIAN_DIR, missing_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Debian's dataset-fashion-mnist files; the suite needs the real data set, it never fakes it."""
    missing = missing_files(DEBIAN_DIR)
    assert not missing, f"{DEBIAN_DIR} lacks {missing}: run `make data` (apt-get install dataset-fashion-mnist)"
    return DEBIAN_DIR


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` in a subprocess, as a user would, with W&B kept offline."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    full_env.pop("WANDB_API_KEY", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


# A few batches of the real data: enough to exercise every path in seconds on a CPU.
TINY = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "data.batch_size=16",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
)
