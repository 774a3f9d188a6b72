#!/usr/bin/env bash
# GPU check: one prepared script for a machine with an NVIDIA GPU, within 8 minutes. Runs the smoke pipeline on
# CUDA, the embedded default's slowest stages (generate_dialogues, train_sft, assess_personality), and the DExperts
# and questionnaire benches, then prints a table: stage, seconds, tokens/s, peak GPU memory.
#
#   bash bench/gpu_check.sh            # from the project root, with .venv set up (make venv) or a CUDA torch
#   OUT=/some/dir bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/big5chat_gpu_check}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export PATH="$(dirname "$PY"):$PATH" HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA here'; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1

results="$OUT/results.tsv"
printf "stage\tseconds\ttokens_per_s\tpeak_gpu_mib\n" > "$results"
peak_file="$OUT/peak.txt"

watch_gpu() {  # peak GPU memory of the whole device while a command runs
  local peak=0 used
  while kill -0 "$1" 2>/dev/null; do
    used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "${used:-0}" -gt "$peak" ] && peak=$used
    sleep 0.5
  done
  echo "$peak" > "$peak_file"
}

timed() {  # timed NAME TOKENS_FILE CMD...
  local name=$1 tokfile=$2; shift 2
  local start end pid
  start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1 & pid=$!
  watch_gpu "$pid" & local watcher=$!
  wait "$pid"; local rc=$?
  wait "$watcher"
  end=$(date +%s.%N)
  local tps="-"
  [ -n "$tokfile" ] && [ -f "$tokfile" ] && tps=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('tokens_per_s','-'))" "$tokfile" 2>/dev/null || echo "-")
  printf "%s\t%.1f\t%s\t%s\n" "$name" "$(echo "$end - $start" | bc)" "$tps" "$(cat "$peak_file")" >> "$results"
  [ $rc -eq 0 ] || echo "!! $name failed (rc $rc): see $OUT/$name.log"
}

# 1. The smoke DAG on CUDA (tiny models): every stage's code path on the GPU.
"$PY" -m big5chat params --profile smoke runtime.device=cuda > /dev/null
timed smoke_pipeline "" dvc repro --force
# 2. The embedded default's slowest stages on CUDA.
"$PY" -m big5chat params --profile default runtime.device=cuda > /dev/null
timed default_upstream "" dvc repro --force prepare_models prepare_data train_experts
timed generate_dialogues reports/runs/generate_dialogues.json dvc repro --force generate_dialogues
timed train_sft "" dvc repro --force train_sft
timed assess_personality "" dvc repro --force assess_personality
# 3. The benches (they print their own ratios).
timed bench_dexperts "" "$PY" bench/dexperts.py --batch 1 16 --dtype bfloat16 --device cuda
timed bench_questionnaire "" "$PY" bench/questionnaire.py --dtype bfloat16 --device cuda
"$PY" -m big5chat params --profile default > /dev/null

echo; column -t -s $'\t' "$results"
echo; tail -n 8 "$OUT/bench_dexperts.log"; tail -n 5 "$OUT/bench_questionnaire.log"
