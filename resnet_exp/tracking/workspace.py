"""A W&B workspace view of a sweep (wandb-workspaces, the ``dashboard`` extra): the sweep's runs,
grouped by a config key, with mean ± std curves per epoch. The command is
``python -m resnet_exp.dashboard``."""

from __future__ import annotations

try:
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
except ModuleNotFoundError:  # an extra: pip install -e '.[dashboard]' in the clone
    raise ModuleNotFoundError(
        "the dashboard needs wandb-workspaces: pip install -e '.[dashboard]' in the clone"
    ) from None


def sweep_workspace(entity: str, project: str, group: str, by: str = "block.order") -> ws.Workspace:
    """The view: the sweep's runs, grouped by ``by``, with mean ± std curves per epoch."""

    def curve(metric: str, label: str = "") -> wr.LinePlot:
        return wr.LinePlot(
            title=f"{metric}{label} by epoch, mean ± std per {by}",
            x="epoch",
            y=[metric],
            groupby=by,
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )

    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"{group} by {by}",
        sections=[
            ws.Section(
                name="curves",
                is_open=True,
                panels=[
                    curve("test/acc", " (precise BN where on)"),
                    curve("test/acc_running", " (running averages, the seed's protocol)"),
                    curve("train/loss"),
                ],
            )
        ],
        runset_settings=ws.RunsetSettings(filters=[ws.Metric("Group") == group], groupby=[ws.Config(by)]),
    )
