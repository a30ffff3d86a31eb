"""Train and score one system of the comparison; each run is a subprocess, so
its wall time and memory are its own."""
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy.util import load_config
from thinc.api import Config

from .systems import System


def set_dotted(config: Config, key: str, value: Any) -> None:
    """Set `a.b.c` in a config; the sections on the way must exist."""
    *sections, last = key.split(".")
    node = config
    for section in sections:
        if section not in node:
            raise KeyError(f"Config has no section '{section}' (setting '{key}')")
        node = node[section]
    node[last] = value


def training_config(system: System, budget: Dict[str, int], corpus: Path, log_path: Path, encoder: str) -> Config:
    """RETURNS (Config): The system's config with its overrides, data paths, budget and logger."""
    config = load_config(system.config, interpolate=False)
    for key, value in system.overrides.items():
        set_dotted(config, key, value)
    config["paths"]["train"] = str(corpus / "train.spacy")
    config["paths"]["dev"] = str(corpus / "dev.spacy")
    if "encoder" in config["paths"]:
        config["paths"]["encoder"] = encoder
    training = config["training"]
    training["max_steps"] = budget.get("max_steps", 0)
    training["max_epochs"] = budget.get("max_epochs", 0)
    training["eval_frequency"] = budget.get("eval_frequency") or 500
    training["patience"] = 0
    config["corpora"]["dev"]["limit"] = budget.get("dev_limit", 0)
    training["logger"] = {"@loggers": "spacy-posattn.JSONLLogger.v1", "path": str(log_path)}
    learn_rate = training["optimizer"].get("learn_rate")
    if isinstance(learn_rate, dict) and "total_steps" in learn_rate:
        if system.kind == "spacy" and not training["max_steps"]:
            raise ValueError(f"{system.name}: a learning-rate schedule over max_steps needs a max_steps budget")
        if "warmup_steps" in budget:  # a budget that states its warm-up keeps it
            learn_rate["warmup_steps"] = budget["warmup_steps"]
        elif training["max_steps"] and "warmup_steps" in learn_rate:
            # Short budgets warm up over a tenth of their steps, so the rate peaks and decays.
            learn_rate["warmup_steps"] = min(learn_rate["warmup_steps"], max(1, training["max_steps"] // 10))
    return config


def sourced_copy(heads: Optional[str], system: System, dest: Path) -> Path:
    """Copy the pipeline a run sources its components from (`paths.heads`) to
    `dest`, with the system's `source_overrides` set in the copy's config.cfg.

    RETURNS (Path): `dest`.
    """
    if not heads or not (Path(heads) / "config.cfg").exists():
        raise FileNotFoundError(
            f"{system.name} sources its components from paths.heads = {heads!r}, which is not a "
            "trained pipeline folder: train stage 1 first (spacy project run train-heads)"
        )
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(heads, dest)
    config = load_config(dest / "config.cfg", interpolate=False)
    for key, value in system.source_overrides.items():
        set_dotted(config, key, value)
    config.to_disk(dest / "config.cfg")
    return dest


def fingerprint(system: System, budget_name: str, encoder: str, metrics_root: Path) -> str:
    """RETURNS (str): A hash of what a system's scores depend on: its definition,
    budget, encoder, config file, this package's code, and the scores of the
    systems it needs (the CRF's tagger). `compare` retrains a system whose stored fingerprint differs."""
    package = Path(__file__).resolve().parent.parent
    code = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(package.rglob("*.py")))).hexdigest()
    parts = [dataclasses.asdict(system), budget_name, encoder, code]
    if system.config:
        parts.append(Path(system.config).read_text(encoding="utf8"))
    for need in system.needs:
        needed = metrics_root / f"{need}.json"
        parts.append(json.loads(needed.read_text(encoding="utf8")).get("fingerprint") if needed.exists() else None)
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode("utf8")).hexdigest()[:16]


def check_extras(systems: List[System], report: bool = False) -> None:
    """Raise ImportError with the pip command when the `compare` extra that the
    chosen systems (the CRF) or the report (plots) need is missing."""
    import importlib.util

    needed = (["sklearn_crfsuite"] if any(s.kind == "crf" for s in systems) else []) + (["matplotlib"] if report else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"{', '.join(missing)} not installed: the comparison needs the 'compare' extra. "
            "Run: pip install 'spacy-posattn[compare]' (or, in a clone: pip install -e '.[compare]')"
        )


def run_command(args: List[str], log_file: Path) -> float:
    """Run a command, teeing its output to `log_file`; RETURNS its wall seconds.
    Raises RuntimeError naming the log when it fails."""
    start = time.perf_counter()
    with log_file.open("w", encoding="utf8") as log:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed with exit code {code}; see {log_file}")
    return time.perf_counter() - start


