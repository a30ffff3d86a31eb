"""`results/compare.md`, `compare.json` and the plots, from metrics/compare/*.json."""
import json
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from .runner import read_log
from .systems import ABLATION, FINETUNE_ABLATION, SYSTEMS

TYPES = ["geo", "tim", "org", "gpe", "per", "art", "eve", "nat"]
FINE_TUNED, FROZEN = "posattn", "posattn_frozen"


# The project's own pipelines, scored by `evaluate --train-time` after their
# workflow (metrics/CONFIG*.json): reference name -> (system, label).
REFERENCES = {
    "default": ("posattn_default_full", "ours, default pipeline, full budget (`spacy project run all`)"),
    "stage1": ("posattn_stage1_full", "ours, stage 1 alone: frozen MiniLM, cached features, full budget (`evaluate-stage1`)"),
    "fast": ("posattn_fast_full", "ours, fast path (`spacy project run fast`)"),
    "stage2": ("posattn_stage2_full", "ours, staged start: stage 1 + stage 2's network, no CRFs (`ablate-finetune`)"),
}


def load_rows(
    metrics_roots: Union[Path, Sequence[Path]], references: Optional[Dict[str, Path]] = None
) -> List[Dict]:
    """RETURNS (List[Dict]): One row per scored system found in `metrics_roots`
    (one folder written by `compare --metrics`, or several, e.g. full-budget
    runs made one system at a time), in table order, then the project's own
    pipelines (`references`: name in REFERENCES -> scores written by `evaluate
    --train-time`) that exist.
    Raises ValueError for an unknown name or a system scored in two folders;
    scores without measured training time are left out with a warning."""
    roots = [metrics_roots] if isinstance(metrics_roots, Path) else list(metrics_roots)
    rows = []
    for system in SYSTEMS + ABLATION + FINETUNE_ABLATION:
        paths = [root / f"{system.name}.json" for root in roots if (root / f"{system.name}.json").exists()]
        if len(paths) > 1:
            raise ValueError(
                f"'{system.name}' is scored in more than one folder ({', '.join(map(str, paths))}): "
                "give only the folder whose scores the table should show"
            )
        if paths:
            row = json.loads(paths[0].read_text(encoding="utf8"))
            row["label"] = system.label  # the current wording
            rows.append(row)
    for name, path in (references or {}).items():
        if name not in REFERENCES:
            raise ValueError(f"Unknown reference '{name}'; known: {', '.join(REFERENCES)}")
        if not path.exists():
            continue
        ref = json.loads(path.read_text(encoding="utf8"))
        if "train_seconds" not in ref:  # scored before training was timed: no row, and say why
            warnings.warn(
                f"{path} has no train_seconds, so it is left out: score the pipeline with `python -m spacy_posattn "
                "evaluate ... --train-time RECORD` for each training stage's record (project.yml's evaluate commands do)"
            )
            continue
        ref["system"], ref["label"] = REFERENCES[name]
        ref.setdefault("budget", "full")
        rows.append(ref)
    return rows


def efficiency_claim(rows: List[Dict]) -> Optional[Dict]:
    """The paper's claim, on our numbers: the frozen encoder with cached features
    is within 1 F1 point of full fine-tuning at <= 1/5 of its training time.

    The frozen side is, by preference, the fast path at its full budget (the
    frozen encoder with the same feature CRFs as the default, so both sides
    carry the same output layers), else stage 1 alone at its full budget, else
    the comparison's frozen row; it is set against the best full-budget
    fine-tuned row of our architecture on the same machine. A short ("quick")
    fine-tune is not "full fine-tuning", so without such a row the claim is
    reported untested.

    RETURNS (Optional[Dict]): The figures and `holds` (None if untested), or
        None without a frozen row.
    """
    by_name = {r["system"]: r for r in rows}
    candidates = [n for n in ("posattn_fast_full", "posattn_stage1_full", FROZEN) if n in by_name]
    if not candidates:
        return None

    def full_tunes(frozen: Dict) -> List[Dict]:
        return [
            r for r in rows
            if r["system"] in (FINE_TUNED, "posattn_default_full") and r.get("budget") == "full"
            and r.get("train_seconds") and r.get("machine") == frozen.get("machine")
        ]

    frozen_name = next((n for n in candidates if full_tunes(by_name[n])), candidates[0])
    frozen = by_name[frozen_name]
    tuned = full_tunes(frozen)
    if not tuned:
        return {"frozen": frozen_name, "fine_tuned": None, "holds": None,
                "reason": "no full-budget fine-tuned row of posattn on the same machine"}
    tuned_best = max(tuned, key=lambda r: r["ents_f"])
    gap = 100 * (tuned_best["ents_f"] - frozen["ents_f"])
    ratio = frozen["train_seconds"] / tuned_best["train_seconds"]
    return {
        "frozen": frozen_name, "frozen_budget": frozen.get("budget"), "fine_tuned": tuned_best["system"],
        "f1_gap_points": gap, "time_ratio": ratio, "holds": gap <= 1.0 and ratio <= 0.2,
    }


