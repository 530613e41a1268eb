#!/usr/bin/env bash
# Today's GPU checks, for a lent GPU: the speedrun over ten seeds (lab/benchmark.py, no baseline: the GPU's
# time is its own), then Net's 19 epochs (train.py: the notebook's recipe and code path), into $OUT.
#   bash lab/gpu.sh           # on the GPU machine, with data/ beside it (the device tool: carry ["data"])
#   bash lab/gpu.sh --smoke   # the same two commands on a CPU in a minute: 1 seed, 1,000 images (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu}
if [[ $# -eq 1 && "$1" == "--smoke" ]]; then
  dev=cpu speedrun=(--seeds 1 --limit-train 1000) net=(--epochs 2 --limit-train 1000)
elif [[ $# -eq 0 ]]; then
  dev=cuda speedrun=() net=()
else
  echo "usage: bash lab/gpu.sh [--smoke]" >&2
  exit 2
fi
# No --force: a folder that holds an earlier run (or the committed results/gpu) is refused, never overwritten.
python -m lab.benchmark --speedrun --device "$dev" --skip-baseline "${speedrun[@]}" --out "$out/speedrun.json"
python train.py --device "$dev" --no-progress "${net[@]}" --out "$out/net_seed1"
