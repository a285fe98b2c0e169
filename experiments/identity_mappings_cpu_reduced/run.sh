#!/usr/bin/env bash
# Reduced: the five orderings x seeds 1-3, 2 epochs of 30 batches, on the path of the time it was
# run (fp32, the torchvision DataLoader), then its report and the BatchNorm probe here.
#   experiments/identity_mappings_cpu_reduced/run.sh [RUNS_DIR]   (sweep: RUNS_DIR/identity_mappings_cpu_reduced)
source "$(dirname "$0")/../common.sh"
sweep identity_mappings_cpu_reduced experiment=identity_mappings seed=1,2,3 trainer.max_epochs=2 \
    trainer.limit_train_batches=30 trainer.precision=32-true data.pipeline=torchvision "${full_step[@]}"
report "$runs/identity_mappings_cpu_reduced" --title "The five orderings, reduced (60 steps)"
"$python" experiments/block_order_cpu_reduced/bn_probe.py "$runs"/identity_mappings_cpu_reduced/*/ > "$out/bn_probe.txt"
