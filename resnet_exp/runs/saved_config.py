"""A job's saved config against the one it is asked to run with: the digest recorded before the
file is written, whether the file was edited since its checkpoints were trained, what a job saved
before a key existed ran with (the key's first default), and the resume plan that keeps a job's
saved values where only a default changed since it started."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from resnet_exp.command_line import override_key
from resnet_exp.runs.records import (
    BEST_CKPT,
    CHECKPOINTS,
    CONFIG_FILE,
    INTERRUPTED_CKPT,
    LAST_CKPT,
    NOT_RECIPE,
    JobError,
    describe,
    flatten,
    read_status,
)


@dataclass
class Resume:
    """How a job directory's saved config meets the config composed for it now (``resume_plan``)."""

    # keys whose value changed since the job ran only because a default changed (the command line
    # does not set them): key -> the value the job ran with, which it keeps
    kept: dict[str, Any] = field(default_factory=dict)
    # keys the command line sets to another value than the job ran with: "key: saved -> new"
    conflicts: list[str] = field(default_factory=list)

    def note(self, new: dict[str, Any]) -> str:
        """``loss.reduction=mean (the default now: batch_size), ...`` for the job's log."""
        return ", ".join(f"{k}={_text(v)} (the default now: {_text(new.get(k, _UNSET))})" for k, v in self.kept.items())


_UNSET = "(unset)"


