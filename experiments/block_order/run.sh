#!/usr/bin/env bash
# The seed's ablation at full size: post vs pre, seeds 1-5, the whole recipe (10 epochs, all 60,000
# training images, the test set after every epoch), then its report into this folder.
#
#   experiments/block_order/run.sh [SWEEP_DIR]    (default: outputs/experiments/block_order)
#
# Running it again with the same SWEEP_DIR resumes: completed jobs are skipped, the others go on
# from their last checkpoint. PYTHON picks the interpreter (default: .venv/bin/python, else python).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sweep=${1:-$root/outputs/experiments/block_order}
python=${PYTHON:-$([ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python)}
cd "$root"
"$python" -m resnet_exp.run -m block.order=post,pre seed=1,2,3,4,5 hydra.sweep.dir="$sweep"
"$python" -m resnet_exp.report "$sweep" --out "$here"
