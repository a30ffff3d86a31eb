#!/usr/bin/env bash
# One GPU session (issues 8 and 10), within BUDGET_S seconds of wall time:
#   1. stage 1 of the default training (heads on cached frozen features,
#      configs/posattn_minilm_gpu.cfg, the CPU recipe's batches of 1,000 words),
#      dev F1 and seconds per epoch, then test scores;
#   2. nlp.pipe words/s of that pipeline in fp16 (mixed precision), sentences and docs
#      (skipped with SPEED=0);
#   3. stage 2 (configs/posattn_minilm_warm.cfg, whole pipeline fine-tuned from
#      stage 1) for the time left, evaluated every 100 steps, then test scores;
#   4. minutes to a dev entity F1 of TARGET (default 84), by scripts/time_to_f1.py.
# Every line of the training logs starts with the seconds since the session's start.
# usage: bash scripts/gpu_session.sh ENCODER OUT_DIR [BUDGET_S] [EPOCHS]
#   with $CORPUS/{train,dev,test}.spacy (CORPUS default: corpus); PYTHON: the
#   interpreter (default python3).
set -uo pipefail
enc=$1; out=$2; budget=${3:-480}; epochs=${4:-4}
py=${PYTHON:-python3}
corpus=${CORPUS:-corpus}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
stamp() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$out/session.txt"; }
timestamped() { while IFS= read -r line; do printf '%d %s\n' $(( $(printf '%(%s)T' -1) - start )) "$line"; done; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/session.txt" 2>&1

stamp "stage 1: train-cached, $epochs epochs"
timeout $(( budget / 2 )) "$py" -m spacy_posattn train-cached configs/posattn_minilm_gpu.cfg /tmp/heads \
  --epochs "$epochs" --cache-dir /tmp/features --gpu-id 0 --paths.train "$corpus/train.spacy" \
  --paths.dev "$corpus/dev.spacy" --paths.encoder "$enc" --training.optimizer.learn_rate.initial_rate 0.001 \
  --training.batcher.size 1000 2>&1 | timestamped > "$out/stage1.log"
stamp "stage 1 rc=${PIPESTATUS[0]}"
cp /tmp/heads/train_log.jsonl "$out/stage1_train_log.jsonl" 2>/dev/null
[ -d /tmp/heads/model-best ] && timeout 90 "$py" -m spacy_posattn evaluate /tmp/heads/model-best "$corpus/test.spacy" --gpu-id 0 \
  --batch-size 256 --output "$out/stage1_test.json" >> "$out/stage1.log" 2>&1
stamp "stage 1 test: $(grep -h -E 'entity P|POS acc' "$out/stage1_test.md" 2>/dev/null | tr '\n' ' ')"
rm -f "$out"/*.png "$out/stage1_test.md"

if [ "${SPEED:-1}" != 0 ]; then
  stamp "speed: fp16 nlp.pipe"
  timeout 100 "$py" -m spacy_posattn benchmark "posattn_fp16=/tmp/heads/model-best" "$corpus/test.spacy" \
    --gpu-id 0 --batch-size 256 --rounds 3 --output "$out/benchmark_gpu.md" > "$out/benchmark.log" 2>&1
  stamp "speed rc=$?"
fi

steps_s=$(( $(left) - 60 ))
if [ ! -d /tmp/heads/model-best ]; then
  stamp "stage 2 skipped: stage 1 saved no model-best (no epoch finished within its time)"
  steps_s=0
else
  stamp "stage 2: warm fine-tune for $steps_s s"
fi
if [ "$steps_s" -gt 60 ]; then
  timeout "$steps_s" "$py" -m spacy train configs/posattn_minilm_warm.cfg --output /tmp/full --gpu-id 0 \
    --paths.heads /tmp/heads/model-best --paths.train "$corpus/train.spacy" --paths.dev "$corpus/dev.spacy" \
    --training.eval_frequency 100 --training.logger.progress_bar false 2>&1 | timestamped > "$out/stage2.log"
  stamp "stage 2 rc=${PIPESTATUS[0]}"
  if [ -d /tmp/full/model-best ]; then
    timeout 60 "$py" -m spacy_posattn evaluate /tmp/full/model-best "$corpus/test.spacy" --gpu-id 0 \
      --batch-size 256 --output "$out/stage2_test.json" >> "$out/stage2.log" 2>&1
    stamp "stage 2 test: $(grep -h -E 'entity P|POS acc' "$out/stage2_test.md" 2>/dev/null | tr '\n' ' ')"
    rm -f "$out"/*.png "$out/stage2_test.md"
  fi
fi
"$py" "$(dirname "$0")/time_to_f1.py" "$out" "${TARGET:-84}" | tail -2
stamp "done"
