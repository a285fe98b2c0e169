"""``python -m resnet_exp.dashboard ENTITY/PROJECT --group GROUP``: a W&B workspace view for a sweep.

The view (``tracking/workspace.py``) holds the sweep's runs (its W&B group, in its ``sweep.yaml``),
grouped by ``--by``, with mean ± std curves of test accuracy (both measures) and training loss per
epoch; ``--print`` prints its spec instead of sending it (no login needed).
"""

from __future__ import annotations

import argparse
import json
import sys

from resnet_exp.command_line import described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.dashboard", description=described(__doc__))
    parser.add_argument("path", help="ENTITY/PROJECT")
    parser.add_argument("--group", required=True, help="the sweep's W&B group (see its sweep.yaml)")
    parser.add_argument("--by", default="block.order", help="the config key to group runs by (default: block.order)")
    parser.add_argument("--print", action="store_true", help="print the view's spec as JSON instead of saving it")
    args = parser.parse_args(argv)
    entity, _, project = args.path.partition("/")
    if not entity or not project:
        print(f"error: {args.path!r} is not ENTITY/PROJECT (e.g. my-team/resnet-exp)", file=sys.stderr)
        return 2
    try:
        from resnet_exp.tracking.workspace import sweep_workspace
    except ModuleNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from resnet_exp.library_internals import workspace_spec

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
