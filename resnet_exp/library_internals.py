"""The project's every touch of what its libraries do not promise: one small function each, the
reason no public API serves, the library version it was checked against and what breaks if that
changes. Elsewhere the project uses the libraries' public APIs only (``tests/test_architecture.py``
holds it: an underscore name of torch, Lightning, Hydra, OmegaConf, W&B or submitit reached, or a
library attribute assigned, anywhere but here fails), so a library upgrade that changes one of
these breaks it here, in one place; where the touch only keeps a mirror or a message tidy its
failure is caught. (W&B's offline run files, read back through W&B's own protobuf definitions,
have a module of their own: ``tracking/offline.py``.)

Checked against torch 2.14.1 (and 2.11 on the GPU machine), pytorch-lightning 2.6.6, W&B 0.31.0,
wandb-workspaces 0.4.13.

Besides these touches, four places rely on what a library does, through its public names, where
no API promises it; each is named here so that an upgrade knows where to look, and each has a test
that fails if the behaviour changes:

- ``runs/ddp.single_run_command``: Lightning's DDP launcher starts a job's other processes by
  running ``sys.argv`` again, in Hydra's ``run.dir``; inside a multirun the job hands them its own
  overrides and folder for the length of the fit (hydra-core 1.3.8; tests/test_scale_out's DDP jobs).
- ``data/pipelines.DeviceBatches.batch_sampler = None``: Lightning takes a loader for a DataLoader
  built from a sampler when it has both ``sampler`` and ``batch_sampler`` (pytorch-lightning 2.6;
  every training test through the device pipeline, the default, and tests/test_scale_out's check
  that each sample is seen once).
- ``sweeps/checks.job_list``: the order in which Hydra's basic sweeper numbers a sweep's jobs (the
  product of the swept values, the last key fastest), rebuilt with Hydra's public override parser
  because the sweeper's own function is internal (hydra-core 1.3.8; tests/test_config's refusals
  that name the job, and the resumed sweeps of tests/test_reliability).
- ``runs/slurm.launch``: hydra-submitit-launcher's own ``launch`` with its collection of results
  changed (the plugin has no hook for it), reading the launcher's ``params`` and the plugin's
  ``BaseQueueConf`` as that ``launch`` does (hydra-submitit-launcher 1.2, pinned below 1.3; every
  test of tests/test_slurm).
"""

from __future__ import annotations

from typing import Any


def relaunches_processes(trainer: Any) -> bool:
    """Whether Lightning starts this run's other DDP processes by running its command line again.
    Lightning says so only by the launcher's class (``_SubprocessScriptLauncher``); ``ddp.py`` needs
    to know, to hand those processes this job's command line rather than the sweep's. If the class
    is renamed, DDP jobs started by a sweep relaunch the sweep's command line (tests/test_scale_out
    fails)."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return type(launcher).__name__ == "_SubprocessScriptLauncher" and trainer.world_size > 1


def checkpoint_progress(ckpt: dict[str, Any]) -> tuple[int, int]:
    """(the epoch a checkpoint was saved in, counted from 0; the batches of it processed), from
    Lightning's loop state, for checkpoints written before the project kept its own record of
    them (``job.CheckpointRecords``): no public API reads a checkpoint's progress. If the loop's key
    moves, such old checkpoints are named as unreadable by the resume check (tested)."""
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


def compiled_in_place(net: Any) -> bool:
    """Whether ``nn.Module.compile`` has compiled ``net`` in place: torch keeps the compiled
    callable in ``_compiled_call_impl`` and says so nowhere public. If that moves, a resumed job
    compiles its network a second time (slower start, same numbers)."""
    return getattr(net, "_compiled_call_impl", None) is not None


def forget_compiled(net: Any) -> None:
    """Make a copy of an in-place compiled network run eagerly: a deep copy keeps the compiled
    callable, which calls the original network's code. If the attribute moves, the copy (the signal
    probe's) would measure the original's weights (tests/test_diagnostics checks the copy)."""
    if hasattr(net, "_compiled_call_impl"):
        net._compiled_call_impl = None


def cpu_reports_avx512_bf16() -> bool:
    """Whether this torch's CPU capability check says AVX512-BF16, for torch builds without the
    public ``torch.cpu.get_capabilities``; False where it has neither."""
    import torch

    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def workspace_spec(view: Any) -> str:
    """A W&B workspace view's spec as JSON, as ``view.save()`` would send it, for printing instead
    of sending: wandb-workspaces has no public serializer. If it moves, ``dashboard --print``
    fails with the library's AttributeError (tests/test_cli runs it)."""
    return view._to_model().model_dump_json(by_alias=True)
