"""The config's typed schema: one dataclass per part, registered in Hydra's ConfigStore
(``resolvers.register``) so that Hydra merges ``conf/`` onto it: a mistyped key, a value of the
wrong type or a name that is not one of a part's choices (``choices.py``'s enums) fails when the
config is composed. What a type cannot say is ``checks.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from resnet_exp.config.choices import (
    Augment,
    LossReduction,
    Ordering,
    Pipeline,
    ProjectionInput,
    Shortcut,
    Stem,
    WandbMode,
)


@dataclass
class BlockConfig:
    order: Ordering = Ordering.post
    shortcut: Shortcut = Shortcut.projection
    projection_input: ProjectionInput = ProjectionInput.relu


@dataclass
class ModelConfig:
    stem_channels: int = 32
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_classes: int = "${data_classes:${data.name}}"  # the data set's (resnet_exp.data.DATA_SETS)
    in_channels: int = "${data_channels:${data.name}}"  # the data set's
    final_norm: Any = False
    stem: Stem = Stem.seed


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # a data set of resnet_exp.data.DATA_SETS (config group data=NAME)
    root: Optional[str] = None  # where its files are (conf/data/NAME.yaml says what is looked for)
    cache_dir: str = "~/.cache/resnet-exp"  # where a download goes
    download: bool = True
    resize: Optional[int] = 96  # null: the data set's own size, not resized
    batch_size: int = 256
    num_workers: int = 2  # loader processes of the torchvision pipeline
    # device: the data set resized once, on the training device, batches gathered there (auto: the
    # default); torchvision: a DataLoader with per-image transforms in worker processes (the reference)
    pipeline: Pipeline = Pipeline.auto
    # training images held out as a validation split (the same ones for every seed), evaluated every
    # epoch beside the test set; best.ckpt and "best" are then chosen on it. 0: the seed's recipe
    val_size: int = 0
    # each batch less the data set's per-channel mean, over its std (its spec's); the seed: none
    normalize: bool = False
    # the training batches' augmentation: none (the seed's), crop_flip (He et al.'s pad-4 crop, flip)
    augment: Augment = Augment.none


@dataclass
class WandbConfig:
    mode: WandbMode = WandbMode.offline
    project: str = "resnet-exp"
    entity: Optional[str] = None


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    # Loggers beside metrics.csv and W&B, by name, each a ``_target_`` config that Hydra
    # instantiates (a Lightning Logger): logger=tensorboard adds one (conf/logger/).
    others: dict[str, Any] = field(default_factory=dict)


# Lightning's Trainer arguments that the project sets itself; every other one is a key under
# `trainer.` (use_distributed_sampler: the data module shards the data per process itself).
MANAGED_TRAINER_ARGS = (
    "logger",
    "callbacks",
    "plugins",
    "default_root_dir",
    "model_registry",
    "use_distributed_sampler",
)


@dataclass
class TrainerConfig:
    """Every argument of Lightning's ``Trainer`` (pytorch-lightning 2.6) but the managed ones, with
    Lightning's defaults; written out rather than read from Lightning, so that composing a config
    needs no Lightning import (a test holds it to the installed Trainer's signature)."""

    accelerator: Any = "auto"
    strategy: Any = "auto"
    devices: Any = "auto"
    num_nodes: Any = 1
    precision: Any = None
    fast_dev_run: Any = False
    max_epochs: Any = None
    min_epochs: Any = None
    max_steps: Any = -1
    min_steps: Any = None
    max_time: Any = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    limit_predict_batches: Any = None
    overfit_batches: Any = 0.0
    val_check_interval: Any = None
    check_val_every_n_epoch: Any = 1
    num_sanity_val_steps: Any = None
    log_every_n_steps: Any = None
    enable_checkpointing: Any = None
    enable_progress_bar: Any = None
    enable_model_summary: Any = None
    accumulate_grad_batches: Any = 1
    gradient_clip_val: Any = None
    gradient_clip_algorithm: Any = None
    deterministic: Any = None
    benchmark: Any = None
    inference_mode: Any = True
    profiler: Any = None
    detect_anomaly: Any = False
    barebones: Any = False
    sync_batchnorm: Any = False
    reload_dataloaders_every_n_epochs: Any = 0
    enable_autolog_hparams: Any = True


# Precise BN's default: 40 batches of 256 (17% of an epoch's images, about 5% of its time), the number
# experiments/seed_gap ran.
PRECISE_BN_BATCHES = 40


@dataclass
class LossConfig:
    reduction: LossReduction = LossReduction.batch_size


@dataclass
class EvaluationConfig:
    # BatchNorm statistics recomputed over this many training batches before each evaluation, the
    # same weights also evaluated with the running averages (*_running); 0: running averages only
    precise_bn_batches: int = PRECISE_BN_BATCHES


# The project's callbacks every job runs with unless its config turns one off (callbacks.NAME=null).
# They watch and measure; they do not change what a job computes (records.NOT_RECIPE).
PROJECT_CALLBACKS: dict[str, dict[str, Any]] = {
    # training stops at the first NaN or infinite loss, checked every `every` steps on a GPU
    "divergence_guard": {"_target_": "resnet_exp.training.guard.DivergenceGuard", "every": 25},
    # signal propagation per residual unit (diagnostics.signal and diagnostics.probe_size)
    "signal_propagation": {"_target_": "resnet_exp.training.diagnostics.SignalPropagation.for_job", "_partial_": True},
}

# Keys whose default changed after they were added: the default they had first. A job saved before
# the project had the key ran with that value (not with today's default), which is what a report
# and a resume read for it.
FIRST_DEFAULTS = {"loss.reduction": "mean", "evaluation.precise_bn_batches": 0}


@dataclass
class DiagnosticsConfig:
    signal: bool = True  # signal propagation per residual unit (diagnostics.py), into signal.csv
    probe_size: int = 256  # training images in its fixed probe batch


@dataclass
class Config:
    block: BlockConfig = field(default_factory=BlockConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: Any = None
    scheduler: Any = None
    trainer: Any = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    # Lightning callbacks by name, each a ``_target_`` config that Hydra instantiates
    # (training/job_callbacks.py; ``_partial_: true``: called with the job it serves):
    # +callbacks=early_stopping adds one (conf/callbacks/), callbacks.divergence_guard.every=50
    # changes one, callbacks.divergence_guard=null turns one off (~ is refused: the saved config
    # would not say so). Beside them, the job's own life is not a choice: its checkpoints, their
    # records, the stop on a signal, the progress bar (fit.py).
    callbacks: dict[str, Any] = field(default_factory=lambda: dict(PROJECT_CALLBACKS))
    seed: int = 0
    output_dir: str = "outputs"
    force_resume: bool = False
    compile: Optional[str] = None
