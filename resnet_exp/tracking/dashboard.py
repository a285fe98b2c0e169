"""``python -m resnet_exp.tracking.dashboard ENTITY/PROJECT --group GROUP``: a W&B workspace view for a sweep.

Builds, with the wandb-workspaces library, a saved view of the project that shows only the sweep's
runs (its W&B group, named in the sweep's sweep.yaml), grouped by ``block.order``: line plots by
epoch (mean line, ± std band) of test accuracy measured both ways, ``test/acc`` (precise BN:
BatchNorm statistics recomputed before each evaluation; the running averages' where precise BN is
off) and ``test/acc_running`` (the same weights with BatchNorm's running averages, the seed's
protocol), and of ``train/loss``. Saving needs W&B online (``wandb login``); ``--print`` shows the
view's spec without saving.
"""

from __future__ import annotations

import argparse
import json
import sys

try:
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
except ModuleNotFoundError:  # an extra: pip install 'resnet-exp[dashboard]'
    if __name__ == "__main__":
        sys.exit("error: the dashboard needs wandb-workspaces: pip install 'resnet-exp[dashboard]'")
    raise

from resnet_exp.library_internals import workspace_spec


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m resnet_exp.tracking.dashboard", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", help="ENTITY/PROJECT")
    parser.add_argument("--group", required=True, help="the sweep's W&B group (see its sweep.yaml)")
    parser.add_argument("--by", default="block.order", help="the config key to group runs by (default: block.order)")
    parser.add_argument("--print", action="store_true", help="print the view's spec as JSON instead of saving it")
    args = parser.parse_args(argv)
    entity, _, project = args.path.partition("/")
    if not entity or not project:
        print(f"error: {args.path!r} is not ENTITY/PROJECT (e.g. my-team/resnet-exp)", file=sys.stderr)
        return 2
    view = sweep_workspace(entity, project, args.group, args.by)
    if args.print:
        print(json.dumps(json.loads(workspace_spec(view)), indent=2))
        return 0
    from resnet_exp.tracking import TrackingError, public_api

    try:
        public_api()  # a login, before the view is sent
        view.save()
    except TrackingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved: {view.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
