#!/usr/bin/env bash
# Where the ordering starts to matter: He et al.'s CIFAR network (model=cifar_resnetN) on
# Fashion-MNIST at its native 28 px, the plan of README.md (its cost from cost.sh's measurements):
#   1. signal propagation across depth: every ordering and the plain network at initialisation at
#      164 and 998 layers (one training step of 32), and at 20, 56 and 110 layers at initialisation
#      and after 300 steps of batch 32 (signal.csv of each job), then signal_depth.py's table and figure;
#   2. the positive control and the orderings at full schedule (the seed's recipe, fp32): plain, post,
#      pre and bn_after_add at 20 and 56 layers, seeds 1-3, seed by seed; then the report and
#      depth_table.py's table beside He et al.;
#   3. post, pre and bn_after_add's first epoch again with the training curve (train_curve.csv),
#      then first_epoch.py's table and figure.
#   experiments/depth/run.sh [RUNS_DIR]    (sweeps: RUNS_DIR/depth_signal_init, depth_signal_steps, depth_seed_recipe,
#                                           depth_first_epoch)
source "$(dirname "$0")/../common.sh"
blocks=block=plain,post,bn_after_add,relu_before_add,relu_only_pre,pre
# The probe: 64 training images (a 998-layer network's backward pass on 256 would need about 18 GB).
signal=(experiment=depth data.batch_size=32 diagnostics.probe_size=64 trainer.max_epochs=1
        trainer.limit_val_batches=1 trainer.precision=32-true seed=1 "$blocks")
restore_records depth_signal_init signal_init_jobs
sweep depth_signal_init "${signal[@]}" 'model=cifar_resnet164,cifar_resnet998' \
    trainer.limit_train_batches=1 evaluation.precise_bn_batches=1
keep_records depth_signal_init signal_init_jobs
restore_records depth_signal_steps signal_steps_jobs
sweep depth_signal_steps "${signal[@]}" model=cifar_resnet20,cifar_resnet56,cifar_resnet110 \
    trainer.limit_train_batches=300
keep_records depth_signal_steps signal_steps_jobs
"$python" "$here/signal_depth.py" "$out/signal_init_jobs" "$out/signal_steps_jobs" --out "$out"

restore_records depth_seed_recipe
sweep depth_seed_recipe experiment=depth seed=1,2,3 model=cifar_resnet20,cifar_resnet56 \
    block=plain,post,pre,bn_after_add trainer.precision=32-true
keep_records depth_seed_recipe
report "$out/jobs" --title "Ordering against depth, with a plain network beside: He et al.'s CIFAR network at 20 and 56 layers, fp32"
"$python" "$here/depth_table.py" "$out/jobs" > "$out/depth_table.md.part"
mv "$out/depth_table.md.part" "$out/depth_table.md"

# The orderings' first epoch again, step by step (the training curve every 5 steps): where He et
# al. saw pre-activation ease optimisation first; the same seeds, so the same first epochs.
restore_records depth_first_epoch first_epoch_jobs
sweep depth_first_epoch experiment=depth seed=1,2,3 model=cifar_resnet20,cifar_resnet56 \
    block=post,pre,bn_after_add trainer.precision=32-true trainer.max_epochs=1 \
    +callbacks=training_curve callbacks.training_curve.every=5
keep_records depth_first_epoch first_epoch_jobs
"$python" "$here/first_epoch.py" "$out/first_epoch_jobs" --full "$out/jobs" --out "$out"
# The README's plan region says what the kept jobs spent against the plan (where they are kept here).
if [ "$out" = "$here" ]; then "$python" "$here/plan.py"; fi
