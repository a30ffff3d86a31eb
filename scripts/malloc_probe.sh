#!/usr/bin/env bash
# Seconds per step, kernel time and peak memory of CPU training under several
# glibc mmap thresholds (spacy-posattn.malloc_mmap_threshold.v1; 0 = glibc's own).
# Usage: bash scripts/malloc_probe.sh CONFIG STEPS "THRESHOLD ..." OUT_DIR
set -euo pipefail
config=${1:-configs/posattn_minilm.cfg}
steps=${2:-151}
thresholds=${3:-"65536 1048576 0"}
out=${4:-metrics/malloc_probe}
mkdir -p "$out"
for t in $thresholds; do
  /usr/bin/time -v -o "$out/time_$t.txt" python -m spacy train "$config" --output "$out/train_$t" \
    --training.max_steps "$steps" --training.eval_frequency 100000 \
    --initialize.before_init.threshold "$t" > "$out/log_$t.txt" 2>&1
  per_step=$(grep -o "[0-9.]* s/step" "$out/log_$t.txt" | tail -1)
  sys_s=$(grep 'System time' "$out/time_$t.txt" | awk '{print $NF}')
  user_s=$(grep 'User time' "$out/time_$t.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident' "$out/time_$t.txt" | awk '{print $NF}')
  faults=$(grep 'Minor' "$out/time_$t.txt" | awk '{print $NF}')
  echo "threshold $t: last ${per_step}, user ${user_s} s, system ${sys_s} s, peak RSS $((rss / 1024)) MiB, minor faults ${faults}" | tee -a "$out/summary.txt"
done
