#!/usr/bin/env bash
# The cost table's measurements: python -m resnet_exp.bench (the framework's training step beside
# the torchvision reference, one process) for He et al.'s CIFAR network at 20, 56, 110 and 164 layers
# on Fashion-MNIST at 28 px, fp32 and bf16, and the seed network at 96 px; one JSON each in cost/
# (a batch other than 256: NAME_bBATCH.json). plan.py turns them into cost.md (the plan and its cost,
# and the GPU ladder's cost, from a GPU's measurements once it has them).
#   experiments/depth/cost.sh [STEPS]        (default 20 timed steps after 3 warm-up steps)
# On a GPU (a device session), the ladder's networks at both batches its presets train with, into
# COST_DIR (a relative one is taken from the repository root); copy them to experiments/depth/cost_gpu/:
#   COST_DIR=$OUT/cost_gpu BATCHES="256 128" MODELS=ladder experiments/depth/cost.sh
steps=${1:-20}
set --  # common.sh's first argument is a runs folder, which this script has none of
source "$(dirname "$0")/../common.sh"
dir=${COST_DIR:-$out/cost}
models="cifar_resnet20 cifar_resnet56 cifar_resnet110 cifar_resnet164 seed"
if [ "${MODELS:-}" = ladder ]; then models=${models% seed}; fi
mkdir -p "$dir"
for batch in ${BATCHES:-256}; do
    suffix=$([ "$batch" = 256 ] || echo "_b$batch")
    for precision in 32-true bf16-mixed; do
        for model in $models; do
            size=data.resize=null
            if [ "$model" = seed ]; then size=data.resize=96; fi
            file="$dir/${model}_${precision}${suffix}.json"
            if [ -f "$file" ]; then echo "$file: measured before"; continue; fi
            "$python" -m resnet_exp.bench --steps "$steps" --warmup 3 --eval-batches 4 --out "$file" \
                model=$model $size trainer.precision=$precision data.batch_size=$batch ${extra[@]+"${extra[@]}"}
        done
    done
done
