#!/usr/bin/env bash
# Side by side: run the benchmarks for two commits, alternating (base, head, base, head),
# each from its own git worktree, so a slow minute of the machine hits both.
#
#   bash benchmarks/side_by_side.sh BASE [HEAD] [REPS]      (HEAD defaults to HEAD, REPS to 2)
#
# Figures go to stdout (and side_by_side-<base>-<head>.txt). Nothing is written to the
# README: run it on a quiet machine and copy the figures by hand, with both runs of each.
set -euo pipefail
base=${1:?usage: side_by_side.sh BASE [HEAD] [REPS]}
head=${2:-HEAD}
reps=${3:-2}
repo=$(git rev-parse --show-toplevel)
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/base" 2>/dev/null || true;
      git -C "$repo" worktree remove --force "$work/head" 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add -q --detach "$work/base" "$base"
git -C "$repo" worktree add -q --detach "$work/head" "$head"
out="$repo/side_by_side-$(git -C "$repo" rev-parse --short "$base")-$(git -C "$repo" rev-parse --short "$head").txt"
: > "$out"
for rep in $(seq "$reps"); do
  for side in base head; do
    tree="$work/$side"
    for bench in "expand_and_ingest.py --cells 100000" "emulator_throughput.py" \
                 "million.py --cells 100000" "scoring_throughput.py"; do
      echo "=== $side rep $rep $bench" | tee -a "$out"
      (cd "$tree" && PYTHONPATH="$tree/src" $python benchmarks/$bench --no-readme 2>&1) \
        | grep -v "^Warn" | tee -a "$out"
    done
  done
done
echo "written: $out"
