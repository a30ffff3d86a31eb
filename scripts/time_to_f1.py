"""Minutes to a dev entity F1, from the timestamped logs of scripts/gpu_session.sh.

Each log line starts with the seconds since the session's start. Stage 1's
`train-cached` prints "epoch N: step S, dev F F1, ..."; stage 2's `spacy train`
prints its table, whose ENTS_F column is read by its header.

usage: python scripts/time_to_f1.py OUT_DIR [TARGET_F1]   (default 84.0)
"""
import re
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

Evaluation = Tuple[str, int, str, float]  # (stage, seconds since start, "epoch 2"/"step 400", dev F1)

EPOCH_LINE = re.compile(r"^(\d+) epoch (\d+): step \d+, dev ([\d.]+) F1")


def stage1_evaluations(lines: Iterable[str]) -> List[Evaluation]:
    """The dev scores of `train-cached`'s epochs, with their timestamps."""
    found = []
    for line in lines:
        match = EPOCH_LINE.match(line.strip())
        if match:
            seconds, epoch, f1 = match.groups()
            found.append(("stage 1", int(seconds), f"epoch {epoch}", float(f1)))
    return found


def stage2_evaluations(lines: Iterable[str]) -> List[Evaluation]:
    """The dev scores in `spacy train`'s table (ENTS_F column, 0-100), with their timestamps."""
    found = []
    from_end: Optional[int] = None
    for line in lines:
        seconds, _, text = line.strip().partition(" ")
        fields = text.split()
        if "ENTS_F" in fields:
            from_end = len(fields) - fields.index("ENTS_F")
            continue
        if from_end is None or len(fields) < from_end + 2 or not seconds.isdigit():
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            continue
        found.append(("stage 2", int(seconds), f"step {int(values[1])}", values[-from_end]))
    return found


def first_reaching(evaluations: List[Evaluation], target: float) -> Optional[Evaluation]:
    """The earliest evaluation at or above the target F1, or None."""
    reached = [e for e in evaluations if e[3] >= target]
    return min(reached, key=lambda e: e[1]) if reached else None


def main(out_dir: str, target: float = 84.0) -> None:
    out = Path(out_dir)
    read = lambda name: (out / name).read_text().splitlines() if (out / name).exists() else []
    evaluations = stage1_evaluations(read("stage1.log")) + stage2_evaluations(read("stage2.log"))
    rows = ["| stage | at | seconds since the session's start | dev entity F1 |", "|---|---|---|---|"]
    rows += [f"| {s} | {at} | {sec} | {f1:.2f} |" for s, sec, at, f1 in evaluations]
    first = first_reaching(evaluations, target)
    if first:
        rows.append(f"\nFirst dev entity F1 >= {target}: {first[3]:.2f} at {first[0]} {first[2]}, "
                    f"{first[1]} s = {first[1] / 60:.1f} min after the session's start.")
    else:
        rows.append(f"\nDev entity F1 did not reach {target} in this session.")
    text = "\n".join(rows) + "\n"
    (out / "time_to_f1.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 84.0)
