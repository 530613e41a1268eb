#!/usr/bin/env bash
# Validation rows: SpeedNet with the speedrun recipe and one lever at a time, the small rungs with their own
# recipes, and the architecture's story. Every run goes through lab/train.py, whose sweep JSON records the command,
# machine and every epoch; that JSON is the row's result: lab/results/ablation/NAME.json. The run folders
# (checkpoints, logs) stay in runs/ablation/, which git ignores. Rows of tools that did not pay left with their
# code (docs/speed.md says which); their results stay in lab/results/ablation/, each with its command and commit.
# A row whose result or run folder exists is refused before any row trains: nothing is overwritten (no --force).
# Usage: bash lab/ablation.sh ROW...   (or: bash lab/ablation.sh --all)
# Each row: NAME then lab/train.py flags; `--val-split 10000 --tta` always, and `--model speedrun` and `--seeds 1-3`
# unless the row names its own (a model's recipe is its entry in toolbox.RECIPES).
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A ROWS=(
  [base_ep8]="--epochs 8"
  [base_ep5]="--epochs 5"
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
  # The architecture's story (README): the task statement's network, then Net's shape, under Net's recipe
  # (seed 1; the two pool positions that single seeds could not separate, seeds 1-3).
  [arch_baseline]="--model baseline --seeds 1"
  [arch_w16_pool2]="--model net --widths 16,16,16,16,16"
  [arch_w16_pool1]="--model net --widths 16,16,16,16,16 --pool-after 1"
  [arch_w16_pool3]="--model net --widths 16,16,16,16,16 --pool-after 3 --seeds 1"
  [arch_w20_pool2]="--model net --widths 20,20,20,20,20 --seeds 1"
  [arch_net]="--model net --seeds 1"
  # On a CPU without native bf16 (fp32), the speedrun's recipe against less work at full resolution, where
  # the profile puts the time (the pool after conv1).
  [framed_ep4_fp32]="--model framed --precision fp32 --epochs 4"
  [framed_ep4_fp32_pool1]="--model framed --precision fp32 --pool-after 1 --epochs 4"
  [framed_ep4_fp32_pool1_ep5]="--model framed --precision fp32 --pool-after 1 --epochs 5"
  [framed_ep4_bf16]="--model framed --precision bf16 --epochs 4 --seeds 1"  # emulated where the CPU has no native bf16
  # Under the rule of docs/speed.md (ten seeds): the speedrun's recipe with more epochs.
  [framed_ep8_fp32_s10]="--model framed --precision fp32 --epochs 8 --seeds 1-10"
  [framed_ep8_bf16_s10]="--model framed --precision bf16 --epochs 8 --seeds 1-10"  # what auto runs where bf16 is native
)
if [[ $# -eq 0 ]]; then
  echo "usage: bash lab/ablation.sh ROW... | --all   (rows: ${!ROWS[*]})" >&2
  exit 2
fi
[[ "$*" == "--all" ]] && set -- "${!ROWS[@]}"
declare -A seen=()
for name in "$@"; do  # every name is checked before any row trains
  if [[ -z "$name" || ! -v "ROWS[$name]" ]]; then
    echo "error: no row named '$name' in lab/ablation.sh (rows: ${!ROWS[*]})" >&2
    exit 2
  elif [[ -v "seen[$name]" ]]; then
    echo "error: row '$name' is named twice" >&2
    exit 2
  fi
  seen[$name]=1
done
for name in "$@"; do  # and every output: a result is written after hours of training, so refused now if it cannot be
  result="lab/results/ablation/$name.json"
  if [[ -d "$result" || (-d lab/results/ablation && ! -w lab/results/ablation) ]]; then
    echo "error: cannot write $result" >&2
    exit 2
  elif [[ -e "$result" || -e "runs/ablation/$name" ]]; then
    echo "error: $result or runs/ablation/$name already exists: move it away to run the row again" >&2
    exit 2
  fi
done
for name in "$@"; do
  flags="${ROWS[$name]}"
  [[ "$flags" == *--model* ]] || flags="--model speedrun $flags"
  [[ "$flags" == *--seeds* ]] || flags="$flags --seeds 1-3"
  out="runs/ablation/$name"
  # shellcheck disable=SC2086  # the row's flags are words
  python -m lab.train $flags --val-split 10000 --tta --no-progress --out "$out/seed{seed}"
  cp -n "$out"/*_val_seeds.json "lab/results/ablation/$name.json"
done
