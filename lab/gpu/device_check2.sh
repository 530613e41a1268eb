#!/usr/bin/env bash
# Second device check: GapNet-shaped candidates for the two small rungs (validation), then seeds 1-5
# of each rung's winner when it beats the first check's best validation run (passed in below).
set -uo pipefail
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
mkdir -p data && tar xzf .gpu/mnist.tgz -C data
export PYTHONPATH=$PWD
nvidia-cuda-mps-control -d && echo "MPS daemon started" || echo "no MPS"
R=gpu_results2; mkdir -p $R/tuning $R/logs
pack() { tar czf $OUT/results.tgz $R; }
TR="python3 train.py --device cuda --deterministic --threads 1 --no-progress"
declare -A CAND=(
  [nano_gap_w4-6-6-7-7_p0.02]="--model gapnet --widths 4,6,6,7,7 --dropout 0.02 --epochs 20"
  [micro_gap_w4-8-8-10-10_p0.01]="--model gapnet --widths 4,8,8,10,10 --dropout 0.01 --epochs 15"
  [nano_gap_w4-6-6-7-7_p0.05]="--model gapnet --widths 4,6,6,7,7 --dropout 0.05 --epochs 20"
  [nano_gap_w4-6-6-7-7_p0.01]="--model gapnet --widths 4,6,6,7,7 --dropout 0.01 --epochs 20"
  [nano_gap_w4-8-6-6-6_p0.05]="--model gapnet --widths 4,8,6,6,6 --dropout 0.05 --epochs 20"
  [nano_gap_w4-6-6-6-7_p0.05]="--model gapnet --widths 4,6,6,6,7 --dropout 0.05 --epochs 20"
)
stamp "phase 1: validation"
for name in "${!CAND[@]}"; do
  $TR ${CAND[$name]} --val-split 10000 --out "$R/tuning/${name}_seed1" > "$R/logs/val_$name.log" 2>&1 &
done
wait; stamp "phase 1 done"; pack
grep -h "final" $R/logs/val_*.log
stamp "phase 2: seeds 1-5 of a rung's winner, if it beats the first check's best on validation"
for rung in micro nano; do
  floor=$([ $rung = micro ] && echo "${MICRO_FLOOR:-99.16}" || echo "${NANO_FLOOR:-98.80}")
  best=$(python3 -c "
import json, glob
runs = [json.load(open(p)) for p in glob.glob('$R/tuning/${rung}_*/history.json')]
best = max(runs, key=lambda r: r['epochs'][-1]['test_acc'])
if best['epochs'][-1]['test_acc'] > $floor:
    print(best['command'].split(' --val-split')[0].split('--no-progress ')[1])")
  echo "$rung (floor $floor): ${best:-none beats it}" | tee $R/logs/chosen_$rung.txt
  [ -n "$best" ] || continue
  for seed in 1 2 3 4 5; do
    $TR $best --seed $seed --out "$R/${rung}_seed$seed" > "$R/logs/test_${rung}_$seed.log" 2>&1 &
  done
done
wait; stamp "phase 2 done"; pack
grep -h "final" $R/logs/test_*.log