def _text(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def explicit(key: str, overrides: list[str]) -> bool:
    """Whether the command line's ``overrides`` set ``key``: by name, or by choosing its config group
    (``optim=adamw`` sets every ``optim.*`` key)."""
    names = {override_key(o) for o in overrides}
    return any(key == name or key.startswith(f"{name}.") for name in names)


def resume_plan(job_dir: Path, cfg: DictConfig, overrides: list[str] | None = None) -> Resume:
    """Compare a job's saved config.yaml with ``cfg``, the config composed for it now from the
    command line's ``overrides``. A key that differs because the project's default changed (the
    overrides do not set it) keeps the value the job ran with: a changed default never changes a
    job already started. A key the overrides set to another value is a conflict (the caller refuses
    it unless forced). A key the job's saved config lacks (the project gained it later) counts at
    the value jobs had before the key existed (``config.FIRST_DEFAULTS``, else its default). With
    ``overrides`` None every difference is a conflict. Keys of ``NOT_RECIPE`` may differ freely;
    the ``hydra`` node of a run's config is not part of the job's. A saved config that cannot be
    read raises JobError; no saved config: nothing to compare."""
    path = Path(job_dir) / CONFIG_FILE
    plan = Resume()
    if not path.is_file():
        return plan
    try:
        saved = saved_keys(OmegaConf.to_container(OmegaConf.load(path)))
    except Exception as e:  # YAML or OmegaConf: a file edited by hand, cut short
        raise JobError(
            f"{path} cannot be read ({describe(e)}); restore it, or delete {job_dir} to train anew"
        ) from None
    if not isinstance(saved, dict) or not saved:
        raise JobError(f"{path} holds no config; restore it, or delete {job_dir} to train anew")
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if "hydra" not in cfg else job_config(cfg)
    new = flatten(tree)
    implied = implied_defaults()
    for k in dict.fromkeys([*saved, *new]):
        if k.startswith(NOT_RECIPE):
            continue
        before = saved[k] if k in saved else implied.get(k, _UNSET)
        if before == new.get(k, _UNSET):
            continue
        if overrides is None or explicit(k, overrides) or k not in new or before is _UNSET:
            plan.conflicts.append(f"{k}: {saved.get(k, _UNSET)} -> {new.get(k, _UNSET)}")
        else:
            plan.kept[k] = before
    return plan


def keep_saved(cfg: DictConfig, plan: Resume, job_dir: Path) -> None:
    """Set ``cfg``'s keys that ``plan`` keeps to the values the job ran with, in place: from its
    saved config.yaml (lists and mappings as they were), or the value the job had before the key
    existed."""
    saved = OmegaConf.load(Path(job_dir) / CONFIG_FILE)
    for key, value in plan.kept.items():
        found = OmegaConf.select(saved, key, default=_UNSET)
        OmegaConf.update(cfg, key, value if found is _UNSET else found, merge=False, force_add=True)


def config_digest(text: str | bytes) -> str:
    """The digest of a config.yaml's bytes that its job records beside it (status.json's
    ``config_sha256``), before it writes the file."""
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def trained_config(job_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The config a job's newest readable checkpoint was trained with (the LightningModule's one
    hyperparameter), flattened, and that checkpoint; None where the job has none readable. Reads
    the checkpoint memory-mapped: its tensors stay on disk (imports torch)."""
    folder = Path(job_dir) / CHECKPOINTS
    found = [folder / n for n in (LAST_CKPT, INTERRUPTED_CKPT, BEST_CKPT) if (folder / n).is_file()]
    import torch

    for path in sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            return path, flatten(checkpoint["hyper_parameters"]["config"])
        except Exception:  # cut short or not a checkpoint of this project: the next one
            continue
    return None


def config_edited(job_dir: Path) -> str | None:
    """Why ``job_dir``'s config.yaml is not the config the job trained with, in one line, or None.
    A job records the digest of the config.yaml it writes (``config_digest``, in status.json); a
    file that no longer matches was changed by something else, by hand say. The keys it changed
    are named from the newest checkpoint's config where one can be read (the file agreeing with
    it: trustworthy after all). A job recorded before digests were: nothing to tell."""
    job_dir = Path(job_dir)
    path = job_dir / CONFIG_FILE
    recorded = read_status(job_dir).get("config_sha256")
    if not recorded or not path.is_file() or config_digest(path.read_bytes()) == recorded:
        return None
    fix = f"restore it, or delete {job_dir} to train the job anew"
    trained = trained_config(job_dir)
    if trained is None:
        return f"{path} was changed after its job wrote it (its digest differs from the one in status.json); {fix}"
    ckpt, config = trained
    try:
        saved = flatten(OmegaConf.to_container(OmegaConf.load(path)))
    except Exception as e:  # YAML or OmegaConf: a file edited by hand, cut short
        return f"{path} was changed after its job wrote it and cannot be read ({describe(e)}); {fix}"
    changed = [
        f"{k} is {_text(saved.get(k, _UNSET))} there but the job trained with {_text(config.get(k, _UNSET))}"
        for k in dict.fromkeys([*config, *saved])
        if not k.startswith(NOT_RECIPE) and saved.get(k, _UNSET) != config.get(k, _UNSET)
    ]
    if not changed:
        return None
    return f"{path} was changed after its job wrote it: {'; '.join(changed)} ({ckpt.relative_to(job_dir)}); {fix}"


@functools.cache
def schema_defaults() -> dict[str, Any]:
    """Every key of the config schema with its default, flattened (``loss.reduction: batch_size``);
    built once a process (the schema does not change in one), read by every job a report reads, so
    not to be changed by its callers."""
    from resnet_exp.config import Config

    return flatten(OmegaConf.to_container(OmegaConf.structured(Config), enum_to_str=True))


def saved_keys(tree: Any) -> dict[str, Any]:
    """A saved config flattened (``records.flatten``), except that an empty mapping whose place
    the schema has filled with entries since gives no key (``callbacks: {}``, saved before the
    project's own callbacks were entries of it): its entries then count at the values jobs had
    before they existed (``implied_defaults``), as every key a job's saved config lacks does."""
    defaults = schema_defaults()

    def prune(node: Any, prefix: str) -> Any:
        if not isinstance(node, dict):
            return node
        return {
            k: prune(v, f"{prefix}{k}.")
            for k, v in node.items()
            if not (isinstance(v, dict) and not v and any(d.startswith(f"{prefix}{k}.") for d in defaults))
        }

    return flatten(prune(tree, ""))


def implied_defaults() -> dict[str, Any]:
    """What a job whose saved config lacks a key ran with: the key's first default where it changed
    since (``config.FIRST_DEFAULTS``: a job saved before ``loss.reduction`` existed took full
    steps), else its default."""
    from resnet_exp.config import FIRST_DEFAULTS

    return {**schema_defaults(), **FIRST_DEFAULTS}


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """A job's resolved config, without Hydra's own node (a run's config carries it)."""
    tree = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    tree.pop("hydra", None)
    return OmegaConf.to_container(OmegaConf.create(tree), resolve=True)
