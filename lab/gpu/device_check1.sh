#!/usr/bin/env bash
# The device check, one call: ladder sweeps (validation -> pick -> 5 test seeds), the speedrun on
# the GPU, and the notebook's own code path (19 epochs). Everything lands in $OUT/results.tgz.
set -uo pipefail
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s)
DEV=${DEV:-cuda}; EXTRA=${EXTRA:-}
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
mkdir -p data && tar xzf .gpu/mnist.tgz -C data
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import torch, platform; print('torch', torch.__version__, '| python', platform.python_version())"
[ "$DEV" = cuda ] && { nvidia-cuda-mps-control -d && echo "MPS daemon started" || echo "no MPS"; }
R=gpu_results; mkdir -p $R/tuning $R/logs
pack() { tar czf $OUT/results.tgz $R; }
TR="python3 train.py --device $DEV --deterministic --threads 1 --no-progress"

stamp "phase 1: validation candidates, in parallel"
declare -A CAND=(
  [micro_s444-888-888_p0.05]="--model micro --stages 4,4,4/8,8,8/8,8,8 --dropout 0.05"
  [micro_s444-888-888_p0.01]="--model micro --stages 4,4,4/8,8,8/8,8,8 --dropout 0.01"
  [micro_s444-888-888_p0.05_lr0.02]="--model micro --stages 4,4,4/8,8,8/8,8,8 --dropout 0.05 --lr 0.02"
  [micro_s444-888-8810_p0.05]="--model micro --stages 4,4,4/8,8,8/8,8,10 --dropout 0.05"
  [nano_s444-666-66_p0.05]="--model nano --stages 4,4,4/6,6,6/6,6 --dropout 0.05"
  [nano_s444-666-66_p0.01]="--model nano --stages 4,4,4/6,6,6/6,6 --dropout 0.01"
  [nano_s333-666-66_p0.05]="--model nano --stages 3,3,3/6,6,6/6,6 --dropout 0.05"
  [nano_s44-66-88_p0.05]="--model nano --stages 4,4/6,6/8,8 --dropout 0.05"
)
for name in "${!CAND[@]}"; do
  $TR ${CAND[$name]} --val-split 10000 $EXTRA --out "$R/tuning/${name}_seed1" > "$R/logs/val_$name.log" 2>&1 &
done
wait; stamp "phase 1 done"; pack
grep -h "final" $R/logs/val_*.log

stamp "phase 2: the best candidate of each rung (final validation accuracy), seeds 1-5 on the test set"
for rung in micro nano; do
  best=$(python3 -c "
import json, glob
runs = [json.load(open(p)) for p in glob.glob('$R/tuning/${rung}_*/history.json')]
best = max(runs, key=lambda r: r['epochs'][-1]['test_acc'])
print(best['command'].split(' --val-split')[0].split('--no-progress ')[1])")
  echo "$rung: $best" | tee $R/logs/chosen_$rung.txt
  for seed in 1 2 3 4 5; do
    $TR $best --seed $seed $EXTRA --out "$R/${rung}_seed$seed" > "$R/logs/test_${rung}_$seed.log" 2>&1 &
  done
done
wait; stamp "phase 2 done"; pack
grep -h "final" $R/logs/test_*.log

stamp "phase 3: speedrun on the GPU (1 warm-up + 10 seeds), alone on the GPU"
python3 benchmark.py --speedrun --device $DEV --skip-baseline --seeds ${SEEDS:-1-10} ${BENCH_EXTRA:-} --out $R/speedrun.json 2>&1 | tee $R/logs/speedrun.log
stamp "phase 3 done"; pack

stamp "phase 4: the notebook's code path, full 19 epochs (no SMOKE_TEST, no EXPORT)"
python3 .gpu/notebook.py 2>&1 | grep -v "^$" | tee $R/logs/notebook_gpu.log | tail -40
stamp "phase 4 done"; pack
