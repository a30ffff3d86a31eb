#!/usr/bin/env bash
# Entity F1 and POS of a pipeline with each int8 choice, on dev and test (issue 10):
# writes metrics/int8/{none,attention,ffn,all}_{dev,test}.json and prints a table.
# usage: bash scripts/int8_eval.sh MODEL [CORPUS_DIR]
set -euo pipefail
model=$1; corpus=${2:-corpus}
py=${PYTHON:-$(command -v python || command -v python3)}
mkdir -p metrics/int8
for part in none attention ffn all; do
  for split in dev test; do
    opt=(); [ "$part" != none ] && opt=(--int8 "$part")
    "$py" -m spacy_posattn evaluate "$model" "$corpus/$split.spacy" "${opt[@]}" \
      --output "metrics/int8/${part}_${split}.json" > /dev/null
  done
done
"$py" - <<'PY'
import json
rows = ["| int8 part | dev entity F1 | test entity F1 | test POS | test words/s |", "|---|---|---|---|---|"]
for part in ("none", "attention", "ffn", "all"):
    d, t = (json.load(open(f"metrics/int8/{part}_{s}.json")) for s in ("dev", "test"))
    rows.append(f"| {part} | {100 * d['ents_f']:.2f} | {100 * t['ents_f']:.2f} | {100 * t['tag_acc']:.2f} | {t.get('words_per_second', 0):,.0f} |")
print("\n".join(rows))
PY
