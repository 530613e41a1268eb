#!/usr/bin/env bash
# Fourth device check: a second round for NetMicro and NetNano, combining the first round's best levers
# (lr 0.1, lighter augmentation, dropout 0.01, separable convs), three validation seeds each; a rung's
# best mean then runs seeds 1-5 on test if it beats the third check's best mean (MICRO_FLOOR, NANO_FLOOR).
set -uo pipefail
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
DEV=${DEV:-cuda}; EXTRA=${EXTRA:-}
mkdir -p data && tar xzf .gpu/mnist.tgz -C data
export PYTHONPATH=$PWD
[ "$DEV" = cuda ] && { nvidia-cuda-mps-control -d && echo "MPS daemon started" || echo "no MPS"; }
R=gpu_results4; mkdir -p $R/tuning $R/logs
pack() { tar czf $OUT/results.tgz $R; }
TR="python3 train.py --device $DEV --deterministic --threads 1 --no-progress"
LIGHT="--rotate 5 --shift 1 --scale 0.05"
declare -A CAND=(
  [micro_sep8-12_16-24_32-32_lr0.1_light_p0.01]="--model sepnet --stages 8,12/16,24/32,32 --lr 0.1 $LIGHT --dropout 0.01"
  [micro_sep8-12_16-24_32-32_light_p0.01]="--model sepnet --stages 8,12/16,24/32,32 $LIGHT --dropout 0.01"
  [micro_w4-8-10-10-10_lr0.1_light_p0.01]="--model micro --widths 4,8,10,10,10 --lr 0.1 $LIGHT --dropout 0.01"
  [nano_sep6-10_12-16_16-20_light_p0.01]="--model sepnet --epochs 20 --stages 6,10/12,16/16,20 $LIGHT --dropout 0.01"
  [nano_sep6-10_12-16_16-20_lr0.1_light_p0.01]="--model sepnet --epochs 20 --stages 6,10/12,16/16,20 --lr 0.1 $LIGHT --dropout 0.01"
  [nano_lr0.1_light_p0.01]="--model nano --lr 0.1 $LIGHT --dropout 0.01"
)
stamp "phase 1: every candidate on validation, seeds 1-3"
for name in "${!CAND[@]}"; do
  for seed in 1 2 3; do
    $TR ${CAND[$name]} --seed $seed --val-split 10000 $EXTRA --out "$R/tuning/${name}_seed$seed" > "$R/logs/val_${name}_$seed.log" 2>&1 &
  done
done
wait; stamp "phase 1 done"; pack
stamp "phase 2: a rung's best mean on validation, if it beats the third check's best, seeds 1-5 on test"
for rung in micro nano; do
  floor=$([ $rung = micro ] && echo "${MICRO_FLOOR:-99.283}" || echo "${NANO_FLOOR:-99.013}")
  best=$(python3 .gpu/choose.py beat $R/tuning $rung $floor)
  echo "$rung (floor $floor): ${best:-none beats it}" | tee $R/logs/chosen_$rung.txt
  [ -n "$best" ] || continue
  for seed in 1 2 3 4 5; do
    $TR $best --seed $seed $EXTRA --out "$R/${rung}_seed$seed" > "$R/logs/test_${rung}_$seed.log" 2>&1 &
  done
done
wait; stamp "phase 2 done"; pack
grep -h "^final" $R/logs/test_*.log
