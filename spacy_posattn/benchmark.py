"""Inference speed of this pipeline against spaCy's, one process, interleaved
rounds (`python -m spacy_posattn benchmark`).

Each system is a trained pipeline folder, optionally loaded with an int8 part,
length groups, bf16 or other feature-CRF weights
(`NAME=FOLDER@int8:attention@group_rows:16@crf_weight:0@pos_crf_weight:0`), or a config file that is built and initialised
on a few training docs: an untrained pipeline of the same architecture runs at
the same speed, which is all that is measured here (the table says which
systems were untrained). Texts are timed as whole documents and as single
sentences, through `nlp.pipe`, after a warm-up batch.
"""
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.util import load_config, load_model_from_config

UNITS = ("sentences", "docs")


def _true_or_false(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(value)
    return value == "true"


# `@KEY:VALUE` options of a system: the value's type and the config value it sets when loading.
SYSTEM_OPTIONS = {
    "int8": (str, "components.transformer.model.int8"),
    "group_rows": (int, "components.transformer.model.group_rows"),
    "bf16": (_true_or_false, "components.transformer.model.bf16"),
    "crf_weight": (float, "components.posattn_ner.crf_weight"),
    "pos_crf_weight": (float, "components.tagger.crf_weight"),
}
SPEC_FORM = "NAME=FOLDER_OR_CONFIG[@int8:PARTS][@group_rows:N][@bf16:true][@crf_weight:W][@pos_crf_weight:W]"


def parse_system(spec: str) -> Tuple[str, str, Dict[str, object]]:
    """"NAME=PATH", optionally followed by `@int8:PARTS`, `@group_rows:N`,
    `@bf16:true`, `@crf_weight:W` (the entity CRF's) and/or `@pos_crf_weight:W` (the
    tagger's) -> (name, path, {option: value})."""
    if "=" not in spec:
        raise ValueError(f"Give a system as {SPEC_FORM}, got '{spec}'")
    name, rest = spec.split("=", 1)
    path, *options = rest.split("@")
    if not name or not path:
        raise ValueError(f"Give a system as {SPEC_FORM}, got '{spec}'")
    chosen: Dict[str, object] = {}
    for option in options:
        key, _, value = option.partition(":")
        if key not in SYSTEM_OPTIONS or not value:
            raise ValueError(f"{name}: unknown option '@{option}'; use {SPEC_FORM}")
        try:
            chosen[key] = SYSTEM_OPTIONS[key][0](value)
        except ValueError:
            raise ValueError(f"{name}: option '@{option}' needs {'true or false' if key == 'bf16' else 'a number'}") from None
    return name, path, chosen


def describe_options(options: Dict[str, object]) -> str:
    """' int8 all, group_rows 16' (' bf16' for bf16 true) for the table's system column ('' for none)."""
    shown = [key if value is True else f"{key} {value}" for key, value in options.items()]
    return "".join(f"{',' if i else ''} {item}" for i, item in enumerate(shown))


def load_system(path: str, options: Dict[str, object], train_path: Optional[Path], gpu: bool = False) -> Tuple[Language, bool]:
    """Load a pipeline folder, or build and initialise one from a config.

    options (Dict[str, object]): Config values to set (`int8`, `group_rows`, `bf16`, `crf_weight`).
    RETURNS (Tuple[Language, bool]): The pipeline, and whether it is trained.
    """
    overrides = {SYSTEM_OPTIONS[key][1]: value for key, value in options.items()}
    if not Path(path).exists():
        raise ValueError(f"No pipeline folder or config at {path}")
    if Path(path).is_dir():
        return spacy.load(path, config=overrides), True
    from .readers import create_gold_tokens_corpus_v1

    if train_path is None or not train_path.exists():
        raise ValueError(f"{path} is a config: give --train so it can be initialised on a few docs")
    config = load_config(path, overrides={"paths.train": str(train_path), "paths.dev": str(train_path), **overrides}, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = list(create_gold_tokens_corpus_v1(train_path, limit=50)(nlp))
    nlp.initialize(lambda: examples)
    return nlp, False


def load_units(data_path: Path, limit: int = 0) -> Dict[str, List[str]]:
    """RETURNS (Dict[str, List[str]]): The texts of the first `limit` docs of
    `data_path` (0: all), as "docs" and split into "sentences"."""
    from .profiling import load_texts

    return {
        "sentences": load_texts(data_path, limit=limit, sentences=True),
        "docs": load_texts(data_path, limit=limit),
    }


def run_benchmark(
    systems: Dict[str, Language], units: Dict[str, List[str]], rounds: int = 3, batch_size: int = 64
) -> Dict[str, Dict[str, Dict]]:
    """Words/s of `nlp.pipe` for each system and unit, in interleaved rounds:
    every round runs every system on every unit once; the median round counts.

    RETURNS (Dict[str, Dict[str, Dict]]): system -> unit -> `words_per_second`,
        `rounds` (words/s of each), `words`, `texts`.
    """
    times: Dict[str, Dict[str, List[float]]] = {name: {unit: [] for unit in units} for name in systems}
    words: Dict[str, Dict[str, int]] = {name: {} for name in systems}
    for nlp in systems.values():  # warm-up: lazy initialisation, int8 quantization, allocator
        for texts in units.values():
            list(nlp.pipe(texts[:batch_size], batch_size=batch_size))
    for _ in range(rounds):
        for unit, texts in units.items():
            for name, nlp in systems.items():
                start = time.perf_counter()
                n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
                times[name][unit].append(n_words / (time.perf_counter() - start))
                words[name][unit] = n_words
    return {
        name: {
            unit: {
                "words_per_second": statistics.median(times[name][unit]),
                "rounds": times[name][unit],
                "words": words[name][unit],
                "texts": len(units[unit]),
            }
            for unit in units
        }
        for name in systems
    }


def benchmark_markdown(
    results: Dict[str, Dict[str, Dict]], anchor: str, described: Dict[str, str], machine: str,
    command: str, batch_size: int,
) -> str:
    """RETURNS (str): A Markdown table, each system's words/s and ratio to `anchor`."""
    units = list(next(iter(results.values())))
    head = " | ".join(f"{unit}: words/s | × {anchor}" for unit in units)
    lines = [
        "# Inference speed: one process, interleaved rounds",
        "",
        f"Generated by `{command}`; do not edit.",
        f"Machine: {machine}. `nlp.pipe(texts, batch_size={batch_size})` on raw text (the pipeline's own "
        "tokenizer), median of the rounds; the same texts for every system.",
        "",
        f"| system | what | {head} |",
        "|---|---|" + "---|---|" * len(units),
    ]
    for name, by_unit in results.items():
        cells = []
        for unit in units:
            wps = by_unit[unit]["words_per_second"]
            cells.append(f"{wps:,.0f} | {wps / results[anchor][unit]['words_per_second']:.2f}")
        lines.append(f"| {name} | {described[name]} | {' | '.join(cells)} |")
    lines.append("")
    for unit in units:
        first = next(iter(results.values()))[unit]
        lines.append(f"- {unit}: {first['texts']:,} texts, {first['words']:,} words per round")
    lines.append("")
    lines.append("Rounds (words/s):")
    lines.append("")
    for name, by_unit in results.items():
        per_unit = "; ".join(f"{unit} " + ", ".join(f"{r:,.0f}" for r in by_unit[unit]["rounds"]) for unit in units)
        lines.append(f"- {name}: {per_unit}")
    return "\n".join(lines) + "\n"
