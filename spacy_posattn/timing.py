"""Training time as a measured record, so no report carries a typed-in figure.

`python -m spacy_posattn timed RECORD -- COMMAND...` runs a training command and
writes its wall time, the command and the machine to RECORD (JSON); `evaluate
--train-time RECORD` adds the records' total to the scores it writes.
"""
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Sequence

from .machine import describe_machine


def run_timed(command: Sequence[str], record: Path, label: str = "", gpu_id: int = -1) -> int:
    """Run `command`, and when it succeeds write its wall seconds to `record`.

    command (Sequence[str]): The command and its arguments; a leading `python` is
        this interpreter, as in `spacy project run`.
    record (Path): JSON file to write: `seconds`, `command`, `label`, `machine`, `finished`.
    label (str): What the command trains, for reports (e.g. "stage 1: 6 epochs").
    gpu_id (int): The GPU the command trains on (-1: CPU), for the record's machine.
    RETURNS (int): The command's exit code (no record is written when it is not 0).
    """
    if not command:
        raise ValueError("No command to time: give it after `--`, e.g. `timed out.json -- python -m spacy train ...`")
    command = list(command)
    if command[0] in ("python", "python3"):  # as `spacy project run` does: this interpreter, venv or not
        command[0] = sys.executable
    start = time.perf_counter()
    code = subprocess.call(command)
    seconds = time.perf_counter() - start
    if code == 0:
        record.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "seconds": seconds,
            "command": " ".join(command),
            "label": label,
            "machine": describe_machine(gpu_id),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        record.write_text(json.dumps(data, indent=2), encoding="utf8")
    return code


def read_train_time(records: Sequence[Path]) -> Dict:
    """Sum the training time of one pipeline's stages.

    A `train-cached` stage that read its features from a cache another command
    computed did not pay for the feature pass: its log beside the record
    (train_log.jsonl) has `feature_seconds_reused`, which is added to that
    stage, as `compare` does, so a stage costs the same whichever ran first.

    records (Sequence[Path]): Files written by `run_timed`, one per training stage.
    RETURNS (Dict): `train_seconds` (the total) and `train_time` (the records,
        with `feature_seconds_reused` where a log has it).
    Raises FileNotFoundError naming a missing record and the command that writes it.
    """
    from .compare.runner import read_log

    parts: List[Dict] = []
    for path in map(Path, records):
        if not path.exists():
            raise FileNotFoundError(
                f"No training-time record {path}: it is written when the training command runs under "
                f"`python -m spacy_posattn timed {path} -- ...` (as project.yml's train commands do)"
            )
        part = json.loads(path.read_text(encoding="utf8"))
        log = read_log(path.parent / "train_log.jsonl")
        part["feature_seconds_reused"] = log[-1].get("feature_seconds_reused", 0.0) if log else 0.0
        parts.append(part)
    total = sum(p["seconds"] + p["feature_seconds_reused"] for p in parts)
    return {"train_seconds": total, "train_time": parts}
