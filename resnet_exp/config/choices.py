"""The choices each part of the config offers. Where a choice is a name (an ordering, a stem, a
pipeline, ...), the schema's field has the ``StrEnum`` below, so that OmegaConf refuses any other
value when the config is composed (a member is the string it names: ``Ordering.post == "post"``,
printed ``post``); the tuples are the same choices, for the components that implement them
(``blocks.py`` defines exactly ``ORDERINGS``, ...). Choices that are not names (precisions such as
``32-true``, torch.compile's modes with their hyphens, ``model.final_norm``'s true/false/auto) stay
tuples, checked by ``checks.py``.
"""

from __future__ import annotations

from enum import StrEnum

from resnet_exp.data import AUGMENTATIONS, PIPELINES

# block.order: the five residual units of He et al. 2016, Fig. 4 (a)-(e); blocks.py defines one
# class per name.
ORDERINGS = ("post", "bn_after_add", "relu_before_add", "relu_only_pre", "pre")
SHORTCUTS = ("projection", "none")
# Where a pre-activation unit's projection shortcut takes its input: relu(x) of the unit's input
# (the seed), or the output of the BN-ReLU that the unit shares with its residual branch (the
# paper's code, and timm's resnetv2).
PROJECTION_INPUTS = ("relu", "preact")
# model.final_norm: a BN-ReLU after the last unit; auto: for pre-activation orderings only.
FINAL_NORMS = (True, False, "auto")
# model.stem: the seed's (conv7x7/2, BN, ReLU, max-pool 3/2) or small, He et al.'s stem for 32 px
# images (conv3x3/1, BN, ReLU, no pool; their 2015 paper, Sec. 4.2), for images at their own size.
STEMS = ("seed", "small")
WANDB_MODES = ("online", "offline", "disabled")
# torch.compile's modes for the network (``compile=MODE``); reduce-overhead captures CUDA graphs.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# trainer.precision: Lightning's values, and auto (hardware.py decides).
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
              "32", "16", "bf16", "64", 32, 16, 64)  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")

# loss.reduction: batch_size (the seed's recipe, MXNet's trainer.step(batch_size): the summed loss
# divided by data.batch_size, so the last, partial batch of an epoch takes a step 96/256 as long)
# or mean (PyTorch's mean over each batch: a full step on every batch, the partial one included;
# the project's default until experiments/seed_gap showed it is not the seed's).
LOSS_REDUCTIONS = ("batch_size", "mean")


def choice(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """A StrEnum of ``values`` (each member named as its value), for a schema field."""
    return StrEnum(name, {v: v for v in values}, module=__name__)


Ordering = choice("Ordering", ORDERINGS)
Shortcut = choice("Shortcut", SHORTCUTS)
ProjectionInput = choice("ProjectionInput", PROJECTION_INPUTS)
Stem = choice("Stem", STEMS)
Pipeline = choice("Pipeline", PIPELINES)
LossReduction = choice("LossReduction", LOSS_REDUCTIONS)
WandbMode = choice("WandbMode", WANDB_MODES)
Augment = choice("Augment", AUGMENTATIONS)

# What a refused choice is called in its one-line error (``block.order=postt is not a known
# ordering; choose one of: post, ...``), by its key.
CHOICE_NOUNS = {
    "block.order": "a known ordering",
    "block.shortcut": "a shortcut",
    "block.projection_input": "valid",
    "model.stem": "a stem",
    "data.pipeline": "a pipeline",
    "loss.reduction": "valid",
    "logger.wandb.mode": "a W&B mode",
    "data.augment": "an augmentation",
}
