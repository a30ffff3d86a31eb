#!/usr/bin/env bash
# Which number of sentences per Doc (document context for the encoder) trains best?
# Same config, same number of words per step, same step budget; dev entity F1 per N.
# usage: bash scripts/sweep_n_sents.sh GMB_ZIP STEPS "1 4 10" [EXTRA spacy train ARGS...]
set -euo pipefail
src=$1; steps=$2; ns=$3; shift 3
mkdir -p corpus/sweep training/sweep results
out=results/n_sents.md
echo "| sentences per Doc | steps | dev ents F1 | dev tag acc | train wall s |" > "$out"
echo "|---|---|---|---|---|" >> "$out"
for n in $ns; do
  python -m spacy_posattn convert "$src" "corpus/sweep/n$n" --n-sents "$n" > /dev/null
  start=$(date +%s)
  python -m spacy train configs/posattn_minilm.cfg --output "training/sweep/n$n" \
    --paths.train "corpus/sweep/n$n/train.spacy" --paths.dev "corpus/sweep/n$n/dev.spacy" \
    --training.max_steps "$steps" --training.eval_frequency "$steps" \
    --training.optimizer.learn_rate.warmup_steps $((steps / 5)) \
    --training.logger.progress_bar false "$@"
  wall=$(( $(date +%s) - start ))
  python - "$n" "$steps" "$wall" "training/sweep/n$n/model-last/meta.json" >> "$out" <<'PY'
import json, sys
n, steps, wall, meta = sys.argv[1:]
perf = json.load(open(meta))["performance"]
print(f"| {n} | {steps} | {perf['ents_f']:.4f} | {perf['tag_acc']:.4f} | {wall} |")
PY
done
echo "machine: $(nproc) CPU cores, $(python -c 'import platform; print(platform.processor() or platform.machine())')" >> "$out"
cat "$out"
