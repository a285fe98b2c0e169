#!/usr/bin/env bash
# The cost table's measurements: python -m resnet_exp.bench (the framework's training step beside
# the torchvision reference, one process) for He et al.'s CIFAR network at 20, 56 and 110 layers on
# Fashion-MNIST at 28 px, fp32 and bf16, and the seed network at 96 px; one JSON each in cost/.
# plan.py turns them into cost.md (the plan and its cost).
#   experiments/depth/cost.sh [STEPS]        (default 20 timed steps after 3 warm-up steps)
source "$(dirname "$0")/../common.sh"
steps=${1:-20}
mkdir -p "$out/cost"
for precision in 32-true bf16-mixed; do
    for model in cifar_resnet20 cifar_resnet56 cifar_resnet110 seed; do
        size=data.resize=null
        if [ "$model" = seed ]; then size=data.resize=96; fi
        file="$out/cost/${model}_${precision}.json"
        if [ -f "$file" ]; then echo "$file: measured before"; continue; fi
        "$python" -m resnet_exp.bench --steps "$steps" --warmup 3 --eval-batches 4 --out "$file" \
            model=$model $size trainer.precision=$precision ${extra[@]+"${extra[@]}"}
    done
done
