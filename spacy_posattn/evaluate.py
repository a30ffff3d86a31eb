"""Evaluate a pipeline on a DocBin: entity, token-level and POS scores, speed.

- Strict entity P/R/F1, overall and per type, from seqeval (IOB2, strict mode)
  and checked equal to spaCy's own `get_ner_prf`.
- The paper's token-level "flat F1": the support-weighted mean of the per-tag
  F1 over the tokens' BIO tags, leaving out `O` (what
  `sklearn_crfsuite.metrics.flat_f1_score(y, p, average="weighted",
  labels=[all tags but "O"])` computes). A token-level score: not comparable to
  the entity-level F1.
- POS accuracy of `token.tag_`, and words per second of `nlp.pipe`.
- The same entity P/R/F1 and POS accuracy on raw text (`raw_*`): the pipeline
  reads each doc's text with its own tokenizer, as a user's text is read, and
  spaCy's `Example` aligns its tokens to the gold ones by character offsets
  (spaCy's scorer: a predicted entity counts when it covers exactly the gold
  tokens; POS over the tokens that align one to one).
"""
import json
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import numpy
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from .readers import unannotated_copy


def iob_tags(doc: Doc) -> List[str]:
    """RETURNS (List[str]): The doc's entities as IOB2 tags, one per token."""
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]


def flat_f1(gold: List[List[str]], pred: List[List[str]]) -> float:
    """Support-weighted F1 over the token tags other than `O` (the paper's metric).

    gold (List[List[str]]): Gold tags per sentence.
    pred (List[List[str]]): Predicted tags per sentence.
    RETURNS (float): The weighted F1.
    """
    tp, n_gold, n_pred = Counter(), Counter(), Counter()
    for gold_tags, pred_tags in zip(gold, pred):
        for g, p in zip(gold_tags, pred_tags):
            n_gold[g] += 1
            n_pred[p] += 1
            tp[g] += g == p
    labels = sorted((set(n_gold) | set(n_pred)) - {"O"})
    total = sum(n_gold[label] for label in labels)
    if total == 0:
        return 0.0
    weighted = 0.0
    for label in labels:
        if tp[label]:
            p, r = tp[label] / n_pred[label], tp[label] / n_gold[label]
            weighted += n_gold[label] * 2 * p * r / (p + r)
    return weighted / total


def evaluate(nlp: Language, docs: List[Doc], batch_size: int = 64) -> Dict:
    """Run `nlp` on copies of the gold docs and score them.

    nlp (Language): The pipeline.
    docs (List[Doc]): Gold docs, e.g. from a DocBin.
    batch_size (int): Batch size for `nlp.pipe`.
    RETURNS (Dict): The scores (see the module docstring).
    """
    inputs = [unannotated_copy(doc) for doc in docs]
    start = time.perf_counter()
    predicted = list(nlp.pipe(inputs, batch_size=batch_size))
    scores = score_docs(docs, predicted, seconds=time.perf_counter() - start)
    scores.update(score_raw_text(nlp, docs, batch_size=batch_size))
    scores["calibration"] = confidence_calibration(docs, predicted)
    return scores


CALIBRATION_THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)


def calibration_bins(conf: numpy.ndarray, hit: numpy.ndarray, n_bins: int = 10) -> List[Dict]:
    """RETURNS (List[Dict]): For each non-empty equal-width bin of confidence:
    `low`, `high`, `count`, mean `confidence` and `accuracy` (mean of `hit`)."""
    edges = numpy.linspace(0.0, 1.0, n_bins + 1)
    which = numpy.clip(numpy.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(mask.sum()),
                         "confidence": float(conf[mask].mean()), "accuracy": float(hit[mask].mean())})
    return bins


def expected_calibration_error(conf: numpy.ndarray, hit: numpy.ndarray, n_bins: int = 10) -> float:
    """RETURNS (float): Mean |confidence - accuracy| over equal-width bins,
    weighted by the share of items in each."""
    return _ece(calibration_bins(numpy.asarray(conf), numpy.asarray(hit, dtype=float), n_bins), len(conf))


def _ece(bins: List[Dict], n_items: int) -> float:
    return float(sum(b["count"] * abs(b["confidence"] - b["accuracy"]) for b in bins) / max(n_items, 1))


