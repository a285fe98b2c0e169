#!/usr/bin/env bash
# Why our test accuracy swings between epochs and the seed's did not (the seed_gap question).
# Uses the full-size post/pre runs of experiments/block_order (run or resumed first).
#  1. bn_probe.py: each run's final checkpoint evaluated with BatchNorm's running averages and
#     with statistics recomputed over 40 fixed training batches (same weights).
#  2. One more epoch (the 11th) from each run's final checkpoint, two ways, the same data order
#     and the precision the runs trained in (trainer.precision=auto: bf16 on the project's CPU):
#     as trained (loss.reduction=mean) and with the seed's step scaling (loss.reduction=batch_size:
#     the last, partial batch takes a 96/256 step). The third remedy,
#     evaluation.precise_bn_batches=40, only changes the evaluation: step 1 measures it on the
#     same weights, so it needs no training arm of its own.
#  3. analyze.py: the paired comparison of the 11th epoch's test accuracy and of its drop, and
#     of the probe's two accuracies.
#   experiments/seed_gap/run.sh [RUNS_DIR]
source "$(dirname "$0")/../common.sh"
"$here/../block_order/run.sh" "$runs"
mkdir -p "$out"
jobs=("$runs"/block_order/[0-9]*/)
if [ "$(cat "$out/bn_probe.txt" 2>/dev/null | wc -l)" -ne "${#jobs[@]}" ]; then  # once per sweep
    "$python" "$here/bn_probe.py" "${jobs[@]}" > "$out/bn_probe.txt.part"
    mv "$out/bn_probe.txt.part" "$out/bn_probe.txt"
fi
arms=("mean:loss.reduction=mean" "batch_size:loss.reduction=batch_size")
for job in "$runs"/block_order/[0-9]*/; do
    n=$(basename "$job")
    for arm in "${arms[@]}"; do
        name=${arm%%:*}
        copy="$runs/seed_gap/$name/$n"
        if [ ! -d "$copy" ]; then  # the run as it ended, to go on from
            mkdir -p "$copy"
            cp -r "$job/config.yaml" "$job/metrics.csv" "$job/checkpoints" "$copy/"
        fi
        "$python" -m resnet_exp.run ${extra[@]+"${extra[@]}"} trainer.max_epochs=11 trainer.precision=auto "${arm#*:}" force_resume=true \
            logger.wandb.mode=disabled "hydra.run.dir=$copy" "$(grep -A1 '^block:' "$copy/config.yaml" | \
            sed -n 's/^  order: /block.order=/p')" "seed=$(sed -n 's/^seed: //p' "$copy/config.yaml")"
    done
done
"$python" "$here/analyze.py" "$runs/block_order" "$runs/seed_gap" "$out/bn_probe.txt" > "$out/analysis.md"
