#!/usr/bin/env bash
# Reduced: post vs pre over seeds 1-5, 2 epochs of 30 batches, on the path of the time it was run
# (fp32, the torchvision DataLoader). Seeds 1-3 are identity_mappings_cpu_reduced's post and pre
# jobs (that experiment runs or resumes first), seeds 4-5 a sweep of their own.
#   experiments/block_order_cpu_reduced/run.sh [RUNS_DIR]
source "$(dirname "$0")/../common.sh"
"$here/../identity_mappings_cpu_reduced/run.sh" "$runs"
sweep block_order_cpu_reduced block.order=post,pre seed=4,5 trainer.max_epochs=2 trainer.limit_train_batches=30 \
    trainer.precision=32-true data.pipeline=torchvision "${full_step[@]}"
report "$runs/identity_mappings_cpu_reduced" "$runs/block_order_cpu_reduced" --where block.order=post,pre \
    --title "post vs pre, reduced (60 steps), 5 seeds"
"$python" "$here/bn_probe.py" "$runs"/identity_mappings_cpu_reduced/*/ "$runs"/block_order_cpu_reduced/*/ \
    > "$out/bn_probe.txt"
