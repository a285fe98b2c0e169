"""The command line's reading of the config: an override's key, Hydra's and OmegaConf's
composition errors as one line (a name that is not one of a part's choices said as the project
says it), the nearest real key or group for a mistyped one ("did you mean"), a group's choice that
is a path, and ``load_config`` for the commands that take overrides (bench, summary). Below the
commands and the sweep, above the config it reads.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf

from resnet_exp.config import CHOICE_NOUNS, Config, ConfigError, compose_config, config_groups, group_options, validate

# OmegaConf's refusal of a value that is not one of an enum field's names, and the key it names.
_NOT_A_CHOICE = re.compile(r"Invalid value '(?P<value>[^']*)', expected one of \[(?P<choices>[^\]]*)\]")
_FULL_KEY = re.compile(r"full_key: (?P<key>\S+)")


def not_a_choice(e: BaseException) -> str | None:
    """``block.order=postt is not a known ordering; choose one of: post, ...`` for OmegaConf's
    refusal of a name that is not one of the field's choices, anywhere in ``e``'s causes; else None."""
    while e is not None:
        text = str(e)
        found, key = _NOT_A_CHOICE.search(text), _FULL_KEY.search(text)
        if found and key:
            noun = CHOICE_NOUNS.get(key["key"], "valid")
            return f"{key['key']}={found['value']} is not {noun}; choose one of: {found['choices']}"
        e = e.__cause__
    return None


def one_line_error(e: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line: the message and its cause,
    without the bookkeeping lines (full_key, object_type, search path, the HYDRA_FULL_ERROR hint);
    a list under a line ending in ':' (the available options of a group) is joined with commas; a
    name that is not one of a field's choices as ``not_a_choice`` says it."""
    choice = not_a_choice(e)
    if choice is not None:
        return choice
    parts: list[str] = []
    while e is not None:
        for raw in str(e).splitlines():
            line = raw.strip()
            if line.startswith("Config search path"):
                break
            if not line or line.startswith(("full_key:", "reference_type=", "object_type=", "Set the environment")):
                continue
            if raw[:1].isspace() and parts and parts[-1].endswith((":", ",")):
                parts[-1] = f"{parts[-1]} {line},"
            elif line.rstrip(".") not in parts:
                parts.append(line.rstrip("."))
        e = e.__cause__
    return "; ".join(p.rstrip(",") for p in parts)


# Config groups that are not keys of the schema (their options are whole presets or Hydra's own).
GROUPS_WITHOUT_KEYS = ("experiment", "hydra/launcher")


def override_key(override: str) -> str:
    """The key of a command-line override: ``+optim.bogus=1`` -> ``optim.bogus``."""
    return override.split("=", 1)[0].lstrip("+~")


