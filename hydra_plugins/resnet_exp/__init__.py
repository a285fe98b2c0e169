"""resnet-exp's Hydra launcher, under the one name where Hydra looks for launchers.

Hydra instantiates a launcher only from the ``hydra_plugins`` namespace package, and finds it by
scanning that namespace at every start; so ``hydra/launcher=slurm`` names this class, a thin
subclass of hydra-submitit-launcher's, and its behaviour lives with the project's other SLURM code
(``resnet_exp/runs/slurm.py``). Without the SLURM extra (``pip install "resnet-exp[slurm]"``) there
is nothing to subclass and no launcher here; importing this package then does nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _PluginSlurmLauncher
except ImportError:  # the SLURM extra is not installed
    _PluginSlurmLauncher = None

if _PluginSlurmLauncher is not None:

    class SlurmLauncher(_PluginSlurmLauncher):
        """hydra-submitit-launcher's SLURM launcher that waits for every job of the array and
        records a job that SLURM ended without a result (``resnet_exp.runs.slurm.launch``)."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
            from resnet_exp.runs.slurm import launch

            return launch(self, job_overrides, initial_job_idx)
