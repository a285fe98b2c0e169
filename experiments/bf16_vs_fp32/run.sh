#!/usr/bin/env bash
# Does the fast path change the answer? The default path (precision=auto: bf16-mixed on a CPU or GPU
# with native bf16) against fp32 (trainer.precision=32-true), everything else equal, full size,
# post ordering, seeds 1-3, paired by seed. The fast-path runs are those of experiments/block_order
# (its jobs block.order=post, seeds 1-3), which this script runs or resumes first.
#
#   experiments/bf16_vs_fp32/run.sh [RUNS_DIR]    (default: outputs/experiments)
#
# Sweeps go to RUNS_DIR/block_order and RUNS_DIR/bf16_vs_fp32; running it again resumes both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-$root/outputs/experiments}
python=${PYTHON:-$([ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python)}
cd "$root"
PYTHON="$python" "$here/../block_order/run.sh" "$runs/block_order"
"$python" -m resnet_exp.run -m block.order=post seed=1,2,3 trainer.precision=32-true hydra.sweep.dir="$runs/bf16_vs_fp32"
"$python" -m resnet_exp.report "$runs/block_order" "$runs/bf16_vs_fp32" --where block.order=post --where seed=1,2,3 \
    --title "bf16 fast path vs fp32" --out "$here"
