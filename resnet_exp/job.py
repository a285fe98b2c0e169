"""A job directory's lifecycle: its status file, its saved config, resuming it.

A job directory holds ``status.json``: ``running``, ``completed`` (with the final metrics),
``failed`` (with the error), ``diverged`` (at which epoch and step) or ``interrupted``. A job found
``completed`` or ``diverged`` is skipped when its sweep is run again; any other job resumes from
its newest checkpoint (``last.ckpt``, or ``interrupted.ckpt`` from mid-epoch), continuing its
metrics.csv (the epochs the checkpoint holds, none twice) and its W&B run (the same id, kept in
status.json). A job whose saved config differs from the new one is
refused, unless the user forces it (``force_resume=true``).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger

STATUS_FILE = "status.json"
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
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
)


def read_status(job_dir: Path) -> dict[str, Any]:
    path = Path(job_dir) / STATUS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_status(job_dir: Path, **status: Any) -> None:
    """Replace status.json atomically (a kill leaves the old or the new file, never half of one)."""
    tmp = Path(job_dir) / (STATUS_FILE + ".tmp")
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(tmp, Path(job_dir) / STATUS_FILE)


INTERRUPTED_CKPT = "interrupted.ckpt"


def resume_point(job_dir: Path) -> tuple[Path | None, int, int]:
    """Where a job resumes: the newest of ``checkpoints/last.ckpt`` (end of an epoch) and
    ``checkpoints/interrupted.ckpt`` (saved at the end of the training batch where Ctrl-C or SIGTERM
    stopped it), with the number of
    whole epochs it holds and the batches of the next epoch already trained; (None, 0, 0) if none."""
    found = [p for p in (Path(job_dir) / "checkpoints" / n for n in ("last.ckpt", INTERRUPTED_CKPT)) if p.is_file()]
    if not found:
        return None, 0, 0
    path = max(found, key=lambda p: p.stat().st_mtime_ns)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    # saved at the end of a training batch, that batch is processed but not yet counted completed
    batches = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"]
    if path.name != INTERRUPTED_CKPT or batches == 0:  # saved at the end of epoch ckpt["epoch"]
        return path, int(ckpt["epoch"]) + 1, 0
    return path, int(ckpt["epoch"]), int(batches)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"block": {"order": "pre"}}`` -> ``{"block.order": "pre"}``; lists become their text, an
    empty mapping None."""
    if isinstance(tree, dict):
        if not tree and prefix:
            return {prefix[:-1]: None}
        return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: str(tree) if isinstance(tree, list) else tree}


def config_changes(job_dir: Path, cfg: DictConfig) -> list[str]:
    """The keys (``key: saved -> new``) whose values differ from the job's saved config.yaml."""
    path = Path(job_dir) / CONFIG_FILE
    if not path.is_file():
        return []
    saved = flatten(OmegaConf.to_container(OmegaConf.load(path)))
    new = flatten(OmegaConf.to_container(cfg, resolve=True))
    return [
        f"{k}: {saved.get(k, '(unset)')} -> {new.get(k, '(unset)')}"
        for k in dict.fromkeys([*saved, *new])
        if not k.startswith(NOT_RECIPE) and saved.get(k) != new.get(k)
    ]


def wandb_epochs_recorded(job_dir: Path, run_id: str) -> set[float]:
    """The epochs that the job's earlier offline W&B files of run ``run_id`` hold. W&B writes its
    files from a helper process with buffering, so a job killed hard can lose its last epochs there
    even though metrics.csv has them."""
    from resnet_exp.wandb_files import read_run

    epochs: set[float] = set()
    for run_dir in Path(job_dir).glob(f"wandb/offline-run-*-{run_id}"):
        try:
            epochs |= {float(h["epoch"]) for h in read_run(run_dir).history if "epoch" in h}
        except (OSError, ValueError):  # a file cut short by the kill: what it holds is unknown
            continue
    return epochs


def read_metrics(job_dir: Path) -> list[dict[str, float]]:
    """metrics.csv as numbers, one dict per epoch."""
    path = Path(job_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


class JobMetrics(CSVLogger):
    """Lightning's CSVLogger writing ``metrics.csv`` straight into the job directory. Resuming after
    ``keep_epochs`` epochs, it keeps the rows of those epochs and drops any later ones (an epoch
    logged but not checkpointed before a kill is trained again, so it must not appear twice)."""

    def __init__(self, job_dir: Path, keep_epochs: int = 0) -> None:
        path = Path(job_dir) / "metrics.csv"
        header: list[str] = []
        kept: list[dict[str, str]] = []
        if keep_epochs and path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or [])
                kept = [row for row in reader if float(row["epoch"]) <= keep_epochs]
        super().__init__(save_dir=str(job_dir), name="", version="")
        writer = self.experiment  # opening it removes the old file
        if kept:
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=header)
                w.writeheader()
                w.writerows(kept)
            writer.metrics_keys = sorted(header)
