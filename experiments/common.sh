# Sourced by every experiment's run.sh:  experiments/NAME/run.sh [RUNS_DIR]
# Sweeps go under RUNS_DIR (default: outputs/experiments), one folder per sweep; running a script
# again with the same RUNS_DIR resumes its sweeps (completed jobs are skipped, the others go on
# from their last checkpoint) and writes its report again. PYTHON picks the interpreter (default:
# the project's .venv, else python). Commands run from the repository root.
# For trying the plumbing on a few batches (the test suite does): EXPERIMENT_OVERRIDES="KEY=VALUE ..."
# is added to every sweep, and EXPERIMENT_OUT=DIR writes the reports (and kept records) into DIR/NAME instead of here.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=$(mkdir -p "${1:-$root/outputs/experiments}" && cd "${1:-$root/outputs/experiments}" && pwd)
python=${PYTHON:-$([ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python)}
out=${EXPERIMENT_OUT:+$EXPERIMENT_OUT/$(basename "$here")}
out=${out:-$here}
read -r -a extra <<< "${EXPERIMENT_OVERRIDES:-}"
export PYTHON=$python
cd "$root"
# The defaults before experiments/seed_gap (a full step on each epoch's partial batch; test accuracy
# with BatchNorm's running averages only): the recipe the experiments committed before it ran with,
# named on their command lines so that they run (and resume) as they did.
full_step=(loss.reduction=mean evaluation.precise_bn_batches=0)

sweep() {  # sweep NAME OVERRIDES...: python -m resnet_exp.run -m OVERRIDES into RUNS_DIR/NAME
    local name=$1
    shift
    "$python" -m resnet_exp.run -m "$@" ${extra[@]+"${extra[@]}"} hydra.sweep.dir="$runs/$name"
}

report() {  # report ARGS...: python -m resnet_exp.report ARGS --out <this experiment's folder>
    mkdir -p "$out"
    "$python" -m resnet_exp.report "$@" --out "$out"
}

restore_records() {  # restore_records NAME [FOLDER]: the jobs that completed, from this experiment's kept
    # records (FOLDER, default jobs/), into sweep RUNS_DIR/NAME where it lacks them. A sweep longer than one machine's
    # session goes on where another machine left it: the records of the jobs it completed there are
    # committed (no checkpoints; keep.sh --completed keeps them while the sweep runs), and here those jobs are skipped as completed.
    local src="$out/${2:-jobs}" dest="$runs/$1" job n
    for job in "$src"/[0-9]*/; do
        n=$(basename "$job")
        if [ ! -f "$job/status.json" ] || [ -e "$dest/$n" ] \
            || ! grep -q '"status": "completed"' "$job/status.json"; then continue; fi
        mkdir -p "$dest/$n"
        cp -R "$job/." "$dest/$n/"
        echo "$dest/$n: completed before (restored from $job)"
    done
}

keep_records() {  # keep_records NAME [FOLDER]: the records of each job of sweep RUNS_DIR/NAME (no
    # checkpoints, no W&B files) into this experiment's FOLDER (default jobs/): ./keep.sh
    "$root/experiments/keep.sh" "$runs/$1" "$out/${2:-jobs}"
}