def confidence_calibration(gold: List[Doc], predicted: List[Doc], n_bins: int = 10, key: str = "ents") -> Optional[Dict]:
    """How well the per-entity confidences (`doc.spans[key].attrs["scores"]`)
    predict that an entity is correct (same tokens and label as a gold one).

    RETURNS (Optional[Dict]): `ece` (expected calibration error over `n_bins`
        equal-width bins), `bins` (count, mean confidence, accuracy per bin) and
        `thresholds`: precision and recall when only entities scored at least t
        are kept. None when the pipeline gives no confidences.
    """
    confidences, correct = [], []
    n_gold = 0
    for g_doc, p_doc in zip(gold, predicted):
        gold_ents = {(e.start, e.end, e.label_) for e in g_doc.ents}
        n_gold += len(gold_ents)
        group = p_doc.spans.get(key)
        if group is None or "scores" not in group.attrs:
            continue
        for span, score in zip(group, group.attrs["scores"]):
            confidences.append(float(score))
            correct.append((span.start, span.end, span.label_) in gold_ents)
    if not confidences:
        return None
    conf, hit = numpy.asarray(confidences), numpy.asarray(correct, dtype=float)
    bins = calibration_bins(conf, hit, n_bins)
    ece = _ece(bins, len(conf))
    thresholds = []
    for t in CALIBRATION_THRESHOLDS:
        kept = conf >= t
        tp = float(hit[kept].sum())
        thresholds.append({"threshold": t, "kept": int(kept.sum()),
                           "precision": tp / kept.sum() if kept.any() else None,
                           "recall": tp / n_gold if n_gold else None})
    return {"ece": float(ece), "entities": len(conf), "bins": bins, "thresholds": thresholds}


def score_raw_text(nlp: Language, docs: List[Doc], batch_size: int = 64) -> Dict:
    """Run `nlp` on the gold docs' texts (its own tokenization) and score the
    entities and POS tags through spaCy's alignment.

    RETURNS (Dict): `raw_ents_p`, `raw_ents_r`, `raw_ents_f`, `raw_tag_acc`, and
        `raw_token_mismatch`: the share of gold tokens without a one-to-one
        predicted token.
    """
    predicted = list(nlp.pipe((doc.text for doc in docs), batch_size=batch_size))
    examples = [Example(pred, ref) for pred, ref in zip(predicted, docs)]
    ner = get_ner_prf(examples)
    scores = {"raw_ents_p": ner["ents_p"], "raw_ents_r": ner["ents_r"], "raw_ents_f": ner["ents_f"], "raw_tag_acc": None}
    if any(d.has_annotation("TAG") for d in docs) and any(d.has_annotation("TAG") for d in predicted):
        scores["raw_tag_acc"] = Scorer.score_token_attr(examples, "tag")["tag_acc"]
    one_to_one = sum(int((eg.alignment.y2x.lengths == 1).sum()) for eg in examples)
    n_gold = sum(len(doc) for doc in docs)
    scores["raw_token_mismatch"] = 1 - one_to_one / n_gold if n_gold else 0.0
    return scores


