"""Read W&B's offline run files (``wandb/offline-run-*/run-*.wandb``) back into Python.

A ``.wandb`` file is a LevelDB-style log of ``wandb_internal_pb2.Record`` protobuf messages: a
7-byte file header (``:W&B``, magic 0xBEE1, version), then 32 KiB blocks of records, each with a
7-byte header (CRC32C, length, type: full, first, middle, last). This is what W&B would upload on
``wandb sync``, so reading it shows exactly what W&B received.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
HEADER = struct.Struct("<IHB")  # checksum, data length, record type
FILE_HEADER = struct.Struct("<4sHB")  # ident, magic, version
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> Iterator[pb.Record]:
    """Every record of a ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    ident, magic, _ = FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path}: not a W&B run file (header {ident!r}, magic {magic:#x})")
    pos, parts = FILE_HEADER.size, []
    while pos + HEADER.size <= len(data):
        if BLOCK - pos % BLOCK < HEADER.size:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        if kind == 0:  # zero padding at the end of the file
            break
        parts.append(data[pos : pos + length])
        pos += length
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def _items(items: Any) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


@dataclass
class OfflineRun:
    """What one offline run told W&B."""

    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int | None = None


def read_run(path: str | Path) -> OfflineRun:
    """An ``OfflineRun`` from a ``run-*.wandb`` file or the ``offline-run-*`` folder holding it."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if not files:
            raise FileNotFoundError(f"{path}: no run-*.wandb file")
        path = files[0]
    run = OfflineRun(path)
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.name, run.group = r.run.run_id, r.run.display_name, r.run.run_group
            run.tags, run.notes = list(r.run.tags), r.run.notes
            run.config.update(_items(r.run.config.update))
        elif kind == "config":
            run.config.update(_items(r.config.update))
        elif kind == "history":
            run.history.append(_items(r.history.item))
        elif kind == "summary":
            run.summary.update(_items(r.summary.update))
        elif kind == "metric":
            m = r.metric
            run.metrics[m.name or m.glob_name] = {
                "step_metric": m.step_metric,
                "summary": sorted(f.name for f, on in m.summary.ListFields() if on),
            }
        elif kind == "exit":
            run.exit_code = r.exit.exit_code
    return run
