"""The bench's table on this page, made from the bench's JSON files (``python -m resnet_exp.bench
--out FILE``), so that no figure in it is typed by hand: per file, the framework's path as the JSON
records it, the reference's and the framework's training images/s, their ratio, the test set's
evaluation time, and what a full-size epoch and job (10 epochs) come to at that rate.

    python experiments/bench_cpu/table.py            # print it
    python experiments/bench_cpu/table.py --write    # put it into README.md, between its markers
    python experiments/bench_cpu/table.py --check    # exit 1 if README.md's is not this
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- bench: made by python experiments/bench_cpu/table.py --write; do not edit by hand -->"
END = "<!-- /bench -->"
TRAIN_IMAGES, TEST_IMAGES, EPOCHS = 60_000, 10_000, 10


def table() -> str:
    rows = [
        "| run | framework path | reference train images/s | framework train images/s | ratio | test set eval s: "
        "reference / framework | a full-size epoch, a 10-epoch job, at this rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(HERE.glob("*.json")):
        r = json.loads(path.read_text())
        if "framework" not in r:  # not a bench run (step_profile.json)
            continue
        fw, ref = r["framework"], r["reference"]
        path_ = ", ".join(
            f"{k} {fw[k]}" if k == "compile" else f"{fw[k]}"
            for k in ("pipeline", "precision", "compile", "memory_format", "allocator")
            if k in fw
        )
        overrides = f"`{' '.join(r['overrides'])}`" if r["overrides"] else "no overrides: the defaults of its time"
        train = TRAIN_IMAGES / fw["images_per_s"]
        if r.get("eval_batches"):  # a few test batches timed (a first compile among them): training only
            evaluated = f"{r['eval_batches']} batches: {ref['eval_s']:.1f} / {fw['eval_s']:.1f}"
            epoch = f"{train:.0f} s training only, {EPOCHS * train / 60:.0f} min"
        else:
            evaluated = f"{ref['eval_s']:.1f} / {fw['eval_s']:.1f}"
            epoch = f"{train + fw['eval_s']:.0f} s, {EPOCHS * (train + fw['eval_s']) / 60:.0f} min"
        rows.append(
            f"| `{path.name}` | {path_} ({overrides}) | {ref['images_per_s']:.0f} | {fw['images_per_s']:.0f} | "
            f"**{r['ratio']:.2f}x** | {evaluated} | {epoch} |"
        )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    made = table()
    if not (args.write or args.check):
        print(made, end="")
        return 0
    readme = HERE / "README.md"
    text = readme.read_text()
    head, rest = text.split(BEGIN)
    new = f"{head}{BEGIN}\n{made}{END}{rest.split(END, 1)[1]}"
    if args.write:
        readme.write_text(new)
    elif new != text:
        print(f"error: {readme}'s bench table is not what its JSON files give; run {__file__} --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
