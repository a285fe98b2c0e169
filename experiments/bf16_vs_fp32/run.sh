#!/usr/bin/env bash
# Does bf16 move the answer under the default recipe (the seed's step, precise BN)? post, seeds
# 1-5, fp32 against bf16-mixed, paired by seed, on both measures; the equivalence test (TOST at 5%:
# the 90% CI of the paired final-accuracy difference, precise BN, within ±0.5 point) decides the
# default precision. The bf16 runs are ../seed_gap's remedies jobs with loss.reduction=batch_size:
# their config is today's default in bf16 (trainer.precision=auto on a CPU with native bf16), so
# they are reused from its kept records (BF16_RECORDS: another folder of bf16 jobs instead).
#   experiments/bf16_vs_fp32/run.sh [RUNS_DIR]     (sweep: RUNS_DIR/bf16_vs_fp32_seed_step)
source "$(dirname "$0")/../common.sh"
bf16=${BF16_RECORDS:-$here/../seed_gap/jobs}
restore_records bf16_vs_fp32_seed_step  # the jobs an earlier machine completed (jobs/), if any
sweep bf16_vs_fp32_seed_step block.order=post seed=1,2,3,4,5 trainer.precision=32-true  # today's defaults otherwise
keep_records bf16_vs_fp32_seed_step
mkdir -p "$out"
"$python" "$here/equivalence.py" "$bf16" "$out/jobs" > "$out/equivalence.md.part"
mv "$out/equivalence.md.part" "$out/equivalence.md"
report "$bf16" "$out/jobs" --where loss.reduction=batch_size --where block.order=post \
    --title "bf16 against fp32 under the default recipe, post, full size"
