"""The entry point: ``python -m resnet_exp.run [-m] [KEY=VALUE ...]`` (or ``resnet-exp``).

Compose, check, hand over: Hydra composes conf/ onto the typed schema (``config/schema.py``); its callback
(``sweeps/callback.py``) checks every job before the first one starts; each job is handed to
``fit.train``. Bad input that the config alone shows (an unknown key, a wrong type or value, the
output directory) is refused before torch is imported: this module and those checks import only
Hydra, OmegaConf and the project's light modules; the data set's files and what only torch and
Lightning can judge are checked next, once the config is good, still before any job starts.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from resnet_exp.command_line import one_line_error, path_choice, with_hint
from resnet_exp.config import config_path
from resnet_exp.runs.console import CONSOLE_LOGGER, resume_hint, route_library_logs
from resnet_exp.runs.records import STATUS_FILE, JobBusy, describe

log = logging.getLogger(CONSOLE_LOGGER)


@hydra.main(version_base="1.3", config_path=config_path(), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one job (config validated by resnet_exp.sweeps.callback.SweepCallback before it starts). A job
    that fails or diverges is recorded in its status.json and the sweep goes on; the sweep's summary
    at the end names it and the command exits non-zero."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    log.info("job %s", job_dir)
    from resnet_exp.training.fit import train  # torch, Lightning: only now that the job is known to be good

    route_library_logs()  # after Hydra set up this job's logging and Lightning its loggers

    try:
        final = train(cfg, job_dir)
    except JobBusy as e:
        log.warning("%s", e)
        return None
    except Exception as e:
        log.error("%s: %s (details in %s)", job_dir, describe(e), job_dir / STATUS_FILE)
        return None
    return final.get("test/acc")


# Hydra's modes, of which a command line may give one: its flags, long and short.
MODES = {"--multirun": "-m", "--run": "-r", "--cfg": "-c", "--info": "-i", "--shell-completion": "-sc"}


def modes_given(argv: list[str]) -> list[str]:
    """The Hydra modes the command line asks for (each named by its long flag; argparse takes a
    long flag's unambiguous abbreviation too, --multi for --multirun)."""

    def asks(arg: str, long: str, short: str) -> bool:
        flag = arg.split("=", 1)[0]
        return arg == short or (flag.startswith("--") and len(flag) > 3 and long.startswith(flag))

    return [long for long, short in MODES.items() if any(asks(a, long, short) for a in argv)]


def cli() -> None:
    """``python -m resnet_exp.run``: Hydra's composition errors (unknown key, wrong type) as one line
    and exit status 2, before any work; HYDRA_FULL_ERROR=1 shows them with their traceback."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    path = path_choice(sys.argv[1:])  # before Hydra loads the file a group's choice names
    modes = modes_given(sys.argv[1:])
    if len(modes) > 1:  # Hydra refuses these with a ValueError and its traceback
        path = (
            f"{' and '.join(modes)} cannot be used together: choose one (--cfg job shows one run's config, without -m)"
        )
    if path:
        print(f"error: {path}", file=sys.stderr)
        sys.exit(2)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let the errors reach us instead of being printed
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        if full:
            raise
        message = with_hint(one_line_error(e), sys.argv[1:])
        if "submitit" in message and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
            message += "; the SLURM launcher is an extra: pip install -e '.[slurm]' in the clone"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the job under way saved where it stopped
        from resnet_exp.runs.slurm import StoppedWaiting  # standard library and Hydra only: no SLURM extra needed

        if isinstance(e, StoppedWaiting):  # the SLURM launcher stopped its waiting; the jobs go on, it says so
            print(e, file=sys.stderr)
            sys.exit(130)
        print(
            f"stopped ({e or 'interrupted'}); to resume: {resume_hint() or 'run the same command again'}",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    cli()
