"""A job directory's records, read and written without torch: ``status.json``, ``config.yaml``,
``metrics.csv`` and what their keys mean. The commands that only read or check them (the sweep's
checks, the report) need nothing heavier; ``job.py`` adds the job's life on top.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

STATUS_FILE = "status.json"
# A sweep directory's own record (sweeps/callback.py writes it): its W&B group, swept keys, job count, command.
SWEEP_FILE = "sweep.yaml"
# A sequential sweep's design and each round's decisions (sequential.py writes it).
SEQUENTIAL_FILE = "sequential.yaml"
METRICS_FILE = "metrics.csv"
# A job that ended so is not run again when its sweep is: it would end the same way.
FINISHED = ("completed", "diverged")
CONFIG_FILE = "config.yaml"
# The rest of a job directory (the job's run.log is named by conf/hydra/job_logging): signal
# propagation per unit (diagnostics.py), the training loss within epochs where asked for
# (curve.py), the job's lock and its checkpoints (job.py).
SIGNAL_FILE = "signal.csv"
CURVE_FILE = "train_curve.csv"  # the training loss within epochs (curve.py, +callbacks=training_curve)
LOCK_FILE = ".lock"
CHECKPOINTS = "checkpoints"
LAST_CKPT, INTERRUPTED_CKPT, BEST_CKPT = "last.ckpt", "interrupted.ckpt", "best.ckpt"
RUN_LOG = "run.log"  # conf/hydra/job_logging names the log after the job: python -m resnet_exp.run
# A job's records, without its checkpoints and W&B files: what a report reads and a copy keeps.
RECORDS = (CONFIG_FILE, METRICS_FILE, STATUS_FILE, SIGNAL_FILE, CURVE_FILE)
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
    # the project's callbacks watch and measure (config/schema.PROJECT_CALLBACKS): turned off or
    # tuned, what a job computes does not change (a loss that turns NaN ends `diverged` either way)
    "callbacks.divergence_guard",
    "callbacks.signal_propagation",
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
    """status.json as a dict ({} where there is none). A record that says ``running`` for a process
    of this host that is gone (killed, or the machine restarted: nothing could record it) reads
    ``stopped``, with what is known."""
    path = Path(job_dir) / STATUS_FILE
    try:
        status = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {"status": "unknown", "error": f"{path} cannot be read"}
    if status.get("status") == "running" and status.get("host") == socket.gethostname() and _gone(status.get("pid")):
        status = {
            **status,
            "status": "stopped",
            "error": f"process {status['pid']} is gone without a record (killed, or the machine restarted); resume it",
        }
    return status


def _gone(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, TypeError, ValueError):
        return False  # alive under another user, or no pid recorded: not known to be gone
    return False


def write_status(job_dir: Path, **status: Any) -> None:
    """Replace status.json atomically (a kill leaves the old or the new file, never half of one).
    On a full disk, where no new file can be written, the record is written over the old one in the
    space that file already holds (without its traceback if it would not fit): a job that fails
    because the disk is full says so, instead of staying ``running`` with a dead process."""
    path = Path(job_dir) / STATUS_FILE
    text = json.dumps(status, indent=2) + "\n"
    try:
        atomic_write(path, text)
    except OSError as e:
        if e.errno not in FULL or not path.is_file():
            raise
        short = json.dumps({k: v for k, v in status.items() if k != "traceback"}, indent=2) + "\n"
        for attempt in (text, short):
            try:
                _overwrite(path, attempt)
                return
            except OSError as again:
                if again.errno not in FULL:
                    raise
        raise


# The errors of a full disk or an exhausted quota.
FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Write ``path`` whole or not at all: the block writes ``NAME.tmp`` beside it (the path it is
    given); then that is flushed to the disk and moved over ``path`` in one step, and the move itself
    flushed. A kill or a full disk leaves the last good file; where the block fails, the half-written
    copy is removed (a full disk is left no fuller). Every record and checkpoint of a job is written
    through here (``atomic_write``, ``job.AtomicCheckpointIO``)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # on the disk before it takes the place of the last good one
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sync_dir(path.parent)


def atomic_write(path: Path, data: str | bytes) -> None:
    """``path`` holds ``data``, written whole or not at all (``replacing``)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def write_csv(path: Path, fieldnames: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """A CSV file with a header and ``rows``, written whole or not at all (``atomic_write``)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(fieldnames))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, text.getvalue())


def append_csv(path: Path, fieldnames: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """``rows`` added to the end of a CSV file (its header first where the file is new), flushed to
    the disk: a record that grows during a job (signal.csv, train_curve.csv). A kill while appending
    can leave the last row cut short; its readers keep whole rows only."""
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames))
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def sync_dir(folder: Path) -> None:
    """Flush a folder's entries (a file moved into it) to the disk, where the system allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _overwrite(path: Path, text: str) -> None:
    """Write ``text`` over ``path``'s bytes in place (no new file, so no new space where it fits in
    what the file holds): the last resort of a full disk."""
    with open(path, "r+b") as f:
        f.write(text.encode())
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"block": {"order": "pre"}}`` -> ``{"block.order": "pre"}``; lists become their text, an
    empty mapping None."""
    if isinstance(tree, dict):
        if not tree and prefix:
            return {prefix[:-1]: None}
        return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: str(tree) if isinstance(tree, list) else tree}


def read_metrics(job_dir: Path) -> list[dict[str, float]]:
    """metrics.csv as numbers, one dict per epoch."""
    path = Path(job_dir) / METRICS_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def read_sweep(sweep_dir: Path) -> dict[str, Any] | None:
    """The sweep.yaml of ``sweep_dir`` as a dict, or None where there is none."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path))


def read_sequential(sweep_dir: Path) -> dict[str, Any] | None:
    """A sequential sweep's design and decisions (``sweeps/sequential.py`` writes them), or None."""
    path = Path(sweep_dir) / SEQUENTIAL_FILE
    if not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path))


def sweep_group(sweep_dir: Path) -> str:
    """The sweep's W&B group: the directory's name and a random id, made once and kept in
    sweep.yaml, so that it is unique to this sweep and the same when the sweep is resumed. Made
    with an exclusive create: of two copies of a sweep started at once, the first one's wins."""
    info = read_sweep(sweep_dir)
    if info and info.get("group"):
        return info["group"]
    tmp = sweep_dir / f".{SWEEP_FILE}.{os.getpid()}"
    OmegaConf.save(OmegaConf.create({"group": f"{sweep_dir.name}-{secrets.token_hex(4)}"}), tmp)
    try:
        os.link(tmp, sweep_dir / SWEEP_FILE)  # fails where the file exists
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return read_sweep(sweep_dir)["group"]


def set_aside(path: Path) -> Path:
    """Rename a damaged record or mirror to ``NAME.damaged`` (``NAME.damaged-2``, ... if taken), so
    that nothing reads it again and nothing of it is lost; returns the new path."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.damaged")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{n}")
    path.rename(aside)
    return aside
