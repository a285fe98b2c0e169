#!/usr/bin/env bash
# Each ordering at its own best learning rate (30 full-size jobs: a GPU experiment).
# Step 1, the search (experiment=tuned_orderings): post and pre x lr 0.025-0.4 x seeds 1-2, on a
# validation split of 5,000 training images. Step 2: python -m resnet_exp.tune picks each
# ordering's rate by its mean validation accuracy; each ordering is retrained at its rate on fresh
# seeds 11-15 and the report compares them on the test set, paired by seed.
#   experiments/tuned_orderings/run.sh [RUNS_DIR]
source "$(dirname "$0")/../common.sh"
sweep tuned_orderings_search experiment=tuned_orderings
mkdir -p "$out"
"$python" -m resnet_exp.tune "$runs/tuned_orderings_search" --out "$out" > "$runs/tuned_orderings_chosen.txt"
finals=()
while read -r -a chosen; do
    name=tuned_orderings_final_${chosen[0]#*=}
    sweep "$name" "${chosen[@]}"
    finals+=("$runs/$name")
done < "$runs/tuned_orderings_chosen.txt"
report "${finals[@]}" --title "Each ordering at its own learning rate, compared on the test set"
