"""Train a pipeline's feature CRFs and choose their weights on dev data
(`python -m spacy_posattn train-crf`).

Two CRFs learn from the gold training Docs: one for entities (words and POS
tags -> BILUO tags), mixed into `posattn_ner`, and one for POS tags (words ->
tags, the "words" features), mixed into the tagger, which becomes a
`posattn_tagger`. They train at the same time, the POS CRF in a worker process
(CRFsuite uses one core each). The networks' dev probabilities are computed in
one pass. The tagger's weight is the one of `pos_weights` with the best dev tag
accuracy; then the entity CRF reads the POS tags that mix predicts, as it will
in use, and its weight is the one of `weights` with the best strict entity F1.
`refit_pipeline_crfs` (`refit-crf`) trains both again on train + dev afterwards.
"""
import concurrent.futures
import multiprocessing
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import iob_to_biluo
from thinc.api import to_numpy

from .evaluate import iob_tags, score_docs
from .pipeline.crf_mix import mix_scores
from .pipeline.feature_crf import FeatureCRF, crf_sequences
from .pipeline.tagger import PosAttnTagger
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


def pos_sequences(docs: Sequence[Doc], source: str = "the training data") -> Iterator[Tuple[List[str], List[str], List[str]]]:
    """Words and gold POS tags of each sentence of the docs, for the POS CRF.

    docs (Sequence[Doc]): Gold Docs with POS tags.
    source (str): What the docs are, for error messages.
    YIELDS (Tuple[List[str], List[str], List[str]]): Words, empty POS features
        (the "words" features read none) and the gold tags to learn.
    """
    for i, doc in enumerate(docs):
        if not len(doc):
            continue
        if not doc.has_annotation("TAG") or any(not t.tag_ for t in doc):
            raise ValueError(
                f"Doc {i} of {source} ({doc.text[:60]!r}) has tokens without a POS tag: the POS CRF "
                "learns from every token's gold `token.tag_`."
            )
        words, tags = [t.text for t in doc], [t.tag_ for t in doc]
        for span in crf_sequences(doc):
            yield words[span], [""] * len(words[span]), tags[span]


