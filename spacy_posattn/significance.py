"""How sure a difference in entity F1 is: a paired bootstrap over test Docs
(`python -m spacy_posattn significance`).

Each system predicts the same gold-token Docs (as `evaluate` does); each Doc
gives counts of true positives, false positives and false negatives per entity
type, strict spans (the same matching as seqeval's strict mode and spaCy's
scorer: F1 from the summed counts equals `evaluate`'s). A bootstrap sample
draws as many Docs as the split has, with replacement, the same Docs for every
system, and computes each system's micro F1 and per-type F1 from the drawn
Docs' counts. The report gives each figure's 95 % interval (2.5th and 97.5th
percentiles of the samples) and, for each system against the reference (the
first), the paired difference's interval and the share of samples in which
the system is not better.
"""
from typing import Dict, List, Sequence

import numpy
from spacy.tokens import Doc

TP, FP, FN = 0, 1, 2


def entity_counts(gold: Sequence[Doc], predicted: Sequence[Doc], labels: Sequence[str]) -> numpy.ndarray:
    """RETURNS (numpy.ndarray): (n_docs, len(labels), 3) int counts of true
    positives, false positives and false negatives per doc and entity type
    (strict: same start, end and label)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold docs but {len(predicted)} predicted docs")
    index = {label: i for i, label in enumerate(labels)}
    counts = numpy.zeros((len(gold), len(labels), 3), dtype="int64")
    for d, (g_doc, p_doc) in enumerate(zip(gold, predicted)):
        g_spans = {(e.start, e.end, e.label_) for e in g_doc.ents}
        p_spans = {(e.start, e.end, e.label_) for e in p_doc.ents}
        for spans, kind in ((g_spans & p_spans, TP), (p_spans - g_spans, FP), (g_spans - p_spans, FN)):
            for _, _, label in spans:
                if label not in index:
                    raise ValueError(f"Doc {d}: entity label {label!r} is not one of {', '.join(labels)}")
                counts[d, index[label], kind] += 1
    return counts


def f1_from_counts(counts: numpy.ndarray) -> numpy.ndarray:
    """RETURNS (numpy.ndarray): F1 = 2 TP / (2 TP + FP + FN) over the last axis
    (TP, FP, FN); 0 where there is nothing to count."""
    tp, fp, fn = counts[..., TP], counts[..., FP], counts[..., FN]
    denominator = 2 * tp + fp + fn
    return numpy.where(denominator > 0, 2 * tp / numpy.maximum(denominator, 1), 0.0)


def paired_bootstrap(
    counts: Dict[str, numpy.ndarray], labels: Sequence[str], n_samples: int = 1000, seed: int = 0
) -> Dict:
    """Bootstrap every system's F1 on the same resampled Docs.

    counts (Dict[str, numpy.ndarray]): System -> `entity_counts` on the same
        Docs; the first system is the reference of the differences.
    labels (Sequence[str]): The entity types of the counts' second axis.
    n_samples (int): Bootstrap samples.
    seed (int): Seed of the sampling.
    RETURNS (Dict): "systems": per system, "f1" and "per_type" (each
        `{"value", "low", "high"}` in F1 points, 0-100), and for every system
        but the reference "vs_reference" (the difference, its interval and
        "not_better", the share of samples with a difference <= 0);
        "reference", "samples", "docs", "seed".
    """
    names = list(counts)
    if not names:
        raise ValueError("Give at least one system")
    n_docs = counts[names[0]].shape[0]
    if any(c.shape[0] != n_docs for c in counts.values()):
        raise ValueError("Every system must be counted on the same docs")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    rng = numpy.random.default_rng(seed)
    # How often each doc is drawn in each sample: (n_samples, n_docs).
    weights = rng.multinomial(n_docs, numpy.full(n_docs, 1.0 / n_docs), size=n_samples)
    micro, per_type = {}, {}
    for name in names:
        c = counts[name].reshape(n_docs, -1).astype("float64")
        sampled = (weights @ c).reshape(n_samples, len(labels), 3)
        micro[name] = 100 * f1_from_counts(sampled.sum(axis=1))
        per_type[name] = 100 * f1_from_counts(sampled)

    def interval(value: float, samples: numpy.ndarray) -> Dict[str, float]:
        low, high = numpy.percentile(samples, [2.5, 97.5])
        return {"value": float(value), "low": float(low), "high": float(high)}

    systems: Dict[str, Dict] = {}
    reference = names[0]
    ref_f1 = 100 * f1_from_counts(counts[reference].sum(axis=(0, 1)))
    for name in names:
        total = counts[name].sum(axis=0)
        f1 = 100 * f1_from_counts(total.sum(axis=0))
        entry = {
            "f1": interval(f1, micro[name]),
            "per_type": {
                label: {**interval(100 * f1_from_counts(total[i]), per_type[name][:, i]), "support": int(total[i, TP] + total[i, FN])}
                for i, label in enumerate(labels)
            },
        }
        if name != reference:
            diff = micro[name] - micro[reference]
            entry["vs_reference"] = {**interval(f1 - ref_f1, diff), "not_better": float((diff <= 0).mean())}
        systems[name] = entry
    return {"systems": systems, "reference": reference, "samples": n_samples, "docs": n_docs, "seed": seed}


def significance_markdown(result: Dict, described: Dict[str, str], machine: str, command: str, data: str) -> str:
    """RETURNS (str): The report: F1 with intervals, the differences against the
    reference, and per-type F1 with intervals and support."""
    reference = result["reference"]
    systems = result["systems"]
    labels: List[str] = list(next(iter(systems.values()))["per_type"])

    def fmt(x: Dict) -> str:
        return f"{x['value']:.2f} [{x['low']:.2f}, {x['high']:.2f}]"

    def signed(x: Dict) -> str:
        return f"{x['value']:+.2f} [{x['low']:+.2f}, {x['high']:+.2f}]"

    lines = [
        "# Entity F1 with 95 % bootstrap intervals, and paired differences",
        "",
        f"Generated by `{command}`; do not edit.",
        f"Machine: {machine}. Data: {data}, {result['docs']:,} Docs with their gold tokens; "
        f"{result['samples']:,} bootstrap samples of as many Docs, drawn with replacement, the same Docs "
        f"for every system (seed {result['seed']}). Strict entity F1 (as `evaluate`); "
        "[low, high]: the 2.5th and 97.5th percentiles of the samples. "
        f"Not better: the share of samples in which the system's F1 is at most the reference's ({reference}).",
        "",
        "| system | what | entity F1 [95 %] | Δ vs " + reference + " [95 %] | not better |",
        "|---|---|---|---|---|",
    ]
    for name, entry in systems.items():
        vs = entry.get("vs_reference")
        difference = signed(vs) if vs else "(reference)"
        not_better = f"{vs['not_better']:.3f}" if vs else ""
        lines.append(f"| {name} | {described.get(name, '')} | {fmt(entry['f1'])} | {difference} | {not_better} |")
    lines += ["", "Per type (support: test entities of the type):", ""]
    lines.append("| system | " + " | ".join(f"{label} ({systems[reference]['per_type'][label]['support']})" for label in labels) + " |")
    lines.append("|---|" + "---|" * len(labels))
    for name, entry in systems.items():
        lines.append(f"| {name} | " + " | ".join(fmt(entry["per_type"][label]) for label in labels) + " |")
    return "\n".join(lines) + "\n"
