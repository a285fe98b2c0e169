#!/usr/bin/env bash
# The project's question under the seed's recipe (today's default: the seed's step, test accuracy
# with precise BN and with the running averages): post vs pre at full size, seeds 1-5 (and more,
# below), fp32, paired
# by seed. The post arm is ../bf16_vs_fp32's fp32 jobs (the same config: post, seeds 1-5, today's
# defaults, trainer.precision=32-true), reused from its kept records (POST_RECORDS: another folder
# of such jobs instead); this script trains pre.
#   experiments/block_order/run.sh [RUNS_DIR]     (sweeps: RUNS_DIR/block_order_seed_step, RUNS_DIR/block_order_more_seeds)
# fp32 is named so that the runs count whatever bf16's equivalence decides (a CPU without native
# bf16 runs fp32 under precision=auto as well).
source "$(dirname "$0")/../common.sh"
post=${POST_RECORDS:-$here/../bf16_vs_fp32/jobs}
restore_records block_order_seed_step  # the jobs an earlier machine completed (jobs/), if any
sweep block_order_seed_step block.order=pre seed=1,2,3,4,5 trainer.precision=32-true  # today's defaults otherwise
keep_records block_order_seed_step
# Five seeds left the 95% CI of the paired difference wider than ±0.5 point: more seeds of both
# orderings, the seed first so that the pairs complete in turn, kept in jobs_more_seeds/
# (MORE_SEEDS: other seeds; empty: none).
more=${MORE_SEEDS-6,7,8}
if [ -n "$more" ]; then
    restore_records block_order_more_seeds jobs_more_seeds
    sweep block_order_more_seeds seed="$more" block.order=post,pre trainer.precision=32-true
    keep_records block_order_more_seeds jobs_more_seeds
fi
report "$post" "$out/jobs" ${more:+"$out/jobs_more_seeds"} --where block.order=post,pre --where trainer.precision=32-true \
    --title "post vs pre under the seed's recipe, full size, fp32"