def speed_ratio(rows: List[Dict], interleaved: Optional[Dict] = None) -> Optional[Dict]:
    """Our pipeline's words/s over spaCy's transformer + transition ner on the
    same encoder: from `compare-speed`'s interleaved measurement when given,
    else from the two test-set evaluations of the compare run.

    RETURNS (Optional[Dict]): `ours`, `spacy_trf_ner`, `ratio`, `source`; None without both.
    """
    if interleaved and FINE_TUNED in interleaved and "spacy_trf_ner" in interleaved:
        ours, theirs = interleaved[FINE_TUNED]["words_per_second"], interleaved["spacy_trf_ner"]["words_per_second"]
        source = "compare-speed, one process, interleaved rounds (results/speed.md)"
    else:
        by_name = {r["system"]: r for r in rows}
        ours = (by_name.get(FINE_TUNED) or {}).get("words_per_second")
        theirs = (by_name.get("spacy_trf_ner") or {}).get("words_per_second")
        source = "the two test-set evaluations of this compare run"
    if not ours or not theirs:
        return None
    return {"ours": ours, "spacy_trf_ner": theirs, "ratio": ours / theirs, "source": source}


# The command a table names as its source, unless told otherwise.
DEFAULT_COMMAND = "spacy project run compare"


def budget_text(row: Dict) -> str:
    spec = row.get("budget_spec") or {}
    parts = [f"{v} {k.replace('max_', '')}" for k, v in spec.items() if k.startswith("max_") and v]
    if not parts:  # a pipeline scored with its `timed` training records: their labels
        parts = [t["label"] for t in row.get("train_time", []) if t.get("label")]
    return f"{row.get('budget', '?')}: {', '.join(parts)}" if parts else str(row.get("budget", "?"))


