"""The config's resolvers and its registration: ``${run_id:}`` (a name unique to the process, for
run and sweep folders), ``${data_channels:NAME}`` and ``${data_classes:NAME}`` (a data set's image
channels and classes: model.in_channels and model.num_classes), and the schema
stored in Hydra's ConfigStore as ``config_schema``.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from resnet_exp.config.schema import Config
from resnet_exp.data import data_set


def run_id() -> str:
    """A name unique to this process: its start time plus a random suffix (two sweeps started in
    the same second get different directories). The same value for every call in one process."""
    global _RUN_ID
    if _RUN_ID is None:
        _RUN_ID = f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(3)}"
    return _RUN_ID


_RUN_ID: str | None = None


def register() -> None:
    """Register the schema and the ``run_id``, ``data_channels`` and ``data_classes`` resolvers (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", run_id, use_cache=True)
    if not OmegaConf.has_resolver("data_channels"):  # model.in_channels: the data set's
        OmegaConf.register_new_resolver("data_channels", lambda name: data_set(name).channels)
    if not OmegaConf.has_resolver("data_classes"):  # model.num_classes: the data set's
        OmegaConf.register_new_resolver("data_classes", lambda name: len(data_set(name).classes))