def _train_crf(sequences, settings: Dict) -> Tuple[FeatureCRF, float]:
    """RETURNS (Tuple[FeatureCRF, float]): A CRF trained on `sequences` and the seconds it took."""
    start = time.perf_counter()
    return FeatureCRF.train(sequences, **settings), time.perf_counter() - start


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
    tagger: str = "tagger",
    pos_weights: Sequence[float] = DEFAULT_WEIGHTS,
    pos_c1: float = 0.1,
    pos_c2: float = 0.01,
    pos_iterations: int = 0,
    train_source: str = "the training data",
    log: Callable[[str], None] = print,
) -> Dict:
    """Train the CRFs of `nlp`'s `component` (entities) and, with
    `pos_iterations` > 0, of its `tagger`; set them and the best weights.

    nlp (Language): The trained pipeline, with a `tagger` before `component`.
        With a POS CRF, the tagger must be a `posattn_tagger` (load the pipeline
        with `components.tagger.factory = "posattn_tagger"`, as `train-crf` does).
    train_docs (Sequence[Doc]): Gold training Docs.
    dev_docs (Sequence[Doc]): Gold dev Docs, to choose the weights.
    component (str): The `posattn_ner` component.
    weights (Sequence[float]): The entity CRF's weights to try, each in [0, 1];
        ties go to the smaller.
    c1, c2, max_iterations, features: The entity CRF's, as `FeatureCRF.train`.
    tagger (str): The tagger component.
    pos_weights (Sequence[float]): The POS CRF's weights to try.
    pos_c1, pos_c2 (float): The POS CRF's regularization.
    pos_iterations (int): The POS CRF's L-BFGS iterations; 0: no POS CRF.
    train_source (str): What the training docs are, for error messages.
    log (Callable[[str], None]): Progress messages.
    RETURNS (Dict): `weight` (chosen), `dev_f1` (per weight, in %), `train_seconds`,
        `select_seconds`, `sequences`, `crf_bytes` and the training settings of the
        entity CRF; `pos`: the same for the POS CRF (`dev_tag_acc` per weight), or None.
    """
    if component not in nlp.pipe_names:
        raise ValueError(f"The pipeline has no component '{component}' (it has {', '.join(nlp.pipe_names)})")
    ner = nlp.get_pipe(component)
    if not hasattr(ner, "crf_marginals"):
        raise ValueError(f"'{component}' is a {type(ner).__name__}, not a posattn_ner component: it has no CRF mix.")
    names = nlp.pipe_names
    if tagger not in names[: names.index(component)]:
        raise ValueError(
            f"The CRF reads POS tags, but the pipeline has no '{tagger}' before '{component}' ({', '.join(names)})."
        )
    pos_pipe = nlp.get_pipe(tagger)
    if pos_iterations and not isinstance(pos_pipe, PosAttnTagger):
        raise ValueError(
            f"'{tagger}' is a {type(pos_pipe).__name__}: a POS CRF needs a posattn_tagger (load the pipeline "
            f"with config={{'components.{tagger}.factory': 'posattn_tagger'}}), or set pos_iterations = 0."
        )
    for name, tried in (("entity", weights), ("POS", pos_weights)):
        if not tried or any(not 0.0 <= w <= 1.0 for w in tried):
            raise ValueError(f"The {name} CRF weights to try must be in [0, 1], got {list(tried)}")
    entity_settings = {"c1": c1, "c2": c2, "max_iterations": max_iterations, "features": features}
    pos_settings = {"c1": pos_c1, "c2": pos_c2, "max_iterations": pos_iterations, "features": "words"}
    crfs = _train_crfs(train_docs, train_source, entity_settings, pos_settings if pos_iterations else None, log)
    crf, pos_crf = crfs["entity"], crfs["pos"]

    start = time.perf_counter()
    tag_scores, network = _dev_network_scores(nlp, pos_pipe, ner, component, dev_docs)
    predicted_pos = [unannotated_copy(doc) for doc in dev_docs]
    pos_fit = None
    if pos_crf is not None:
        pos_pipe.crf = pos_crf
        pos_marginals = pos_pipe.crf_marginals(predicted_pos)
        gold_ids = _gold_tag_ids(dev_docs, pos_pipe.labels)
        dev_acc: Dict[float, float] = {}
        for w in sorted(set(pos_weights)):
            mixed = numpy.concatenate([m.argmax(axis=1) for m in mix_scores(tag_scores, pos_marginals, w)])
            dev_acc[w] = float((mixed[gold_ids >= 0] == gold_ids[gold_ids >= 0]).mean() * 100)
            log(f"POS crf_weight {w:g}: dev tag accuracy {dev_acc[w]:.3f}")
        pos_pipe.crf_weight = _best_weight(dev_acc)
        # The tagger's mix (as `mix_crf`), from the marginals already computed.
        tag_scores = mix_scores(tag_scores, pos_marginals, pos_pipe.crf_weight)
        pos_fit = {
            "weight": pos_pipe.crf_weight,
            "dev_tag_acc": {f"{w:g}": a for w, a in dev_acc.items()},
            "train_seconds": crfs["pos_seconds"],
            "sequences": crfs["pos_sequences"],
            "crf_bytes": len(pos_crf.model_bytes),
            "c1": pos_c1,
            "c2": pos_c2,
            "max_iterations": pos_iterations,
            "features": "words",
        }
    pos_pipe.set_annotations(predicted_pos, [numpy.asarray(s).argmax(axis=1) for s in tag_scores])
    ner.crf = crf
    marginals = ner.crf_marginals(predicted_pos)
    dev_f1: Dict[float, float] = {}
    for w in sorted(set(weights)):
        predicted = [unannotated_copy(doc) for doc in dev_docs]
        ner.set_annotations(predicted, mix_scores(network, marginals, w))
        dev_f1[w] = score_docs(list(dev_docs), predicted)["ents_f"] * 100
        log(f"crf_weight {w:g}: dev entity F1 {dev_f1[w]:.2f}")
    best = _best_weight(dev_f1)
    ner.crf_weight = best
    select_seconds = time.perf_counter() - start
    return {
        "weight": best,
        "dev_f1": {f"{w:g}": f for w, f in dev_f1.items()},
        "train_seconds": crfs["seconds"],
        "select_seconds": select_seconds,
        "sequences": crfs["sequences"],
        "crf_bytes": len(crf.model_bytes),
        "c1": c1,
        "c2": c2,
        "max_iterations": max_iterations,
        "features": features,
        "pos": pos_fit,
    }


