#!/usr/bin/env bash
# Third device check: validation sweeps for NetMicro, NetNano (incl. depthwise-separable SepNets) and
# Net's learning-rate schedule; the best (mean over seeds 1-3 on validation) then runs seeds 1-5 on test.
set -uo pipefail
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
DEV=${DEV:-cuda}; EXTRA=${EXTRA:-}; P=${P:-16}
mkdir -p data && tar xzf .gpu/mnist.tgz -C data
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import torch, platform; print('torch', torch.__version__, '| python', platform.python_version())"
[ "$DEV" = cuda ] && { nvidia-cuda-mps-control -d && echo "MPS daemon started" || echo "no MPS"; }
R=gpu_results3; mkdir -p $R/tuning $R/logs
pack() { tar czf $OUT/results.tgz $R; }
DET=--deterministic
python3 train.py --device $DEV $DET --threads 1 --no-progress --model sepnet --limit-train 256 --epochs 1 \
  --val-split 10000 --out /tmp/smoke > $R/logs/smoke.log 2>&1 || { DET=; echo "sepnet not deterministic here: runs without --deterministic"; tail -3 $R/logs/smoke.log; }
TR="python3 train.py --device $DEV $DET --threads 1 --no-progress"
LIGHT="--rotate 5 --shift 1 --scale 0.05"
declare -A CAND=(
  [net_base]="--model net"
  [net_lr0.03]="--model net --lr 0.03"
  [net_lr0.02]="--model net --lr 0.02"
  [net_lr0.03_wu0.1]="--model net --lr 0.03 --warmup 0.1"
  [micro_base]="--model micro"
  [micro_lr0.1]="--model micro --lr 0.1"
  [micro_light]="--model micro $LIGHT"
  [micro_w4-8-10-10-10]="--model micro --widths 4,8,10,10,10"
  [micro_lr0.1_light_p0.01]="--model micro --lr 0.1 $LIGHT --dropout 0.01"
  [micro_stage444-888-888_lr0.1_p0.01]="--model stagenet --stages 4,4,4/8,8,8/8,8,8 --lr 0.1 --dropout 0.01"
  [micro_sep8-12_16-24_32-32]="--model sepnet --stages 8,12/16,24/32,32"
  [micro_sep8-16_24-32_32]="--model sepnet --stages 8,16/24,32/32"
  [micro_sep8-12_16-24_24-24-24]="--model sepnet --stages 8,12/16,24/24,24,24"
  [micro_sep8-12_16-24_32-32_lr0.1]="--model sepnet --stages 8,12/16,24/32,32 --lr 0.1"
  [nano_base]="--model nano"
  [nano_lr0.1]="--model nano --lr 0.1"
  [nano_light]="--model nano $LIGHT"
  [nano_sep8-12_16-20_20]="--model sepnet --epochs 20 --stages 8,12/16,20/20"
  [nano_sep8_12-16_20-20]="--model sepnet --epochs 20 --stages 8/12,16/20,20"
  [nano_sep6-10_12-16_16-20]="--model sepnet --epochs 20 --stages 6,10/12,16/16,20"
  [nano_sep8-12_16-20_20_lr0.1]="--model sepnet --epochs 20 --stages 8,12/16,20/20 --lr 0.1"
)
val() {  # val NAME SEED: one validation run in the background
  $TR ${CAND[$1]} --seed $2 --val-split 10000 $EXTRA --out "$R/tuning/$1_seed$2" > "$R/logs/val_$1_$2.log" 2>&1 &
}
stamp "phase 1: every candidate on validation, seed 1 (net: seeds 1, 2)"
for name in "${!CAND[@]}"; do val $name 1; done
for name in "${!CAND[@]}"; do [[ $name == net_* ]] && val $name 2; done
wait; stamp "phase 1 done"; pack
stamp "phase 2: the 3 best of each small rung and its base, seeds 2 and 3 on validation"
for rung in micro nano; do
  for name in $(python3 .gpu/choose.py top $R/tuning $rung 3); do val $name 2; val $name 3; done
done
wait; stamp "phase 2 done"; pack
stamp "phase 3: each rung's best mean on validation, unless it is the base, seeds 1-5 on test"
for rung in micro nano net; do
  mode=$([ $rung = net ] && echo net || echo best)
  best=$(python3 .gpu/choose.py $mode $R/tuning $rung)
  echo "$rung: ${best:-the base stays}" | tee $R/logs/chosen_$rung.txt
  [ -n "$best" ] || continue
  for seed in 1 2 3 4 5; do
    $TR $best --seed $seed $EXTRA --out "$R/${rung}_seed$seed" > "$R/logs/test_${rung}_$seed.log" 2>&1 &
  done
done
wait; stamp "phase 3 done"; pack
grep -h "^final" $R/logs/test_*.log
