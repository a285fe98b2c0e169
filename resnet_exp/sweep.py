"""What a sweep knows about itself, checked and written before any job starts.

``SweepCallback`` is a Hydra callback (``hydra.callbacks.sweep`` in conf/config.yaml). Before a
single run or a multirun does any work it composes every job's config and validates it, so a bad
value stops the whole sweep at once with a one-line error. For a multirun it then writes
``sweep.yaml`` into the sweep directory: the W&B group shared by its jobs, the swept keys (each
job's W&B run is named after its values of them), the job count and the command.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from hydra import compose
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from resnet_exp.config import ConfigError, validate

SWEEP_FILE = "sweep.yaml"


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with status 2, before anything is written."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def swept_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose values differ between the jobs, in the order they first appear."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            values.setdefault(_key(override), set()).add(override.split("=", 1)[-1])
    return [key for key, seen in values.items() if len(seen) > 1]


class SweepCallback(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate(config)
        except ConfigError as e:
            fail(str(e))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # As Hydra's basic sweeper does: hydra.sweeper.params (an experiment preset's sweep) first,
        # then the command line's overrides, which win where both name a key.
        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        for job in jobs:
            try:
                validate(compose(config_name=config.hydra.job.config_name, overrides=list(job)))
            except ConfigError as e:
                fail(f"{e} (in job {' '.join(job)})" if len(jobs) > 1 else str(e))
        sweep_dir = Path(config.hydra.sweep.dir)
        info = read_sweep(sweep_dir) or {"group": f"sweep-{sweep_dir.name}"}
        info.update(
            swept=swept_keys(jobs),
            jobs=len(jobs),
            command=" ".join(["python -m resnet_exp.run", *map(shlex.quote, sys.argv[1:])]),
        )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(info), sweep_dir / SWEEP_FILE)


def read_sweep(sweep_dir: Path) -> dict[str, Any] | None:
    """The sweep.yaml of ``sweep_dir`` as a dict, or None where there is none."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path))


def job_identity(overrides: list[str], sweep_dir: Path | None) -> tuple[str, str | None]:
    """A job's W&B run name and group. In a sweep: named after its values of the swept keys
    (``block.order=pre,seed=1``) in the sweep's group; alone: named after all its overrides."""
    if sweep_dir is None:
        return ",".join(overrides) or "default", None
    info = read_sweep(sweep_dir) or {"group": f"sweep-{Path(sweep_dir).name}", "swept": []}
    swept = set(info["swept"])
    name = ",".join(o for o in overrides if _key(o) in swept)
    return name or ",".join(overrides) or "default", info["group"]
