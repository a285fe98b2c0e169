#!/usr/bin/env bash
# Why our test accuracy swings between epochs and the seed's did not (the seed_gap question).
#   experiments/seed_gap/run.sh [RUNS_DIR]
#  1. The remedies at full size: post, seeds 1-5, trained as the default recipe (loss.reduction=mean)
#     and with the seed's step scaling (loss.reduction=batch_size: the last, partial batch takes a
#     96/256 step), on the fast path ../block_order_full_step ran on; every epoch each evaluates the test set
#     with precise BN (evaluation.precise_bn_batches=40, test/acc) and, on the same weights, with the
#     running averages (test/acc_running: what the default recipe reports).
#     Then step_probe.py: from each run's final checkpoint, an 11th epoch, test accuracy after each
#     of its last 15 steps and after its last, partial batch taken both ways.
#  2. The seed's own code in MXNet (mxnet_seed.py: post, seed 1, with the seed's step and with our
#     full step for the partial batch) and our training step against MXNet's (step_check.py). MXNet lives in a venv of its own: MXNET_PYTHON, or RUNS_DIR/mxnet-venv
#     made by mxnet_env.sh (from PyPI). SEED_GAP_MXNET=0 leaves this step out.
#  3. bn_probe.py on ../block_order_full_step's final checkpoints, where RUNS_DIR holds its runs (its output,
#     bn_probe.txt, is committed: the probe runs once per sweep).
#  4. analyze.py: analysis.md, from the kept records (../block_order_full_step/jobs, jobs/, mxnet/), and
#     the README's generated regions (its answer and tables), from those, step_check.md and step_probe.md.
source "$(dirname "$0")/../common.sh"
sweep seed_gap_remedies block.order=post seed=1,2,3,4,5 loss.reduction=mean,batch_size \
    trainer.precision=auto evaluation.precise_bn_batches=40  # the fast path, as ../block_order_full_step
keep_records seed_gap_remedies
# An 11th epoch of each run, step by step at its end (step_probe.py): once, at full size
# (SEED_GAP_PROBE=0 leaves it out: it trains whole epochs whatever the overrides say).
probed=("$runs"/seed_gap_remedies/[0-9]*/)
if [ "${SEED_GAP_PROBE:-1}" != 0 ] && [ "$(grep -c '^| [0-9]' "$out/step_probe.md" 2>/dev/null)" != "${#probed[@]}" ]; then
    "$python" "$here/step_probe.py" "${probed[@]}" > "$out/step_probe.md.part"
    mv "$out/step_probe.md.part" "$out/step_probe.md"
fi

if [ "${SEED_GAP_MXNET:-1}" != 0 ]; then
    mx=${MXNET_PYTHON:-$runs/mxnet-venv/bin/python}
    [ -x "$mx" ] || "$here/mxnet_env.sh" "$runs/mxnet-venv"
    mkdir -p "$runs/seed_gap_mxnet" "$out/mxnet"
    # the seed's recipe, then the same run (same seed: same initial weights and data order) with our
    # full step for each epoch's last, partial batch
    for run in post:1:seed post:1:mean; do
        IFS=: read -r order seed step <<< "$run"
        json=$runs/seed_gap_mxnet/$order-$seed-$step.json
        if ! "$mx" -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(len(r['epochs']) != r['args']['epochs'])" "$json" 2>/dev/null; then
            "$mx" "$here/mxnet_seed.py" --order "$order" --seed "$seed" --step "$step" --out "$json"  # 65-75 min alone
        fi
        cp "$json" "$out/mxnet/"
    done
    for order in post pre; do
        "$python" "$here/step_check.py" --mxnet-python "$mx" --order "$order"
        echo
    done > "$out/step_check.md.part"
    mv "$out/step_check.md.part" "$out/step_check.md"
fi

block_order=("$runs"/block_order/[0-9]*/)
if [ -d "${block_order[0]}/checkpoints" ] && [ "$(cat "$out/bn_probe.txt" 2>/dev/null | wc -l)" -ne "${#block_order[@]}" ]; then
    "$python" "$here/bn_probe.py" "${block_order[@]}" > "$out/bn_probe.txt.part"
    mv "$out/bn_probe.txt.part" "$out/bn_probe.txt"
fi

"$python" "$here/analyze.py" --block-order "$here/../block_order_full_step/jobs" --probe "$out/bn_probe.txt" \
    --remedies "$out/jobs" --mxnet "$out/mxnet" > "$out/analysis.md"
if [ -f "$out/step_check.md" ] && [ -f "$out/step_probe.md" ]; then
    "$python" "$here/analyze.py" --block-order "$here/../block_order_full_step/jobs" --probe "$out/bn_probe.txt" \
        --remedies "$out/jobs" --mxnet "$out/mxnet" --step-check "$out/step_check.md" \
        --step-probe "$out/step_probe.md" --readme "$out/README.md" --write
fi
