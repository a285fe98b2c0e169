#!/usr/bin/env bash
# Does the fast path change the answer? The default path (precision=auto: bf16-mixed where the CPU
# or GPU has native bf16) against trainer.precision=32-true, everything else equal, full size, post
# ordering, seeds 1-3, paired by seed. The fast-path runs are block_order_full_step's (post, seeds 1-3):
# that experiment runs (or resumes) first.
#   experiments/bf16_vs_fp32_full_step/run.sh [RUNS_DIR]     (sweeps: RUNS_DIR/block_order, RUNS_DIR/bf16_vs_fp32)
source "$(dirname "$0")/../common.sh"
"$here/../block_order_full_step/run.sh" "$runs"
sweep bf16_vs_fp32 block.order=post seed=1,2,3 trainer.precision=32-true "${full_step[@]}"
keep_records bf16_vs_fp32  # the fast-path runs' records are kept by block_order_full_step
report "$runs/block_order" "$runs/bf16_vs_fp32" --where block.order=post --where seed=1,2,3 \
    --title "bf16 fast path vs fp32, post, full size"
