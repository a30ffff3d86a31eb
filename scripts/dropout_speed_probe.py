"""Seconds per step of stage 1 (heads on cached features) with the blocks'
FastDropout against torch's nn.Dropout, one after the other on this machine.

Each run is `train-cached` on the default config, stopped at step STEPS; the
feature cache must exist (run `spacy project run train-heads` or `fast` first).
usage: python scripts/dropout_speed_probe.py [STEPS] [ROUNDS]
"""
import re
import subprocess
import sys

from spacy_posattn.machine import describe_machine

RUN = """
import sys
import torch.nn
import spacy_posattn.layers.positional_attention as blocks
if sys.argv[1] == "torch":
    blocks.FastDropout = torch.nn.Dropout
from spacy_posattn.cli import app
sys.argv = ["spacy_posattn", "train-cached", "configs/posattn_minilm.cfg", "training/dropout_probe",
            "--epochs", "1", "--cache-dir", "corpus/features",
            "--training.optimizer.learn_rate.initial_rate", "0.001"]
app()
"""
STEP_LINE = re.compile(r"\[step-time\] step (\d+) epoch 0: [0-9.]+ s/step, (\d+) s since step 0")


def seconds_to(steps: int, dropout: str) -> dict:
    """RETURNS (dict): step -> seconds since step 0, up to `steps`."""
    proc = subprocess.Popen([sys.executable, "-c", RUN, dropout], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = {}
    for line in proc.stdout:
        match = STEP_LINE.search(line)
        if match:
            seen[int(match.group(1))] = int(match.group(2))
            if int(match.group(1)) >= steps:
                break
    proc.kill()
    proc.wait()
    if steps not in seen:
        raise SystemExit(f"the {dropout} run stopped before step {steps}: is the feature cache in corpus/features?")
    return seen


def main(steps: int = 400, rounds: int = 2) -> None:
    print(f"Machine: {describe_machine()}. Seconds from step 100 to step {steps} of `train-cached` (default config).")
    for round_ in range(1, rounds + 1):
        for dropout in ("torch", "fast"):
            seen = seconds_to(steps, dropout)
            span = seen[steps] - seen[100]
            print(f"round {round_}, {dropout:5} dropout: {span} s for {steps - 100} steps ({span / (steps - 100):.3f} s/step)", flush=True)


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
