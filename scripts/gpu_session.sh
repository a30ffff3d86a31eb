#!/usr/bin/env bash
# One GPU session (issues 8 and 10), within BUDGET_S seconds of wall time:
#   1. stage 1 of the default training (heads on cached frozen features, $CONFIG, the CPU
#      recipe's batches of 1,000 words and peak rate 1e-3) for at most STAGE1_S seconds:
#      progress lines, dev F1 per epoch, then test scores of its model-best;
#   2. nlp.pipe words/s of that pipeline in fp16 (mixed precision) on $BENCH_DATA's single
#      sentences and 10-sentence Docs, at batch 256 and 1,024; then a cProfile of nlp.pipe
#      on the single sentences (`spacy_posattn profile`); skipped with SPEED=0;
#   3. stage 2 (configs/posattn_minilm_warm.cfg, the whole pipeline fine-tuned from
#      stage 1) for the time left, evaluated every 100 steps, then test scores;
#   4. minutes to a dev entity F1 of TARGET (default 84), by scripts/time_to_f1.py.
# Every line of the training logs starts with the seconds since the session's start.
# Everything lands in OUT_DIR/session.tar.gz (a GPU machine returns at most 8 files) and
# the timeline in OUT_DIR/session.txt.
# usage: bash scripts/gpu_session.sh ENCODER OUT_DIR [BUDGET_S] [EPOCHS]
#   env: CORPUS (default corpus: {train,dev,test}.spacy), BENCH_DATA (default
#   corpus/n10/test.spacy), PYTHON (default python3), GPU_ID (default 0), CONFIG (default
#   configs/posattn_minilm_gpu.cfg), STAGE1_S (default 45 % of the budget), LIMIT (Docs
#   per corpus and benchmark, 0: all; for a dry run on CPU), SPEED, TARGET.
#   Dry run on CPU (as run in session 13; with far fewer Docs, dev has tags that train lacks):
#   GPU_ID=-1 CONFIG=configs/posattn_minilm.cfg LIMIT=2000 bash scripts/gpu_session.sh bundled:all-minilm-l6-v2 /tmp/dry 420 1
set -uo pipefail
enc=$1; out=$2; budget=${3:-480}; epochs=${4:-4}
py=${PYTHON:-python3}
corpus=${CORPUS:-corpus}
bench_data=${BENCH_DATA:-corpus/n10/test.spacy}
gpu=${GPU_ID:-0}
config=${CONFIG:-configs/posattn_minilm_gpu.cfg}
stage1_s=${STAGE1_S:-$(( budget * 45 / 100 ))}
limit=${LIMIT:-0}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$out/files"
work=$(mktemp -d)
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
stamp() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$out/session.txt"; }
timestamped() { while IFS= read -r line; do printf '%d %s\n' $(( $(printf '%(%s)T' -1) - start )) "$line"; done; }
# At exit, however it ends: pack what came out, and free the models and features.
finish() { tar -czf "$out/session.tar.gz" -C "$out" files session.txt 2>/dev/null; rm -rf "$work"; }
trap finish EXIT
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU (GPU_ID=$gpu)"; } > "$out/session.txt"
limits=(--corpora.train.limit "$limit" --corpora.dev.limit "$limit")
f=$out/files

stamp "stage 1: train-cached, $epochs epochs, at most $stage1_s s"
timeout "$stage1_s" "$py" -m spacy_posattn train-cached "$config" "$work/heads" \
  --epochs "$epochs" --cache-dir "$work/features" --gpu-id "$gpu" --paths.train "$corpus/train.spacy" \
  --paths.dev "$corpus/dev.spacy" --paths.encoder "$enc" --training.optimizer.learn_rate.initial_rate 0.001 \
  --training.batcher.size 1000 "${limits[@]}" 2>&1 | timestamped > "$f/stage1.log"
stamp "stage 1 rc=${PIPESTATUS[0]}"
cp "$work/heads/train_log.jsonl" "$f/stage1_train_log.jsonl" 2>/dev/null
if [ -d "$work/heads/model-best" ]; then
  timeout 90 "$py" -m spacy_posattn evaluate "$work/heads/model-best" "$corpus/test.spacy" --gpu-id "$gpu" \
    --batch-size 256 --output "$f/stage1_test.json" >> "$f/stage1.log" 2>&1
  stamp "stage 1 test: $(grep -h -E 'entity P|POS acc' "$f/stage1_test.md" 2>/dev/null | tr '\n' ' ')"
fi

if [ "${SPEED:-1}" != 0 ] && [ -d "$work/heads/model-best" ]; then
  for batch in 256 1024; do
    stamp "speed: nlp.pipe, batch $batch"
    timeout 100 "$py" -m spacy_posattn benchmark \
      "posattn_fp16=$work/heads/model-best" "$bench_data" --limit "$limit" --gpu-id "$gpu" --batch-size "$batch" --rounds 3 \
      --output "$f/benchmark_gpu_b$batch.md" >> "$f/speed.log" 2>&1
    stamp "speed rc=$? $(grep -h '^| posattn' "$f/benchmark_gpu_b$batch.md" 2>/dev/null | tr '\n' ' ')"
  done
  timeout 60 "$py" -m spacy_posattn profile "$work/heads/model-best" "$bench_data" --sentences --limit "$limit" \
    --batch-size 1024 --gpu-id "$gpu" --output "$f/profile_gpu_sentences.md" >> "$f/speed.log" 2>&1
  stamp "profile rc=$?"
fi

steps_s=$(( $(left) - 45 ))
if [ ! -d "$work/heads/model-best" ]; then
  stamp "stage 2 skipped: stage 1 saved no model-best (no epoch finished within its time)"
  steps_s=0
fi
if [ "$steps_s" -gt 60 ]; then
  stamp "stage 2: warm fine-tune for $steps_s s"
  timeout "$steps_s" "$py" -m spacy train configs/posattn_minilm_warm.cfg --output "$work/full" --gpu-id "$gpu" \
    --paths.heads "$work/heads/model-best" --paths.train "$corpus/train.spacy" --paths.dev "$corpus/dev.spacy" \
    --training.eval_frequency 100 --training.logger.progress_bar false "${limits[@]}" 2>&1 | timestamped > "$f/stage2.log"
  stamp "stage 2 rc=${PIPESTATUS[0]}"
  if [ -d "$work/full/model-best" ]; then
    timeout 40 "$py" -m spacy_posattn evaluate "$work/full/model-best" "$corpus/test.spacy" --gpu-id "$gpu" \
      --batch-size 256 --output "$f/stage2_test.json" >> "$f/stage2.log" 2>&1
    stamp "stage 2 test: $(grep -h -E 'entity P|POS acc' "$f/stage2_test.md" 2>/dev/null | tr '\n' ' ')"
  fi
fi
rm -f "$f"/*.png
"$py" "$(dirname "$0")/time_to_f1.py" "$f" "${TARGET:-84}" > "$f/time_to_f1.md"
tail -2 "$f/time_to_f1.md"
stamp "done"
