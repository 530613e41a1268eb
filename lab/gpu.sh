#!/usr/bin/env bash
# Today's GPU checks, for a lent GPU: the speedrun over ten seeds (lab/benchmark.py, no baseline: the GPU's
# time is its own), then Net's 19 epochs (lab/train.py: the notebook's recipe and code path), into $OUT.
#   bash lab/gpu.sh                 # on the GPU machine, with data/ beside it (the device tool: carry ["data"])
#   SMOKE_TEST=1 bash lab/gpu.sh    # the same two commands on a CPU in a minute: 1 seed, 2,000 images (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu}
if [[ $# -ne 0 ]]; then
  echo "usage: bash lab/gpu.sh   (SMOKE_TEST=1 for the smoke run on a CPU)" >&2
  exit 2
fi
if [[ "${SMOKE_TEST:-}" == "1" ]]; then
  dev=cpu speedrun=(--seeds 1) net=(--epochs 1)
else
  dev=cuda speedrun=() net=()
fi
# Both outputs are checked before either command runs, and neither command may overwrite: nothing found is lost.
for found in "$out/speedrun.json" "$out/net_seed1"; do
  if [[ -e "$found" ]]; then
    echo "error: $found already exists; choose another OUT: nothing is overwritten here" >&2
    exit 2
  fi
done
python -m lab.benchmark --speedrun --device "$dev" --skip-baseline "${speedrun[@]}" --out "$out/speedrun.json"
python -m lab.train --device "$dev" --no-progress "${net[@]}" --out "$out/net_seed1"
