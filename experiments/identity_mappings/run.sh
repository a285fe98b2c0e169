#!/usr/bin/env bash
# He et al. 2016's five orderings of the residual unit (Table 2) on the seed's network and data,
# under the seed's recipe (today's default), full size, seeds 1-5, fp32. post and pre are
# ../bf16_vs_fp32's and ../block_order's jobs (the same config), reused from their kept records
# (POST_RECORDS, PRE_RECORDS: other folders of such jobs instead); this script trains the other
# three (experiment=identity_mappings, narrowed to them), then the report of all five here and
# he_table.md beside He et al.'s Table 2.
#   experiments/identity_mappings/run.sh [RUNS_DIR]     (sweep: RUNS_DIR/identity_mappings_seed_step)
source "$(dirname "$0")/../common.sh"
post=${POST_RECORDS:-$here/../bf16_vs_fp32/jobs}
pre=${PRE_RECORDS:-$here/../block_order/jobs}
restore_records identity_mappings_seed_step  # the jobs an earlier machine completed (jobs/), if any
sweep identity_mappings_seed_step experiment=identity_mappings \
    block.order=bn_after_add,relu_before_add,relu_only_pre trainer.precision=32-true
keep_records identity_mappings_seed_step
report "$post" "$pre" "$out/jobs" --where trainer.precision=32-true \
    --title "He et al.'s five orderings under the seed's recipe, full size, fp32"
"$python" "$here/he_table.py" "$out/summary.csv" > "$out/he_table.md.part"
mv "$out/he_table.md.part" "$out/he_table.md"
