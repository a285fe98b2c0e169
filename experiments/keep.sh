#!/usr/bin/env bash
# The records of a sweep's jobs, to commit beside an experiment:
#   experiments/keep.sh [--completed] SWEEP_DIR FOLDER
# copies each job N's config.yaml, metrics.csv, status.json, signal.csv, train_curve.csv and Hydra's record
# (.hydra/*.yaml) into FOLDER/N (those the job wrote: one that failed early wrote fewer), and the
# sweep's sweep.yaml and multirun.yaml into FOLDER; no checkpoints, no W&B files. Every run.sh keeps
# all its jobs so when its sweep has ended (common.sh's keep_records). --completed keeps only the
# jobs that completed, and may run while the sweep goes on: a sweep longer than one machine's
# session is committed job by job, and on the next machine run.sh restores those jobs
# (restore_records) and skips them. A completed job already kept (the same status.json) is left as
# it was kept.
set -euo pipefail
completed=false
if [ "${1:-}" = --completed ]; then completed=true; shift; fi
if [ $# -ne 2 ]; then
    echo "usage: experiments/keep.sh [--completed] SWEEP_DIR FOLDER" >&2
    exit 2
fi
src=${1%/} dest=${2%/}
if [ ! -f "$src/multirun.yaml" ]; then
    echo "error: $src is not a sweep's folder (no multirun.yaml); give the hydra.sweep.dir of a sweep" >&2
    exit 2
fi
completed_job() { grep -q '"status": "completed"' "$1/status.json" 2>/dev/null; }  # completed_job DIR
kept=0 already=0
for job in "$src"/[0-9]*/; do
    [ -d "$job" ] || continue
    if $completed && ! completed_job "$job"; then continue; fi
    n=$(basename "$job")
    # A job kept as completed, with this very status.json, is left as kept: a later launch of the
    # sweep skips it but Hydra rewrites its .hydra/ record there (that launch's cwd and code).
    if completed_job "$dest/$n" && cmp -s "$job/status.json" "$dest/$n/status.json"; then already=$((already + 1)); continue; fi
    mkdir -p "$dest/$n/.hydra"
    for f in config.yaml metrics.csv status.json signal.csv train_curve.csv; do  # those it wrote: one that failed early has fewer
        if [ -f "$job/$f" ]; then cp "$job/$f" "$dest/$n/"; fi
    done
    for f in "$job"/.hydra/*.yaml; do
        if [ -f "$f" ]; then cp "$f" "$dest/$n/.hydra/"; fi
    done
    kept=$((kept + 1))
done
mkdir -p "$dest"
if [ "$kept" -gt 0 ] || [ ! -f "$dest/multirun.yaml" ]; then  # the sweep's record, of the launch that last trained
    cp "$src/sweep.yaml" "$src/multirun.yaml" "$dest/"
fi
which=job; if $completed; then which="completed job"; fi
echo "kept the records of $kept ${which}(s) of $src in $dest ($already kept before, left as they were)"
