"""resnet-exp's Hydra plugins, under the one name where Hydra looks for them: the SLURM launcher
and the sequential sweeper.

Hydra instantiates a launcher or a sweeper only from the ``hydra_plugins`` namespace package, and
finds it by scanning that namespace at every start; so ``hydra/launcher=slurm`` names a thin
subclass of hydra-submitit-launcher's, whose behaviour lives with the project's other SLURM code
(``resnet_exp/runs/slurm.py``), and ``hydra/sweeper=sequential`` a thin sweeper whose rounds and
stopping rule live in ``resnet_exp/sweeps/sequential.py`` and ``resnet_exp/analysis/sequential.py``.
Without the SLURM extra (``pip install -e ".[slurm]"`` in the clone; ``make install`` has it) there is nothing to subclass and no
launcher here; the sweeper is here whatever is installed.
"""

from __future__ import annotations

from typing import Any, Sequence

from hydra.plugins.sweeper import Sweeper

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


class SequentialSweeper(Sweeper):
    """Rounds of one seed for every setting, until every paired comparison is resolved or
    ``max_seeds`` is reached (``resnet_exp.sweeps.sequential.run``); each round is one batch for the
    sweep's launcher."""

    def __init__(
        self,
        alpha: float = 0.05,
        margin: float = 0.5,
        max_seeds: int = 10,
        measure: str = "auto",
        tau2: float = 3.0,
        params: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.alpha, self.margin, self.max_seeds, self.measure, self.tau2 = alpha, margin, max_seeds, measure, tau2
        self.params = params or {}
        self.config: Any = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from resnet_exp.sweeps.sequential import run

        return run(self, arguments)
