#!/usr/bin/env bash
# The seed's ablation at full size under the old default (a full step on each epoch's partial batch,
# running averages only): post vs pre, seeds 1-5, the whole recipe (10 epochs, all 60,000
# training images, the test set after every epoch) on the default path, then its report here.
#   experiments/block_order_full_step/run.sh [RUNS_DIR]      (sweep: RUNS_DIR/block_order; see ../common.sh)
source "$(dirname "$0")/../common.sh"
sweep block_order block.order=post,pre seed=1,2,3,4,5 trainer.precision=auto "${full_step[@]}"  # the fast path (bf16 on this CPU)
keep_records block_order  # the report is made from the kept records, so it can be made again without the runs
report "$out/jobs" --title "post vs pre, full size, 5 seeds"
