#!/usr/bin/env bash
# Reduced: the default post/pre sweep cut to one epoch, seed 0, on the path of the time it was run
# (fp32, the torchvision DataLoader), then its report and the BatchNorm probe here.
#   experiments/block_order_cpu_1epoch/run.sh [RUNS_DIR]   (sweep: RUNS_DIR/block_order_cpu_1epoch)
source "$(dirname "$0")/../common.sh"
sweep block_order_cpu_1epoch block.order=post,pre trainer.max_epochs=1 trainer.precision=32-true \
    data.pipeline=torchvision "${full_step[@]}"
report "$runs/block_order_cpu_1epoch" --title "post vs pre, one epoch"
"$python" experiments/block_order_cpu_reduced/bn_probe.py "$runs"/block_order_cpu_1epoch/*/ > "$out/bn_probe.txt"
