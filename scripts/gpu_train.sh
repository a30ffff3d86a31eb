#!/usr/bin/env bash
# Train, evaluate and time the GPU config on a GPU machine, within a wall-time budget.
# Times the loop first (60 steps), then gives each run as many steps as fit its budget.
# usage: bash scripts/gpu_train.sh ENCODER BUDGET_S OUT_DIR "N [N ...]"
#   with corpus/n$N/{train,dev,test}.spacy for each N (sentences per Doc); GPU_ID (default 0;
#   -1: CPU, with the CPU config); PYTHON: the interpreter (default: the python on PATH, e.g.
#   the activated venv's, else python3).
set -uo pipefail
enc=$1; budget=$2; out=$3; ns=$4
gpu=${GPU_ID:-0}
if [ "$gpu" -ge 0 ]; then default_cfg=configs/posattn_minilm_gpu.cfg; else default_cfg=configs/posattn_minilm.cfg; fi
cfg=${CFG:-$default_cfg}
py=${PYTHON:-$(command -v python || command -v python3)}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/plan.txt" 2>/dev/null || echo "CPU" > "$out/plan.txt"
first=${ns%% *}
common=(--paths.encoder "$enc" --gpu-id "$gpu" --training.logger.progress_bar false ${EXTRA_ARGS:-})
"$py" -m spacy train "$cfg" "${common[@]}" --output /tmp/gpu_probe \
  --paths.train "corpus/n$first/train.spacy" --paths.dev "corpus/n$first/dev.spacy" \
  --training.max_steps 60 --training.eval_frequency 1000 --corpora.dev.limit 20 > "$out/probe.log" 2>&1
per_step=$(grep -o 'step 50 [^:]*: [0-9.]*' "$out/probe.log" | awk '{print $NF}')
[ -n "$per_step" ] || { echo "probe failed"; tail -40 "$out/probe.log"; exit 1; }
# 85% of the budget for steps; the rest for the periodic dev evaluations.
steps=$("$py" -c "print(max(100, int(0.85 * $budget / $per_step)))")
echo "probe: $per_step s/step -> $steps steps per run" | tee -a "$out/plan.txt"
for n in $ns; do
  start=$(date +%s)
  timeout $((budget * 2)) "$py" -m spacy train "$cfg" "${common[@]}" --output "/tmp/gpu_n$n" \
    --paths.train "corpus/n$n/train.spacy" --paths.dev "corpus/n$n/dev.spacy" \
    --training.max_steps "$steps" > "$out/train_n$n.log" 2>&1
  rc=$?
  echo "n_sents=$n steps=$steps train_wall_s=$(( $(date +%s) - start )) rc=$rc" | tee -a "$out/plan.txt"
  "$py" -m spacy_posattn evaluate "/tmp/gpu_n$n/model-best" "corpus/n$n/test.spacy" --gpu-id "$gpu" \
    --batch-size 256 --output "$out/test_n$n.json" >> "$out/train_n$n.log" 2>&1 || tail -20 "$out/train_n$n.log"
  grep -E "entity P|flat F1|POS acc|speed" "$out/test_n$n.md" 2>/dev/null
  rm -f "$out/test_n$n.md"  # the JSON holds the same; at most 8 files come back from a GPU machine
done
"$py" scripts/n_sents_table.py "$out" | tee "$out/n_sents.md"
