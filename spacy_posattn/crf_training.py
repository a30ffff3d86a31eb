"""Train a pipeline's feature CRF and choose its weight on dev data
(`python -m spacy_posattn train-crf`).

The CRF learns from the gold tokens, POS tags and entities of the training
Docs. The weight of its marginals in `posattn_ner`'s average is the one of
`weights` with the best strict entity F1 on the dev Docs, where the CRF reads
the POS tags the pipeline's own tagger predicts, as it will in use. The
network's probabilities are computed once; each weight only re-decodes.
"""
import time
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import iob_to_biluo
from thinc.api import to_numpy

from .evaluate import iob_tags, score_docs
from .pipeline.feature_crf import FeatureCRF, crf_sequences
from .readers import unannotated_copy

# As the `train-crf` command's --weights.
DEFAULT_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def gold_sequences(docs: Sequence[Doc], source: str = "the training data") -> Iterator[Tuple[List[str], List[str], List[str]]]:
    """Words, gold POS tags and gold BILUO tags of each sentence of the docs.

    docs (Sequence[Doc]): Gold Docs with POS tags and complete entity annotation.
    source (str): What the docs are, for error messages (e.g. a file name).
    YIELDS (Tuple[List[str], List[str], List[str]]): One sequence at a time.
    """
    for i, doc in enumerate(docs):
        if not len(doc):
            continue
        if not doc.has_annotation("TAG"):
            raise ValueError(
                f"Doc {i} of {source} ({doc.text[:60]!r}) has no POS tags: the CRF learns from gold "
                "`token.tag_`. Convert the corpus with POS tags (as `python -m spacy_posattn convert` does)."
            )
        if any(not t.ent_iob_ for t in doc):
            raise ValueError(
                f"Doc {i} of {source} ({doc.text[:60]!r}) has tokens with missing entity annotation: "
                "the CRF needs every token's gold tag (`O` outside entities)."
            )
        words, pos, tags = [t.text for t in doc], [t.tag_ for t in doc], iob_to_biluo(iob_tags(doc))
        for span in crf_sequences(doc):
            yield words[span], pos[span], tags[span]


def train_pipeline_crf(
    nlp: Language,
    train_docs: Sequence[Doc],
    dev_docs: Sequence[Doc],
    *,
    component: str = "posattn_ner",
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    c1: float = 0.1,
    c2: float = 0.1,
    max_iterations: int = 100,
    features: str = "paper",
    train_source: str = "the training data",
    log: Callable[[str], None] = print,
) -> Dict:
    """Train the CRF of `nlp`'s `component`, set it, and set the best weight.

    nlp (Language): The trained pipeline, with a `tagger` before `component`.
    train_docs (Sequence[Doc]): Gold training Docs.
    dev_docs (Sequence[Doc]): Gold dev Docs, to choose the weight.
    component (str): The `posattn_ner` component.
    weights (Sequence[float]): The weights to try, each in [0, 1]; ties go to the smaller.
    c1, c2, max_iterations, features: As `FeatureCRF.train`.
    train_source (str): What the training docs are, for error messages.
    log (Callable[[str], None]): Progress messages.
    RETURNS (Dict): `weight` (chosen), `dev_f1` (per weight, in %), `train_seconds`,
        `select_seconds`, `sequences`, `crf_bytes` and the training settings.
    """
    if component not in nlp.pipe_names:
        raise ValueError(f"The pipeline has no component '{component}' (it has {', '.join(nlp.pipe_names)})")
    ner = nlp.get_pipe(component)
    if not hasattr(ner, "crf_marginals"):
        raise ValueError(f"'{component}' is a {type(ner).__name__}, not a posattn_ner component: it has no CRF mix.")
    names = nlp.pipe_names
    if "tagger" not in names[: names.index(component)]:
        raise ValueError(
            f"The CRF reads POS tags, but the pipeline has no 'tagger' before '{component}' ({', '.join(names)})."
        )
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise ValueError(f"The CRF weights to try must be in [0, 1], got {list(weights)}")
    start = time.perf_counter()
    sequences = list(gold_sequences(train_docs, train_source))
    log(
        f"Training the CRF on {len(sequences):,} sequences ({features!r} features, L-BFGS, "
        f"at most {max_iterations} iterations)"
    )
    crf = FeatureCRF.train(sequences, c1=c1, c2=c2, max_iterations=max_iterations, features=features)
    train_seconds = time.perf_counter() - start
    log(f"Trained in {train_seconds:.0f} s ({len(crf.model_bytes) / 1e6:.1f} MB)")

    start = time.perf_counter()
    ner.crf = crf
    network, marginals = _dev_scores(nlp, ner, component, dev_docs)
    dev_f1: Dict[float, float] = {}
    for w in sorted(set(weights)):
        predicted = [unannotated_copy(doc) for doc in dev_docs]
        ner.set_annotations(predicted, [(1.0 - w) * n + w * m for n, m in zip(network, marginals)])
        dev_f1[w] = score_docs(list(dev_docs), predicted)["ents_f"] * 100
        log(f"crf_weight {w:g}: dev entity F1 {dev_f1[w]:.2f}")
    best = max(dev_f1, key=lambda w: (round(dev_f1[w], 6), -w))
    ner.crf_weight = best
    return {
        "weight": best,
        "dev_f1": {f"{w:g}": f for w, f in dev_f1.items()},
        "train_seconds": train_seconds,
        "select_seconds": time.perf_counter() - start,
        "sequences": len(sequences),
        "crf_bytes": len(crf.model_bytes),
        "c1": c1,
        "c2": c2,
        "max_iterations": max_iterations,
        "features": features,
    }


def _dev_scores(nlp: Language, ner, component: str, dev_docs: Sequence[Doc], batch_size: int = 64):
    """The network's probabilities and the CRF's marginals (on predicted POS tags) for the dev docs."""
    saved_weight, ner.crf_weight = ner.crf_weight, 0.0
    network: List = []
    marginals: List = []
    try:
        with nlp.select_pipes(disable=[component]):
            for start in range(0, len(dev_docs), batch_size):
                docs = list(nlp.pipe([unannotated_copy(d) for d in dev_docs[start : start + batch_size]]))
                network.extend(to_numpy(p) for p in ner.predict(docs))
                marginals.extend(ner.crf_marginals(docs))
    finally:
        ner.crf_weight = saved_weight
    return network, marginals