def refit_pipeline_crfs(
    nlp: Language,
    docs: Sequence[Doc],
    *,
    component: str = "posattn_ner",
    tagger: str = "tagger",
    c1: float = 0.1,
    c2: float = 0.1,
    max_iterations: int = 100,
    pos_c1: float = 0.1,
    pos_c2: float = 0.01,
    pos_iterations: int = 60,
    source: str = "the training and dev data",
    log: Callable[[str], None] = print,
) -> Dict:
    """Train the pipeline's CRFs again, on more gold docs (e.g. train + dev, once
    `train-crf` has chosen the weights and `calibrate` the temperature on dev),
    each with its own feature set; the weights and the rest stay as they are.

    nlp (Language): A pipeline whose `component` has a CRF (and whose `tagger`
        may have one: it is refit if it has).
    docs (Sequence[Doc]): Gold docs with POS tags and entities.
    c1, c2, max_iterations: The entity CRF's settings, as `FeatureCRF.train`.
    pos_c1, pos_c2, pos_iterations: The POS CRF's (0 iterations: it is kept as it is).
    source (str): What the docs are, for error messages.
    log (Callable[[str], None]): Progress messages.
    RETURNS (Dict): `sequences`, `seconds`, `crf_bytes`, `pos_crf_bytes` (or None)
        and the settings.
    """
    ner = nlp.get_pipe(component) if component in nlp.pipe_names else None
    if ner is None or getattr(ner, "crf", None) is None:
        raise ValueError(f"'{component}' has no CRF to refit: run `python -m spacy_posattn train-crf` first.")
    pos_pipe = nlp.get_pipe(tagger) if tagger in nlp.pipe_names else None
    pos_crf = getattr(pos_pipe, "crf", None)
    entity_settings = {"c1": c1, "c2": c2, "max_iterations": max_iterations, "features": ner.crf.features}
    pos_settings = (
        {"c1": pos_c1, "c2": pos_c2, "max_iterations": pos_iterations, "features": pos_crf.features}
        if pos_crf and pos_iterations
        else None
    )
    crfs = _train_crfs(docs, source, entity_settings, pos_settings, log)
    ner.crf = crfs["entity"]
    if pos_settings is not None:
        pos_pipe.crf = crfs["pos"]
    return {
        "sequences": crfs["sequences"],
        "seconds": crfs["seconds"],
        "crf_bytes": len(crfs["entity"].model_bytes),
        "pos_crf_bytes": len(crfs["pos"].model_bytes) if crfs["pos"] is not None else None,
        "entity_settings": entity_settings,
        "pos_settings": pos_settings,
    }


def _train_crfs(docs: Sequence[Doc], source: str, entity_settings: Dict, pos_settings: Optional[Dict], log) -> Dict:
    """Train the entity CRF here and, with `pos_settings`, the POS CRF at the same
    time in a worker process.

    RETURNS (Dict): "entity" and "pos" (FeatureCRF or None), "seconds" (until both
        are done), "pos_seconds" (the worker's own), "sequences", "pos_sequences".
    """
    start = time.perf_counter()
    sequences = list(gold_sequences(docs, source))
    pos_training: Optional[concurrent.futures.Future] = None
    pool = None
    n_pos = 0
    if pos_settings is not None:
        pos_train = list(pos_sequences(docs, source))
        n_pos = len(pos_train)
        pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        pos_training = pool.submit(_train_crf, pos_train, pos_settings)
        log(f"Training the POS CRF in a worker process ({n_pos:,} sequences, at most {pos_settings['max_iterations']} iterations)")
    log(
        f"Training the entity CRF on {len(sequences):,} sequences ({entity_settings['features']!r} features, "
        f"L-BFGS, at most {entity_settings['max_iterations']} iterations)"
    )
    try:
        crf = FeatureCRF.train(sequences, **entity_settings)
        log(f"Trained the entity CRF in {time.perf_counter() - start:.0f} s ({len(crf.model_bytes) / 1e6:.1f} MB)")
        pos_crf, pos_seconds = pos_training.result() if pos_training is not None else (None, 0.0)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    seconds = time.perf_counter() - start
    if pos_crf is not None:
        log(f"Trained the POS CRF in {pos_seconds:.0f} s in the worker; both done after {seconds:.0f} s ({len(pos_crf.model_bytes) / 1e6:.1f} MB)")
    return {
        "entity": crf, "pos": pos_crf, "seconds": seconds, "pos_seconds": pos_seconds,
        "sequences": len(sequences), "pos_sequences": n_pos,
    }


def _best_weight(dev_scores: Dict[float, float]) -> float:
    """RETURNS (float): The weight with the best dev score; ties go to the smaller."""
    return max(dev_scores, key=lambda w: (round(dev_scores[w], 6), -w))


def _gold_tag_ids(docs: Sequence[Doc], labels: Sequence[str]) -> numpy.ndarray:
    """The index in `labels` of each token's gold tag, -1 where it has none or an unknown one."""
    index = {label: i for i, label in enumerate(labels)}
    return numpy.array([index.get(t.tag_, -1) for doc in docs for t in doc], dtype="i")


def _dev_network_scores(nlp: Language, tagger, ner, component: str, dev_docs: Sequence[Doc], batch_size: int = 64):
    """The tagger's and the entity network's probabilities for the dev docs (no CRF), in one encoder pass."""
    saved_weight, ner.crf_weight = ner.crf_weight, 0.0
    tag_scores: List = []
    network: List = []
    try:
        with nlp.select_pipes(disable=[tagger.name, component]):
            for start in range(0, len(dev_docs), batch_size):
                docs = list(nlp.pipe([unannotated_copy(d) for d in dev_docs[start : start + batch_size]]))
                tag_scores.extend(to_numpy(p) for p in tagger.model.predict(docs))
                network.extend(to_numpy(p) for p in ner.predict(docs))
    finally:
        ner.crf_weight = saved_weight
    return tag_scores, network