def known_names() -> list[str]:
    """Every key of the schema, dotted (``block.order``), with the names of its groups and the
    groups that set no key of their own: what a command line may name."""

    def dotted(tree: dict, prefix: str = "") -> list[str]:
        keys = []
        for key, value in tree.items():
            keys += dotted(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
        return keys

    keys = dotted(OmegaConf.to_container(OmegaConf.structured(Config)))
    return list(dict.fromkeys([*(k.split(".")[0] for k in keys), *keys, *GROUPS_WITHOUT_KEYS]))


def with_launcher(overrides: list[str]) -> DictConfig | None:
    """The config with its Hydra part, composed with the launcher the command line chose
    (``hydra/launcher=slurm``, or the default) and nothing else of it; None where that cannot be
    composed (a launcher choice that is itself wrong: Hydra's own error says so)."""
    try:
        return compose_config([o for o in overrides if override_key(o) == "hydra/launcher"], return_hydra_config=True)
    except Exception:
        return None


def launcher_keys(overrides: list[str]) -> tuple[str, list[str]]:
    """The launcher the command line chose and its keys, dotted (``hydra.launcher.partition``); no
    keys where that config cannot be composed."""
    cfg = with_launcher(overrides)
    if cfg is None:
        return "?", []
    launcher = cfg.hydra.launcher
    return cfg.hydra.runtime.choices["hydra/launcher"], [f"hydra.launcher.{k}" for k in launcher if k != "_target_"]


def neighbours(name: str, overrides: list[str] | tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """Where a mistyped ``name`` belongs and the names there: the keys of its group where it names a
    real group (``data.bogus``: the keys of data; ``hydra.launcher.partion``: the keys of the
    launcher the command line chose), else the top-level names."""
    if name.startswith("hydra.launcher."):
        launcher, keys = launcher_keys(list(overrides))
        return f"the keys of hydra/launcher={launcher}", keys
    known = known_names()
    group, _, _ = name.rpartition(".")
    if group and any(k.startswith(f"{group}.") for k in known):
        return f"the keys of {group}", [k for k in known if k.rpartition(".")[0] == group]
    if group:
        return "the keys", [k for k in known if "." in k]
    return "the groups and top-level keys", [k for k in known if "." not in k]


def nearest_name(name: str, overrides: list[str] | tuple[str, ...] = ()) -> str | None:
    """The config group or key nearest to a mistyped ``name`` (``optimizer`` -> ``optim``,
    ``blocks.order`` -> ``block.order``, ``trainer.max_epoch`` -> ``trainer.max_epochs``), or None
    where none is close."""
    import difflib

    _, candidates = neighbours(name, overrides)
    # within one group the spellings compared are the last parts (a long shared prefix, as
    # hydra.launcher's, would make every key look close)
    group, _, leaf = name.rpartition(".")
    if group and candidates and all(c.startswith(f"{group}.") for c in candidates):
        name, candidates, group = leaf, [c.rpartition(".")[2] for c in candidates], f"{group}."
    else:
        group = ""
    # a name that the other begins with (optimizer, optim), then the closest spelling
    stem = [c for c in candidates if min(len(c), len(name)) >= 4 and (name.startswith(c) or c.startswith(name))]
    found = stem or difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return f"{group}{found[0]}" if found else None


def with_hint(message: str, overrides: list[str]) -> str:
    """Hydra's "Could not override 'X'" for a key or group that does not exist, with the nearest
    real one in place of its advice to append the key with ``+`` (the project refuses unknown
    keys): ``Could not override 'optimizer': there is no such config group or key; did you mean
    optim=adamw?``; where none is near, the names there."""
    found = re.match(r"(?:ConfigCompositionException: )?Could not override '([^']+)'", message)
    if not found:
        return message
    name = found.group(1)
    near = nearest_name(name, overrides)
    value = next((o.split("=", 1)[1] for o in overrides if "=" in o and override_key(o) == name), None)
    if near is None:
        where, names = neighbours(name, overrides)
        listed = f"{where} are: {', '.join(names)}" if names else f"{where}: there are none"
        return f"Could not override '{name}': there is no such config group or key; {listed} (python -m resnet_exp.run --help)"
    if name.startswith(f"{near}.") and value is not None and adds_to_mapping(near, overrides):
        # a new key of a mapping (hydra.launcher.additional_parameters.hold): Hydra adds it with +
        return f"Could not override '{name}': {near} is a mapping; a key of its own is added with +: +{name}={value}"
    suggestion = f"{near}={value}" if value is not None else near
    return f"Could not override '{name}': there is no such config group or key; did you mean {suggestion}?"


def adds_to_mapping(key: str, overrides: list[str]) -> bool:
    """Whether ``key`` of the config (the Hydra part included, with the command line's launcher)
    is a mapping that takes keys of the user's own (hydra.launcher.additional_parameters)."""
    cfg = with_launcher(overrides)
    return cfg is not None and isinstance(OmegaConf.select(cfg, key), DictConfig)


def path_choice(overrides: list[str]) -> str | None:
    """The one-line error for a config group's choice that is a path (``experiment=../../tmp/x``,
    ``model=/tmp/x``): Hydra would load that file as the group's option. A choice is a name of the
    group's folder, or of the group's folder in a ``--config-dir`` the user gives; None where every
    choice is a name."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    groups = config_groups()
    for arg in overrides:
        key = override_key(arg)
        if arg.startswith("-") or "=" not in arg or key not in groups and "/" not in key:
            continue
        try:
            (o,) = OverridesParser.create().parse_overrides([arg])
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        except HydraException:  # malformed: Hydra's own message says how
            continue
        for value in values:
            if value.startswith(("/", "~")) or ".." in value.replace("\\", "/").split("/"):
                return (
                    f"{key}={value} is a path, not a choice of {key}; choose one of: {', '.join(group_options(key))} "
                    f"(a preset of your own: --config-dir DIR, with DIR/{key}/NAME.yaml, then {key}=NAME)"
                )
    return None


def load_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``compose_config`` then ``validate``, for the project's other commands: any bad override,
    unknown key, wrong type or invalid value raises ConfigError with one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = compose_config(overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(one_line_error(e)) from None
    validate(cfg)
    return cfg


def described(doc: str) -> str:
    """A command's --help description from its module docstring: the first paragraph as one line,
    without the usage it opens with (argparse prints the usage itself)."""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return re.sub(r"^``python -m [^`]*``:\s*", "", first)
