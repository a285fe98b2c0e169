#!/usr/bin/env bash
# bf16 against fp32 settled on one machine: post, the
# default recipe, seeds 101-118 (fixed in advance: 18 pairs, the fixed-n TOST's pairs at the mean
# difference and spread of the 5 pairs measured before, README's plan table), each seed trained in
# fp32 and in bf16-mixed one after the other on the same machine, so that a stopped sweep leaves
# whole pairs and every pair's two arms ran on one CPU (status.json's machine says which). One
# TOST at the end, on precise BN (equivalence.md); no look before the last pair.
#   experiments/bf16_same_machine/run.sh [RUNS_DIR]     (sweep: RUNS_DIR/bf16_same_machine)
source "$(dirname "$0")/../common.sh"
restore_records bf16_same_machine
sweep bf16_same_machine block.order=post seed="$(seq -s, 101 118)" trainer.precision=32-true,bf16-mixed
keep_records bf16_same_machine
mkdir -p "$out"
"$python" "$root/experiments/bf16_vs_fp32/equivalence.py" "$out/jobs" "$out/jobs" > "$out/equivalence.md.part"
mv "$out/equivalence.md.part" "$out/equivalence.md"
report "$out/jobs" --title "bf16 against fp32 on one machine, post, 18 seeds fixed in advance"
