"""Tabulate a scripts/gpu_train.sh run: test scores per sentences-per-Doc setting.

usage: python scripts/n_sents_table.py RUN_DIR > results/n_sents.md
"""
import json
import re
import sys
from pathlib import Path

run = Path(sys.argv[1])
plan = (run / "plan.txt").read_text()
machine = plan.splitlines()[0]
walls = {m[0]: (m[1], m[2]) for m in re.findall(r"n_sents=(\d+) steps=(\d+) train_wall_s=(\d+)", plan)}
print(f"Sentences per Doc, equal step budget (`bash scripts/gpu_train.sh`), test split, {machine}.\n")
print("| sentences per Doc | steps | train wall s | test ents F1 | P | R | POS acc | words/s |")
print("|---|---|---|---|---|---|---|---|")
for n, (steps, wall) in sorted(walls.items(), key=lambda kv: int(kv[0])):
    s = json.loads((run / f"test_n{n}.json").read_text())
    print(
        f"| {n} | {steps} | {wall} | {100 * s['ents_f']:.2f} | {100 * s['ents_p']:.2f} | "
        f"{100 * s['ents_r']:.2f} | {100 * s['tag_acc']:.2f} | {s['words_per_second']:,.0f} |"
    )
