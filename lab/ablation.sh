#!/usr/bin/env bash
# The toolbox, one tool at a time, on the validation split: SpeedNet with the speedrun recipe (and the
# small rungs with their own), seeds 1-3, every run through train.py (its history records the command).
# Checkpoints are deleted: nothing loads them. Usage: bash lab/ablation.sh [ROW...]   (default: every row below)
# Each row: NAME then train.py flags on top of `--model speedrun --val-split 10000 --seeds 1-3 --tta`
# (a row's --model replaces speedrun, and its recipe is that model's in utils.RECIPES; the small rungs'
# rows put Muon beside their own recipes).
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A ROWS=(
  [base_ep8]="--epochs 8"
  [base_ep5]="--epochs 5"
  [smooth0.1_ep5]="--epochs 5 --label-smoothing 0.1"
  [ema0.99_ep5]="--epochs 5 --ema 0.99"
  [bnmom0.3_ep5]="--epochs 5 --bn-momentum 0.3"
  [crop2_noaffine_ep5]="--epochs 5 --crop 2 --rotate 0 --shift 0 --scale 0"
  [muon0.02_ep5]="--epochs 5 --muon-lr 0.02"
  [muon0.05_ep5]="--epochs 5 --muon-lr 0.05"
  [framed_ep8]="--model framed --epochs 8"
  [framed_ep5]="--model framed --epochs 5"
  [framed_muon0.02_ep5]="--model framed --epochs 5 --muon-lr 0.02"
  [framed_muon0.02_ep4]="--model framed --epochs 4 --muon-lr 0.02"
  [framed_muon0.02_ep4_bs512]="--model framed --epochs 4 --muon-lr 0.02 --batch-size 512 --lr 0.2"
  [framed_muon0.04_ep4_bs512]="--model framed --epochs 4 --muon-lr 0.04 --batch-size 512 --lr 0.2"
  [framed_muon0.02_ep3]="--model framed --epochs 3 --muon-lr 0.02"
  [framed_muon0.05_ep3]="--model framed --epochs 3 --muon-lr 0.05"
  [net_muon0.02]="--model net --muon-lr 0.02"
  [micro]="--model micro"
  [micro_ep19_light]="--model micro --epochs 19 --lr 0.1 --rotate 5 --shift 1 --scale 0.05 --dropout 0.01"
  [nano]="--model nano"
  [nano_muon0.02]="--model nano --muon-lr 0.02"
  [micro_muon0.02]="--model micro --muon-lr 0.02"
)
for name in "${@:-${!ROWS[@]}}"; do
  out="results/ablation/$name"
  # shellcheck disable=SC2086  # the row's flags are words
  python train.py --model speedrun --val-split 10000 --seeds 1-3 --tta --no-progress ${ROWS[$name]} \
    --out "$out/seed{seed}"
  rm -f "$out"/seed*/model.pt
done
