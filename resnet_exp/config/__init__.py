"""The config, one concern a module: the choices each part offers (``choices``), the typed schema
(``schema``), the checks no type can express (``checks``), the resolvers and the schema's
registration (``resolvers``), and the config composed outside a Hydra run (``compose``). A low
floor: it imports no torch and no Lightning (and of the package only the data sets' face), so bad
input is refused in the time Hydra and OmegaConf take to load, before torch is imported at all.

Hydra merges ``conf/`` onto the ``Config`` schema, so a mistyped key, a value of the wrong type or
a name that is not one of a part's choices fails at composition; ``validate`` checks the rest and
raises ``ConfigError`` with one line that names the bad value and the valid choices. The
components take their choices from here (``blocks.py`` implements exactly ``ORDERINGS``, ...; the
data wing's face holds its own, ``PIPELINES``), so each rule is written once. How the command line
words a refused override, and its "did you mean", is ``resnet_exp.command_line``'s.
"""

from resnet_exp.config.checks import (
    ConfigError,
    bytes_text,
    final_norm_ok,
    machine_memory,
    processes,
    unknown_key,
    validate,
    validate_numbers,
    validate_trainer,
)
from resnet_exp.config.choices import (
    ACCELERATORS,
    CHOICE_NOUNS,
    COMPILE_MODES,
    FINAL_NORMS,
    LOSS_REDUCTIONS,
    ORDERINGS,
    PRECISIONS,
    PROJECTION_INPUTS,
    SHORTCUTS,
    STEMS,
    WANDB_MODES,
)
from resnet_exp.config.compose import compose_config, config_groups, config_path, group_options, hydra_initialized
from resnet_exp.config.resolvers import register, run_id
from resnet_exp.config.schema import (
    FIRST_DEFAULTS,
    MANAGED_TRAINER_ARGS,
    PRECISE_BN_BATCHES,
    BlockConfig,
    Config,
    DataConfig,
    DiagnosticsConfig,
    EvaluationConfig,
    LoggerConfig,
    LossConfig,
    ModelConfig,
    TrainerConfig,
    WandbConfig,
)

# At import, not on a call: Hydra's launchers start job processes (joblib, submitit) that import
# the task's module and compose or resolve configs there; the schema and the run_id resolver must
# exist in every process that imports the project. Registering is idempotent and touches nothing
# but Hydra's config store and OmegaConf's resolvers.
register()

__all__ = [
    "ACCELERATORS", "CHOICE_NOUNS", "COMPILE_MODES", "FINAL_NORMS", "FIRST_DEFAULTS", "LOSS_REDUCTIONS",
    "MANAGED_TRAINER_ARGS", "ORDERINGS", "PRECISE_BN_BATCHES", "PRECISIONS", "PROJECTION_INPUTS", "SHORTCUTS",
    "STEMS", "WANDB_MODES", "BlockConfig", "Config", "ConfigError", "DataConfig", "DiagnosticsConfig",
    "EvaluationConfig", "LoggerConfig", "LossConfig", "ModelConfig", "TrainerConfig", "WandbConfig", "bytes_text",
    "compose_config", "config_groups", "config_path", "final_norm_ok", "group_options", "hydra_initialized",
    "machine_memory", "processes", "register", "run_id", "unknown_key", "validate", "validate_numbers",
    "validate_trainer",
]  # fmt: skip