def read_log(log_path: Path) -> List[Dict]:
    """RETURNS (List[Dict]): The JSON lines of a training log (empty if none)."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text(encoding="utf8").splitlines() if line.strip()]


def run_system(
    system: System,
    budget_name: str,
    corpus_root: Path,
    train_root: Path,
    metrics_root: Path,
    encoder: str,
    gpu_id: int = -1,
) -> Path:
    """Train `system` within its budget and score it on the test split.

    RETURNS (Path): metrics_root / NAME.json: `spacy_posattn evaluate`'s scores plus
        `system`, `label`, `budget`, `train_seconds`, `steps`, `epochs`, `train_log`.
    """
    budget = system.budgets[budget_name]
    corpus = corpus_root / system.corpus
    run_dir = train_root / system.name
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_root.mkdir(parents=True, exist_ok=True)
    metrics_path = metrics_root / f"{system.name}.json"
    log_path = run_dir / "train_log.jsonl"
    python = sys.executable
    extra: Dict[str, Any] = {}
    if system.kind in ("spacy", "cached"):
        config = training_config(system, budget, corpus, log_path, encoder)
        if system.source_overrides:
            config["paths"]["heads"] = str(sourced_copy(config["paths"].get("heads"), system, run_dir / "sourced"))
        config_path = run_dir / "config.cfg"
        config.to_disk(config_path)
        if system.kind == "spacy":
            args = [python, "-m", "spacy", "train", str(config_path), "--output", str(run_dir)]
        else:
            args = [python, "-m", "spacy_posattn", "train-cached", str(config_path), str(run_dir),
                    "--epochs", str(budget["max_epochs"]), "--cache-dir", str(corpus_root / "features")]
        train_seconds = run_command(args + ["--gpu-id", str(gpu_id)], run_dir / "train.out")
        model = run_dir / "model-best"
        run_command(
            [python, "-m", "spacy_posattn", "evaluate", str(model), str(corpus / "test.spacy"),
             "--output", str(metrics_path), "--gpu-id", str(gpu_id)],
            run_dir / "evaluate.out",
        )
        log = read_log(log_path)
        epochs = epoch_count(log, train_words(corpus))
        if budget.get("max_epochs") and not budget.get("max_steps"):
            epochs = float(budget["max_epochs"])  # ran to the end of its last epoch
        extra.update(steps=log[-1]["step"] if log else None, epochs=epochs)
        if system.kind == "cached" and log:
            # A feature pass read from the cache still counts: add the time it took when computed.
            train_seconds += log[-1].get("feature_seconds_reused", 0.0)
            extra.update(feature_seconds=log[-1].get("feature_seconds"))
    elif system.kind == "crf":
        from ..baselines.crf import train_and_evaluate
        from ..machine import describe_machine
        from ..evaluate import write_reports

        tagger = train_root / system.needs[0] / "model-best"
        if not tagger.exists():
            raise FileNotFoundError(f"The CRF takes its POS tags from {tagger}: train '{system.needs[0]}' first")
        scores = train_and_evaluate(
            corpus / "train.spacy", corpus / "test.spacy", tagger, run_dir, max_iterations=budget["max_iterations"]
        )
        train_seconds = scores.pop("train_seconds")
        scores.update(model=str(run_dir / "model.crfsuite"), data=str(corpus / "test.spacy"),
                      machine=describe_machine(-1))
        write_reports(scores, metrics_path, title=f"{system.name} on test")
        extra.update(steps=None, epochs=None)  # L-BFGS iterations are in budget_spec / max_iterations
    else:
        raise ValueError(f"{system.name}: unknown kind '{system.kind}'")
    scores = json.loads(metrics_path.read_text(encoding="utf8"))
    scores.update(
        fingerprint=fingerprint(system, budget_name, encoder, metrics_root),
        system=system.name, label=system.label, kind=system.kind, budget=budget_name,
        budget_spec=budget, train_seconds=train_seconds, train_log=str(log_path), **extra,
    )
    metrics_path.write_text(json.dumps(scores, indent=2), encoding="utf8")
    return metrics_path


def train_words(corpus: Path) -> Optional[int]:
    """RETURNS (Optional[int]): Tokens in the corpus's train split, from the
    converter's summary.json (None without one)."""
    summary = corpus / "summary.json"
    if not summary.exists():
        return None
    return json.loads(summary.read_text(encoding="utf8"))["splits"]["train"]["tokens"]


def epoch_count(log: List[Dict], n_train_words: Optional[int]) -> Optional[float]:
    """RETURNS (Optional[float]): Epochs run (fractional: words seen / train
    words) at the last log line, or None without a log."""
    if not log:
        return None
    last = log[-1]
    if last.get("words") and n_train_words:
        return last["words"] / n_train_words
    return float(last["epoch"])
