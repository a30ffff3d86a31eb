"""The paper's CRF baseline for NER: hand-made word features with POS tags from a
spaCy tagger, a linear-chain CRF (sklearn-crfsuite, L-BFGS) over sentences.

The features are the paper's (`pipeline.feature_crf.word_features`, which the
pipeline's own CRF mix uses too).
"""
import time
from pathlib import Path
from typing import Dict, List

import spacy
import sklearn_crfsuite
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import biluo_tags_to_spans, iob_to_biluo

from ..evaluate import iob_tags, score_docs
from ..pipeline.feature_crf import Features, sentence_features, word_features  # noqa: F401
from ..readers import unannotated_copy


def sentence_spans(doc: Doc) -> List[slice]:
    """RETURNS (List[slice]): The token slices of the doc's sentences, the CRF's sequences."""
    if len(doc) and not doc.has_annotation("SENT_START"):
        raise ValueError("The CRF works on sentences, but a gold Doc has no sentence boundaries")
    return [slice(sent.start, sent.end) for sent in doc.sents]


def sentence_labels(doc: Doc) -> List[List[str]]:
    """RETURNS (List[List[str]]): The gold IOB2 entity tags of each sentence of the doc."""
    tags = iob_tags(doc)
    return [tags[span] for span in sentence_spans(doc)]


def featurize(tagged: Doc, spans: List[slice]) -> List[List[Features]]:
    """RETURNS (List[List[Dict[str, object]]]): Per sentence, the features of a POS-tagged doc."""
    words, tags = [t.text for t in tagged], [t.tag_ for t in tagged]
    return [sentence_features(words[span], tags[span]) for span in spans]


def doc_with_entities(doc: Doc, tags: List[str]) -> Doc:
    """RETURNS (Doc): An unannotated copy of `doc` with entities from IOB2 `tags`.
    An `I-x` that does not continue a `B-x` / `I-x` starts an entity (the conlleval
    convention, which spaCy's `iob_to_biluo` follows)."""
    predicted = unannotated_copy(doc)
    predicted.ents = biluo_tags_to_spans(predicted, iob_to_biluo(tags))
    return predicted


def load_tagger(tagger_model: Path) -> Language:
    """Load a spaCy pipeline with a `tagger`, running only the components up to the tagger
    (later ones, e.g. "ner" or "posattn_ner", cannot change its input).

    tagger_model (Path): The pipeline folder.
    RETURNS (Language): The pipeline.
    """
    nlp = spacy.load(tagger_model)
    if "tagger" not in nlp.pipe_names:
        raise ValueError(
            f"The pipeline at {tagger_model} has no 'tagger' component (it has {nlp.pipe_names}); "
            "the CRF baseline needs a pipeline with a tagger for its POS features"
        )
    nlp.select_pipes(enable=nlp.pipe_names[: nlp.pipe_names.index("tagger") + 1])
    return nlp


def tag_and_featurize(nlp: Language, docs: List[Doc], batch_size: int = 64) -> List[List[Features]]:
    """RETURNS (List[List[Dict[str, object]]]): The features of every sentence of the docs,
    with POS tags from `nlp` on the gold tokens."""
    inputs = [unannotated_copy(doc) for doc in docs]
    X: List[List[Features]] = []
    for doc, tagged in zip(docs, nlp.pipe(inputs, batch_size=batch_size)):
        X.extend(featurize(tagged, sentence_spans(doc)))
    return X


def train_and_evaluate(
    train_path: Path,
    test_path: Path,
    tagger_model: Path,
    output_dir: Path,
    max_iterations: int = 100,
    c1: float = 0.1,
    c2: float = 0.1,
    limit: int = 0,
) -> Dict:
    """Train the CRF on a `.spacy` file and score it on another.

    train_path (Path): The training DocBin (gold tokens, sentences, entities).
    test_path (Path): The test DocBin.
    tagger_model (Path): A spaCy pipeline with a `tagger`, for the POS features.
    output_dir (Path): Where to write `model.crfsuite`.
    max_iterations (int): The most L-BFGS iterations.
    c1 (float): L1 regularization coefficient.
    c2 (float): L2 regularization coefficient.
    limit (int): Train on the first `limit` docs only; 0 for all.
    RETURNS (Dict): `score_docs`'s scores (speed: POS tagging, features and CRF decoding
        of the test docs), plus "train_seconds" (POS tagging, features and CRF training),
        "epochs" (L-BFGS iterations run) and "max_iterations".
    """
    nlp = load_tagger(tagger_model)
    train_docs = list(DocBin().from_disk(train_path).get_docs(nlp.vocab))
    train_docs = train_docs[:limit] if limit > 0 else train_docs
    test_docs = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs",
        c1=c1,
        c2=c2,
        max_iterations=max_iterations,
        all_possible_transitions=True,
        model_filename=str(output_dir / "model.crfsuite"),
    )
    start = time.perf_counter()
    y_train = [labels for doc in train_docs for labels in sentence_labels(doc)]
    crf.fit(tag_and_featurize(nlp, train_docs), y_train)
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    y_pred = crf.predict(tag_and_featurize(nlp, test_docs))
    predict_seconds = time.perf_counter() - start

    predicted, sentences = [], iter(y_pred)
    for doc in test_docs:
        tags = [tag for _ in sentence_spans(doc) for tag in next(sentences)]
        predicted.append(doc_with_entities(doc, tags))
    log = getattr(crf, "training_log_", None)
    scores = score_docs(test_docs, predicted, seconds=predict_seconds)
    scores.update(
        {
            "train_seconds": train_seconds,
            "epochs": len(log.iterations) if log is not None and log.iterations else max_iterations,
            "max_iterations": max_iterations,
        }
    )
    return scores
