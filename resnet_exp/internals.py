"""The project's every touch of what its libraries do not promise, one small function each, with
the reason no public API serves. Elsewhere the project uses their public APIs only, so a library
upgrade that changes one of these breaks it here, in one place, and where the touch only keeps a
mirror or a message tidy its failure is caught. (W&B's offline run files, read back through W&B's
own protobuf definitions, have a module of their own: ``tracking/offline.py``.)
"""

from __future__ import annotations

from typing import Any


def relaunches_processes(trainer: Any) -> bool:
    """Whether Lightning starts this run's other DDP processes by running its command line again.
    Lightning says so only by the launcher's class (``_SubprocessScriptLauncher``); ``ddp.py`` needs
    to know, to hand those processes this job's command line rather than the sweep's."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return type(launcher).__name__ == "_SubprocessScriptLauncher" and trainer.world_size > 1


def checkpoint_progress(ckpt: dict[str, Any]) -> tuple[int, int]:
    """(the epoch a checkpoint was saved in, counted from 0; the batches of it processed), from
    Lightning's loop state, for checkpoints written before the project kept its own record of
    them (``job.CheckpointRecords``): no public API reads a checkpoint's progress."""
    loop = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    return int(ckpt["epoch"]), int(loop["current"]["processed"])


def inductor_default_cache_dir() -> str | None:
    """torch.compile's default cache folder (where ``TORCHINDUCTOR_CACHE_DIR`` points when the user
    did not choose one), or None where this torch does not say: torch sets the variable to it on
    import, and only its inductor runtime names it."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        return default_cache_dir()
    except Exception:  # moved or gone in another torch: then every value counts as the user's
        return None


def drop_wandb_init_argument(logger: Any, key: str) -> None:
    """Remove ``key`` from the arguments Lightning's WandbLogger keeps for ``wandb.init``. Lightning
    always passes ``anonymous`` (None when unset) and W&B 0.31 warns on the console, once per job,
    that the setting has no effect; no public API leaves it out. Where a Lightning keeps them
    elsewhere, nothing is removed (the warning comes back, nothing else changes)."""
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict):
        init.pop(key, None)
