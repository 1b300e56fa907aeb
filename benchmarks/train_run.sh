# Sourced by the benchmark run scripts (stability/ye2018_runs.sh, tensors/run.sh,
# phonons/run_models.sh, finetune/learning_curve.sh, fidelity/equal_budget.sh,
# mp2018_5k_models/run.sh, uncertainty/ood/run.sh):
# one matgnn.train run per call, resumable and loud about failure.
#   train_run <run folder> <matgnn.train overrides...>
# A finished run (test_metrics.json) is skipped; a killed one continues from its last checkpoint
# (ckpt_path=last); the output is appended to <run folder>.log and the run's test-metrics line
# echoed; a failed run (an error, or an exit without <run folder>/test_metrics.json) stops the
# calling script, naming its log, so no run drops out of a table unseen. Each attempt appends
# the code it ran to <run folder>/commits.txt: the commit of the working directory, marked
# "+ uncommitted matgnn/" when matgnn/ differed from it, and the time; and the machine to
# <run folder>/machines.txt (CPU model, cores, time). Uses the `python` on PATH.
train_run_machine() {  # the CPU model and the cores this process may use
    local cpu
    cpu=$(grep -m1 "model name" /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || true)
    echo "${cpu:-unknown CPU}, $(nproc) cores"
}
train_run() {
    local dir=$1
    shift
    if [ -f "$dir/test_metrics.json" ]; then
        echo "DONE $dir (skipped)"
        return 0
    fi
    local resume=()
    [ -f "$dir/checkpoints/last.ckpt" ] && resume=(ckpt_path=last)
    mkdir -p "$dir"
    local commit
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
    if [ -n "$(git status --porcelain -- matgnn 2>/dev/null)" ]; then
        commit="$commit + uncommitted matgnn/"
    fi
    echo "$commit $(date -u +%FT%TZ)" >> "$dir/commits.txt"
    # and the machine it ran on (a time per epoch compares only within one machine)
    echo "$(train_run_machine) $(date -u +%FT%TZ)" >> "$dir/machines.txt"
    echo "START $dir $(date -u +%FT%TZ)"
    if ! python -m matgnn.train "$@" "${resume[@]}" "hydra.run.dir=$dir" >> "$dir.log" 2>&1; then
        echo "FAILED $dir: see $dir.log" >&2
        exit 1
    fi
    if [ ! -f "$dir/test_metrics.json" ]; then
        echo "FAILED $dir: it ended without test_metrics.json; see $dir.log" >&2
        exit 1
    fi
    grep -E "test metrics" "$dir.log" | tail -n 1 || true
}