def markdown_table(
    rows: List[Dict], claim: Optional[Dict], speed: Optional[Dict], command: str = DEFAULT_COMMAND
) -> str:
    pct = lambda x: "–" if x is None else f"{100 * x:.2f}"  # noqa: E731
    machines = sorted({r.get("machine", "?") for r in rows})
    lines = [
        "# GMB test split: baselines, spaCy pipelines and ablations",
        "",
        f"Generated by `{command}` (`python -m spacy_posattn compare-report`); do not edit.",
        f"Machine: {'; '.join(machines)}. Entity scores are strict (seqeval = spaCy's scorer);",
        "flat F1 is the paper's token-level metric. Training time is the wall time of the whole",
        "training command (initialization and dev evaluations included; for the frozen rows, the",
        "one-off feature pass plus the head epochs). Words/s: `nlp.pipe` over the test split, timed once",
        "in each row's own scoring run (rows scored in different sessions also differ by the machine's",
        "speed then; `spacy project run benchmark` compares speed in one process).",
        "Raw text: the pipeline's own tokenizer on the docs' text, aligned to the gold tokens by spaCy's `Example`.",
        "Every row is scored on the same test sentences; test Docs says how they were grouped (the",
        "`n_sents` the pipeline was trained with: 480 Docs of 10 sentences, or 4,796 of one).",
        "",
        "| system | budget | train time | epochs | test Docs | entity P | entity R | **entity F1** | flat F1 | POS acc. | raw-text F1 / POS | words/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        epochs = r.get("epochs")
        wps = r.get("words_per_second")
        lines.append(
            f"| {r['label']} | {budget_text(r)} | {r.get('train_seconds', 0):,.0f} s | "
            f"{'–' if epochs is None else f'{epochs:.2f}'} | {r['docs']:,} | {pct(r['ents_p'])} | {pct(r['ents_r'])} | "
            f"**{pct(r['ents_f'])}** | {pct(r.get('token_flat_f1'))} | {pct(r.get('tag_acc'))} | "
            f"{pct(r.get('raw_ents_f'))} / {pct(r.get('raw_tag_acc'))} | {'–' if not wps else f'{wps:,.0f}'} |"
        )
    lines += ["", "Entity F1 per type:", "", "| system | " + " | ".join(TYPES) + " |", "|---|" + "---|" * len(TYPES)]
    for r in rows:
        per_type = r.get("ents_per_type", {})
        lines.append(f"| {r['label']} | " + " | ".join(pct(per_type.get(t, {}).get("f")) for t in TYPES) + " |")
    if claim and claim["holds"] is None:
        lines += ["", f"**Efficiency claim**: not tested in this table ({claim['reason']})."]
    elif claim:
        verdict = "holds" if claim["holds"] else "does not hold"
        lines += [
            "",
            f"**Efficiency claim** (frozen encoder within 1 F1 point of full fine-tuning at ≤ 1/5 of its training "
            f"time): **{verdict}** here. `{claim['frozen']}` ({claim['frozen_budget']} budget) is "
            f"{abs(claim['f1_gap_points']):.2f} F1 points {'below' if claim['f1_gap_points'] >= 0 else 'above'} "
            f"`{claim['fine_tuned']}` (full budget) at "
            f"{claim['time_ratio']:.2f}× its training time.",
        ]
    if speed:
        lines += [
            "",
            f"**Speed**: ours {speed['ours']:,.0f} words/s vs spaCy transformer + transition ner "
            f"{speed['spacy_trf_ner']:,.0f} words/s on the same encoder: {speed['ratio']:.2f}× "
            f"({speed['source']}).",
        ]
    return "\n".join(lines) + "\n"


def write_report(
    metrics_roots: Union[Path, Sequence[Path]],
    output_dir: Path,
    references: Optional[Dict[str, Path]] = None,
    readme: Optional[Path] = None,
    command: str = DEFAULT_COMMAND,
) -> List[Path]:
    """Write compare.md, compare.json and the PNG plots from the scores in
    `metrics_roots` (see `load_rows`), and fill the README's table block if
    `readme` is given; RETURNS the paths written. `command` is the command the
    table names as its source."""
    from . import plots

    rows = load_rows(metrics_roots, references)
    if not rows:
        where = metrics_roots if isinstance(metrics_roots, Path) else ", ".join(map(str, metrics_roots))
        raise FileNotFoundError(f"No scores in {where}: run `python -m spacy_posattn compare` first")
    speed_json = output_dir / "speed.json"
    interleaved = json.loads(speed_json.read_text(encoding="utf8")) if speed_json.exists() else None
    claim, speed = efficiency_claim(rows), speed_ratio(rows, interleaved)
    output_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = output_dir / "compare.md", output_dir / "compare.json"
    table = markdown_table(rows, claim, speed, command)
    md_path.write_text(table, encoding="utf8")
    slim = [{k: v for k, v in r.items() if k not in ("type_confusion",)} for r in rows]
    json_path.write_text(json.dumps({"rows": slim, "efficiency_claim": claim, "speed": speed}, indent=2), encoding="utf8")
    logs = {r["system"]: read_log(Path(r["train_log"])) for r in rows if r.get("train_log")}
    written = [md_path, json_path, plots.f1_against_time(rows, logs, output_dir / "compare_f1_vs_time.png")]
    loss_plot = plots.loss_curves(rows, logs, output_dir / "loss_curves.png")
    if loss_plot:
        written.append(loss_plot)
    # The confusion matrix of our best-scoring row (the project's own pipelines included).
    mine = (FINE_TUNED, FROZEN) + tuple(system for system, _ in REFERENCES.values())
    ours = [r for r in rows if r["system"] in mine and r.get("type_confusion")]
    confusion_row = max(ours, key=lambda r: r["ents_f"], default=None)
    if confusion_row:
        written.append(plots.confusion_matrix(confusion_row, output_dir / "confusion_entity_types.png"))
    if readme is not None:
        written.append(update_readme(readme, table))
    return written


README_START, README_END = "<!-- compare-table:start -->", "<!-- compare-table:end -->"


def update_readme(readme: Path, table_md: str) -> Path:
    """Replace the text between the README's compare-table markers with the
    generated table (its title line dropped), so the README never holds typed figures."""
    text = readme.read_text(encoding="utf8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no '{README_START}' ... '{README_END}' block to fill")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    body = table_md.split("\n", 1)[1].strip()
    readme.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}", encoding="utf8")
    return readme
