"""Experiment tracking with Weights & Biases, in one room.

- ``logger.py``: each job's W&B run through Lightning's ``WandbLogger``: online with an offline
  fallback, failures that never stop training, the epochs a hard kill kept from W&B logged again.
- ``offline.py``: reads W&B's offline run files back (what W&B would receive on ``wandb sync``).
- ``workspace.py``: a W&B workspace view of a sweep (the command: ``python -m resnet_exp.dashboard``).
- here: how a job's run is named and grouped, and W&B's public API with a one-line error where
  there is no login.

W&B mirrors ``metrics.csv``; nothing in the project depends on it being reachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resnet_exp.command_line import override_key
from resnet_exp.runs.records import read_sweep


class TrackingError(Exception):
    """W&B cannot answer; the message is one line and says what to do."""


def identity(overrides: list[str], sweep_dir: Path | None) -> tuple[str, str | None]:
    """A job's W&B run name and group. In a sweep: named after its values of the swept keys
    (``block.order=pre,seed=1``) in the sweep's group (``sweep.yaml``); alone: named after all its
    overrides, in no group."""
    if sweep_dir is None:
        return ",".join(overrides) or "default", None
    info = read_sweep(sweep_dir) or {"group": f"sweep-{Path(sweep_dir).name}", "swept": []}
    swept = set(info["swept"])
    name = ",".join(o for o in overrides if override_key(o) in swept)
    return name or ",".join(overrides) or "default", info["group"]


def public_api() -> Any:
    """wandb's public API (``wandb.Api()``), or TrackingError in one line where W&B cannot be used
    (no login, no network)."""
    try:
        import wandb

        api = wandb.Api()
        api.viewer  # noqa: B018  (asks the server: fails here, not in the middle of the work)
        return api
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "api key" in text.lower() or "login" in text.lower():
            raise TrackingError("W&B has no login here: run `wandb login` (or set WANDB_API_KEY) first") from None
        raise TrackingError(f"W&B cannot be reached ({type(e).__name__}: {text})") from None