def score_docs(gold: List[Doc], predicted: List[Doc], seconds: Optional[float] = None) -> Dict:
    """Score predicted docs against gold docs with the same tokens.

    gold (List[Doc]): Gold docs.
    predicted (List[Doc]): The system's docs, in the same order.
    seconds (Optional[float]): Time the system took to predict, for words/s.
    RETURNS (Dict): The scores (see the module docstring), plus `type_confusion`:
        token counts by gold entity type (or "O") and predicted type (or "O").
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold docs but {len(predicted)} predicted docs")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if [t.text for t in g] != [t.text for t in p]:
            raise ValueError(f"Doc {i}: the predicted tokens differ from the gold tokens")
    n_words = sum(len(doc) for doc in gold)
    gold_tags = [iob_tags(doc) for doc in gold]
    pred_tags = [iob_tags(doc) for doc in predicted]
    report = classification_report(gold_tags, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    spacy_ner = get_ner_prf(examples)
    per_type = {
        label: {"p": s["precision"], "r": s["recall"], "f": s["f1-score"], "support": int(s["support"])}
        for label, s in report.items()
        if label not in ("micro avg", "macro avg", "weighted avg")
    }
    overall = report["micro avg"]
    scores = {
        "ents_p": overall["precision"],
        "ents_r": overall["recall"],
        "ents_f": overall["f1-score"],
        "ents_per_type": per_type,
        "spacy_ents_f": spacy_ner["ents_f"],
        "token_flat_f1": flat_f1(gold_tags, pred_tags),
        "tag_acc": None,
        "type_confusion": type_confusion(gold, predicted),
        "words": n_words,
        "docs": len(gold),
        "seconds": seconds,
        "words_per_second": n_words / seconds if seconds else None,
    }
    if spacy_ner["ents_f"] is not None and abs(scores["ents_f"] - spacy_ner["ents_f"]) > 1e-6:
        raise RuntimeError(
            f"seqeval ({scores['ents_f']:.6f}) and spaCy ({spacy_ner['ents_f']:.6f}) disagree on entity F1"
        )
    if any(d.has_annotation("TAG") for d in gold) and any(d.has_annotation("TAG") for d in predicted):
        scores["tag_acc"] = Scorer.score_token_attr(examples, "tag")["tag_acc"]
    return scores


def type_confusion(gold: List[Doc], predicted: List[Doc]) -> Dict[str, Dict[str, int]]:
    """Count tokens by gold and predicted entity type ("O" outside entities).

    RETURNS (Dict[str, Dict[str, int]]): counts[gold_type][predicted_type].
    """
    counts: Dict[str, Dict[str, int]] = {}
    for g_doc, p_doc in zip(gold, predicted):
        for g, p in zip(g_doc, p_doc):
            row = counts.setdefault(g.ent_type_ or "O", {})
            row[p.ent_type_ or "O"] = row.get(p.ent_type_ or "O", 0) + 1
    return counts


def evaluate_path(nlp: Language, data_path: Path, batch_size: int = 64, limit: Optional[int] = None) -> Dict:
    """Evaluate on the docs of a `.spacy` file (the first `limit` if given)."""
    docs = list(DocBin().from_disk(data_path).get_docs(nlp.vocab))
    return evaluate(nlp, docs[:limit] if limit else docs, batch_size=batch_size)


def markdown_report(scores: Dict, title: str) -> str:
    """RETURNS (str): The scores as a Markdown report."""
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}"  # noqa: E731
    lines = [
        f"# {title}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| entity P / R / F1 (strict, seqeval = spaCy scorer) | {pct(scores['ents_p'])} / {pct(scores['ents_r'])} / **{pct(scores['ents_f'])}** |",
        f"| token-level flat F1 (paper's metric, weighted, without `O`) | {pct(scores['token_flat_f1'])} |",
        f"| POS accuracy (`token.tag_`) | {pct(scores['tag_acc'])} |",
        f"| raw text, own tokenizer: entity P / R / F1 | {pct(scores.get('raw_ents_p'))} / {pct(scores.get('raw_ents_r'))} / **{pct(scores.get('raw_ents_f'))}** |",
        f"| raw text: POS accuracy (aligned tokens); gold tokens not one to one | {pct(scores.get('raw_tag_acc'))}; {pct(scores.get('raw_token_mismatch'))} % |",
        f"| speed | {scores['words_per_second'] or 0:,.0f} words/s ({scores['words']:,} words in {scores['seconds']:.1f} s) |",
    ]
    if scores.get("crf_weight") is not None:
        lines.append(f"| posattn_ner's feature CRF weight (`crf_weight`; 0: the network alone) | {scores['crf_weight']:g} |")
    if scores.get("pos_crf_weight") is not None:
        lines.append(f"| the tagger's POS CRF weight (`crf_weight`; 0: the network alone) | {scores['pos_crf_weight']:g} |")
    if scores.get("train_time"):  # measured by `timed`, one record per training stage
        parts = "; ".join(
            f"{t['label'] or t['command']}: {t['seconds']:,.0f} s"
            + (f" + {t['feature_seconds_reused']:,.0f} s of features cached earlier" if t.get("feature_seconds_reused") else "")
            for t in scores["train_time"]
        )
        lines.append(f"| training wall time ({scores['train_time'][0]['machine']}) | {scores['train_seconds']:,.0f} s ({parts}) |")
    lines += [
        "",
        "| entity type | P | R | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for label, s in sorted(scores["ents_per_type"].items(), key=lambda kv: -kv[1]["support"]):
        lines.append(f"| {label} | {pct(s['p'])} | {pct(s['r'])} | {pct(s['f'])} | {s['support']} |")
    calibration = scores.get("calibration")
    if calibration:
        lines += [
            "",
            f"Confidence calibration (`doc.spans[\"ents\"].attrs[\"scores\"]` against \"the entity is correct\", "
            f"{calibration['entities']:,} predicted entities): expected calibration error **{calibration['ece']:.3f}**.",
            "",
            "| keep entities with confidence ≥ | kept | precision | recall |",
            "|---|---|---|---|",
        ]
        for t in calibration["thresholds"]:
            lines.append(f"| {t['threshold']} | {t['kept']:,} | {pct(t['precision'])} | {pct(t['recall'])} |")
        lines += ["", "| confidence bin | entities | mean confidence | share correct |", "|---|---|---|---|"]
        for b in calibration["bins"]:
            lines.append(f"| {b['low']:.1f}–{b['high']:.1f} | {b['count']:,} | {b['confidence']:.3f} | {b['accuracy']:.3f} |")
    for key in ("machine", "model", "data"):
        if key in scores:
            lines.append(f"\n{key}: {scores[key]}")
    return "\n".join(lines) + "\n"


def write_reports(scores: Dict, json_path: Path, title: str) -> Path:
    """Write the scores as JSON and, beside it, as Markdown; RETURNS the Markdown path."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(scores, indent=2), encoding="utf8")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown_report(scores, title), encoding="utf8")
    if scores.get("calibration"):
        reliability_plot(scores["calibration"], json_path.with_suffix(".reliability.png"), title)
    return md_path


def reliability_plot(calibration: Dict, path: Path, title: str) -> Optional[Path]:
    """Share of correct entities against mean confidence per bin; needs
    matplotlib (the `compare` extra), else nothing is drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    bins = calibration["bins"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="predicted entities")
    for b in bins:
        ax.annotate(f"{b['count']:,}", (b["confidence"], b["accuracy"]), fontsize=6, textcoords="offset points", xytext=(3, -9))
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("share of entities that are correct")
    ax.set_title(f"{title}\nECE {calibration['ece']:.3f}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
