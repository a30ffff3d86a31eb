"""Temperature for `posattn_ner`'s entity confidences, fitted on dev data
(`python -m spacy_posattn calibrate`).

The pipeline runs once over the dev docs; each predicted entity is marked
correct or not (same tokens and label as a gold one), and the temperature that
minimises the log loss of "correct" against the entity's confidence is chosen
from a grid. Only the confidences change: decoding is unaffected by a common
scale on the log probabilities.
"""
from typing import Dict, List, Sequence

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from .evaluate import expected_calibration_error
from .pipeline.decoding import span_confidences
from .readers import unannotated_copy

TEMPERATURES = tuple(float(t) for t in numpy.round(numpy.geomspace(0.5, 4.0, 43), 3))


def fit_temperature(
    nlp: Language, gold: List[Doc], component: str = "posattn_ner", grid: Sequence[float] = TEMPERATURES,
    batch_size: int = 64,
) -> Dict:
    """Choose the temperature with the lowest log loss on `gold`.

    RETURNS (Dict): `temperature` (chosen), `before` and `after` (`log_loss`,
        `ece` at the pipeline's current temperature and at the chosen one),
        `entities` (predicted entities scored) and `grid` (log loss per temperature).
    """
    ner = nlp.get_pipe(component)
    docs = [unannotated_copy(doc) for doc in gold]
    # Run every component before the recognizer, then keep its log probabilities.
    for name, proc in nlp.pipeline:
        if name == component:
            break
        docs = list(proc.pipe(docs, batch_size=batch_size))
    items = []  # (log_probs, path, spans, correct)
    for start in range(0, len(docs), batch_size):
        batch = docs[start : start + batch_size]
        scores = ner.predict(batch)
        ner.set_annotations(batch, scores)
        for doc, prob, g_doc in zip(batch, scores, gold[start : start + batch_size]):
            spans = list(doc.spans[ner.cfg["spans_key"]])
            log_prob = numpy.log(numpy.clip(ner.model.ops.to_numpy(prob), 1e-12, 1.0))
            path = log_prob.argmax(axis=1)  # only the spans' own tokens are used: set from the decoded tags
            for span in spans:
                path[span.start : span.end] = _span_tag_ids(ner.tags, span)
            gold_ents = {(e.start, e.end, e.label_) for e in g_doc.ents}
            correct = [(s.start, s.end, s.label_) in gold_ents for s in spans]
            items.append((log_prob, path, spans, correct))
    hits = numpy.asarray([c for item in items for c in item[3]], dtype=float)
    if not len(hits):
        raise ValueError("The pipeline predicted no entities on the dev docs: nothing to calibrate")

    def confidences(temperature: float) -> numpy.ndarray:
        return numpy.asarray([c for lp, path, spans, _ in items for c in span_confidences(lp, path, spans, temperature)])

    def log_loss(conf: numpy.ndarray) -> float:
        conf = numpy.clip(conf, 1e-6, 1 - 1e-6)
        return float(-(hits * numpy.log(conf) + (1 - hits) * numpy.log(1 - conf)).mean())

    losses = {t: log_loss(confidences(t)) for t in grid}
    best = min(losses, key=losses.get)
    current = ner.confidence_temperature
    return {
        "temperature": best,
        "entities": len(hits),
        "before": {"temperature": current, "log_loss": log_loss(confidences(current)),
                   "ece": expected_calibration_error(confidences(current), hits)},
        "after": {"temperature": best, "log_loss": losses[best], "ece": expected_calibration_error(confidences(best), hits)},
        "grid": {str(t): loss for t, loss in losses.items()},
    }


def _span_tag_ids(tags: List[str], span) -> List[int]:
    """RETURNS (List[int]): The BILUO tag indices of an entity span."""
    index = {tag: i for i, tag in enumerate(tags)}
    n = span.end - span.start
    if n == 1:
        return [index[f"U-{span.label_}"]]
    return [index[f"B-{span.label_}"]] + [index[f"I-{span.label_}"]] * (n - 2) + [index[f"L-{span.label_}"]]
