"""A job directory's records, read and written without torch: ``status.json``, ``config.yaml``,
``metrics.csv`` and what their keys mean. The commands that only read or check them (the sweep's
checks, the report) need nothing heavier; ``job.py`` adds the job's life on top.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

STATUS_FILE = "status.json"
METRICS_FILE = "metrics.csv"
# A job that ended so is not run again when its sweep is: it would end the same way.
FINISHED = ("completed", "diverged")
CONFIG_FILE = "config.yaml"
# Keys that say where a job's files go and how it runs or reports, not what it computes: they may
# differ on a resume, and a report leaves them out of the recipe.
NOT_RECIPE = (
    "force_resume",
    "output_dir",
    "data.num_workers",
    "data.root",
    "data.cache_dir",
    "data.download",
    "logger.",
    "diagnostics.",  # measured on a copy of the network: what a job computes does not change
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
)


# The columns of metrics.csv besides epoch and step, one row per epoch (val/* only where the run
# holds out a validation split, data.val_size > 0).
METRICS = (
    "train/loss",
    "train/acc",
    "val/loss",
    "val/acc",
    "test/loss",
    "test/acc",
    "time/epoch_s",
    "time/images_per_s",
    "time/precise_bn_s",  # only with evaluation.precise_bn_batches > 0, as are the four below:
    "val/loss_running",  # the same weights evaluated with BatchNorm's running averages
    "val/acc_running",
    "test/loss_running",
    "test/acc_running",
)


class JobError(Exception):
    """A job directory that cannot be trained as it is; the message is one line and says what to do."""


class JobBusy(JobError):
    """Another process trains this job now."""


def describe(e: BaseException) -> str:
    """``Type: first line of the message``, for one-line warnings, errors and records; where that line
    only announces what follows (``Error in call to target 'SGD':``), the next line too."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    text = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    return f"{type(e).__name__}: {text}"


def read_status(job_dir: Path) -> dict[str, Any]:
    path = Path(job_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {"status": "unknown", "error": f"{path} cannot be read"}


def write_status(job_dir: Path, **status: Any) -> None:
    """Replace status.json atomically (a kill leaves the old or the new file, never half of one)."""
    tmp = Path(job_dir) / (STATUS_FILE + ".tmp")
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(tmp, Path(job_dir) / STATUS_FILE)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"block": {"order": "pre"}}`` -> ``{"block.order": "pre"}``; lists become their text, an
    empty mapping None."""
    if isinstance(tree, dict):
        if not tree and prefix:
            return {prefix[:-1]: None}
        return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: str(tree) if isinstance(tree, list) else tree}


def config_changes(job_dir: Path, cfg: DictConfig) -> list[str]:
    """The keys (``key: saved -> new``) whose values differ from the job's saved config.yaml; the
    ``hydra`` node of a run's config is not part of the job's. A saved config that cannot be read
    raises JobError."""
    path = Path(job_dir) / CONFIG_FILE
    if not path.is_file():
        return []
    try:
        saved = flatten(OmegaConf.to_container(OmegaConf.load(path)))
    except Exception as e:  # YAML or OmegaConf: a file edited by hand, cut short
        raise JobError(
            f"{path} cannot be read ({describe(e)}); restore it, or delete {job_dir} to train anew"
        ) from None
    if not isinstance(saved, dict) or not saved:
        raise JobError(f"{path} holds no config; restore it, or delete {job_dir} to train anew")
    tree = OmegaConf.to_container(cfg, resolve=True) if "hydra" not in cfg else job_config(cfg)
    new = flatten(tree)
    defaults = schema_defaults()
    return [
        f"{k}: {saved.get(k, '(unset)')} -> {new.get(k, '(unset)')}"
        for k in dict.fromkeys([*saved, *new])
        if not k.startswith(NOT_RECIPE)
        and saved.get(k) != new.get(k)
        # a key the project gained after the job ran, at its default: the default keeps the recipe
        # of the time (that is what a new key's default is for), so it describes what the job did
        and not (k not in saved and k in defaults and new.get(k) == defaults[k])
    ]


def schema_defaults() -> dict[str, Any]:
    """Every key of the config schema with its default, flattened (``loss.reduction: mean``)."""
    from resnet_exp.config import Config

    return flatten(OmegaConf.to_container(OmegaConf.structured(Config)))


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """A job's resolved config, without Hydra's own node (a run's config carries it)."""
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)
    return OmegaConf.to_container(OmegaConf.create(tree), resolve=True)


def read_metrics(job_dir: Path) -> list[dict[str, float]]:
    """metrics.csv as numbers, one dict per epoch."""
    path = Path(job_dir) / METRICS_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
