"""The config composed outside a Hydra run, for the project's tools and tests: where ``conf/`` is,
Hydra initialised on it, the composed config, the config groups and their options.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig


def config_groups() -> list[str]:
    """The config groups of conf/ (``model``, ``experiment``, ``hydra/launcher``, ...), from its folders."""
    import importlib.resources

    path = config_path()
    root = importlib.resources.files(path.removeprefix("pkg://")) if path.startswith("pkg://") else Path(path)
    groups = []
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.startswith(("_", ".")):
            groups += (
                [f"{entry.name}/{sub.name}" for sub in entry.iterdir() if sub.is_dir()]
                if entry.name == "hydra"
                else [entry.name]
            )
    return sorted(groups)


def group_options(group: str) -> list[str]:
    """The options Hydra has for config group ``group`` (conf/'s and the plugins')."""
    from hydra.core.global_hydra import GlobalHydra

    with hydra_initialized():
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


@contextlib.contextmanager
def hydra_initialized() -> Iterator[None]:
    """Hydra initialised with conf/ for the project's tools and checks outside a Hydra run (as it
    already is, inside one)."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    path = config_path()
    init = (
        initialize_config_module(path.removeprefix("pkg://"), version_base="1.3")
        if path.startswith("pkg://")
        else initialize_config_dir(path, version_base="1.3")
    )
    with init:
        yield


def compose_config(overrides: list[str] | tuple[str, ...] = (), return_hydra_config: bool = False) -> DictConfig:
    """The composed config for ``overrides``, outside a Hydra run (for tools and tests)."""
    from hydra import compose

    with hydra_initialized():
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def config_path() -> str:
    """Where Hydra finds conf/: the installed package ``resnet_exp.conf`` (pyproject maps the
    repository's conf/ there), else the conf/ beside the package in a source checkout."""
    if importlib.util.find_spec("resnet_exp.conf") is not None:
        return "pkg://resnet_exp.conf"
    return str(Path(__file__).resolve().parents[2] / "conf")
