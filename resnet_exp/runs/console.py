"""What a job shows on the console and what goes into its log.

The console gets the job's directory, the progress bar (on a terminal), one seed-style line per
epoch and problems (warnings and errors); the job's ``run.log`` gets all of that and everything
else the libraries say (Lightning's set-up messages, W&B's run, Python warnings), without terminal
control codes. Hydra sets up both handlers for every job from ``conf/hydra/job_logging/project.yaml``,
which names the two classes below; ``route_library_logs`` makes Lightning's and Python's messages
reach them.

Loggers: ``resnet_exp`` for what the console shows (INFO and up), ``resnet_exp.details`` for what
only the log keeps.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

CONSOLE_LOGGER = "resnet_exp"
DETAILS_LOGGER = "resnet_exp.details"
# Lightning's and Fabric's loggers print to the console themselves unless told to propagate.
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


def python_command(cwd: Path | None = None) -> str:
    """The interpreter as a printed command should name it, so that the command runs as printed:
    ``python`` where that is this interpreter on the PATH, else this interpreter's path, relative
    to ``cwd`` (default: the current directory) where it lies below it (``.venv/bin/python``)."""
    exe = Path(sys.executable).absolute()
    on_path = shutil.which("python")
    if on_path and Path(on_path).absolute() == exe:
        return "python"
    base = (cwd or Path.cwd()).absolute()
    return str(exe.relative_to(base)) if exe.is_relative_to(base) else os.fspath(exe)


def resume_command(directory_key: str, directory: Path) -> str:
    """This command line, with the run's or sweep's directory made explicit: what resumes it. The
    sweep's callback prints it at the start; ``resume_hint`` gives it from then on in this process
    (a Ctrl-C comes back to the command line outside of Hydra, where no config is at hand)."""
    args = [a for a in sys.argv[1:] if not a.startswith(f"{directory_key}=")]
    command = " ".join(
        [
            f"{shlex.quote(python_command())} -m resnet_exp.run",
            *map(shlex.quote, args),
            shlex.quote(f"{directory_key}={directory}"),
        ]  # fmt: skip
    )
    _RESUME["command"] = command
    return command


_RESUME: dict[str, str] = {}


def resume_hint() -> str | None:
    """The command that resumes the run or sweep this process started, once it is known."""
    return _RESUME.get("command")


class ConsoleFilter(logging.Filter):
    """The project's own lines (logger ``resnet_exp``, INFO and up) and problems from anywhere
    (WARNING and up), but not Python warnings, which are the libraries' notes to developers (they
    go to the job's log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings":
            return False
        if record.name == CONSOLE_LOGGER:
            return record.levelno >= logging.INFO
        return record.levelno >= logging.WARNING


class ConsoleHandler(logging.StreamHandler):
    """Writes to stdout through tqdm, so that a line printed under a progress bar does not break it;
    INFO lines as they are, problems as ``warning: ...`` / ``error: ...``."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        return message

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:
            self.handleError(record)


def route_library_logs() -> None:
    """Send Lightning's messages and Python's warnings through the root logger (Hydra's handlers:
    the console filter and the job's log), and drop the warnings that say nothing to a user."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # the console handler Lightning adds itself
                logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)
    # A library's log file that cannot be written (W&B's debug.log on a full disk) must not print
    # "--- Logging error ---" and a traceback on the console: the job's own record says what failed.
    # Python's documented switch for it; it silences only failures of the logging itself.
    logging.raiseExceptions = False
    # A deprecation inside Lightning's own code, printed once per job.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # The job directory holds Hydra's files when a logger opens it, and metrics are logged once per
    # epoch by design, so these two Lightning warnings say nothing useful here.
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging")
    # In a run on several processes the logged metrics are torchmetrics' results, gathered over the
    # processes already; Lightning's advice to reduce them once more does not apply.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(.*sync_dist=True\)`")


def console_is_terminal() -> bool:
    """Whether the console is a terminal, where a progress bar can redraw itself; redirected to a
    file or a pipe it would leave fragments and escape codes between the lines."""
    return sys.stdout.isatty()


def progress_bar() -> Any:
    """Lightning's progress bar, counting epochs from 1 as the epoch lines, metrics.csv and W&B do
    (Lightning's own says ``Epoch 0`` for the first), without the W&B run id among the metrics."""
    from pytorch_lightning.callbacks import TQDMProgressBar  # here: this module stays light

    class EpochProgressBar(TQDMProgressBar):
        def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
            super().on_train_epoch_start(trainer, *args)
            self.train_progress_bar.set_description(f"epoch {trainer.current_epoch + 1}")

        def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
            metrics = super().get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)
            return metrics

    return EpochProgressBar()


def remaining(seconds: float) -> str:
    """A duration as a person says it: ``40 s``, ``12 min``, ``2.3 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
