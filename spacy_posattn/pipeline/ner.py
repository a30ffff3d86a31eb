"""The `posattn_ner` component: entity spans from per-token BILUO tag scores."""
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
import srsly
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, SpanGroup
from spacy.training import Example, biluo_tags_to_spans, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, to_numpy
from thinc.types import Floats2d

from .decoding import biluo_tags, span_confidences, transition_constraints, viterbi_decode
from .feature_crf import FeatureCRF

CRF_FILE = "crf.crfsuite"

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-posattn.PositionalAttentionTagger.v2"
width = 256
depth = 2
heads = 4
window = 64
max_distance = 16
dropout = 0.1

[model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[model.lexical]
@architectures = "spacy.MultiHashEmbed.v2"
width = 64
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "posattn_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "ents",
        "confidence_temperature": 1.0,
        "crf_weight": 0.0,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_posattn_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    spans_key: str,
    scorer: Optional[Callable],
    confidence_temperature: float = 1.0,
    crf_weight: float = 0.0,
) -> "PosAttnEntityRecognizer":
    """Create a `posattn_ner` component.

    model (Model[List[Doc], List[Floats2d]]): Gives one row of tag
        probabilities per token, e.g. `spacy-posattn.PositionalAttentionTagger.v2`.
    spans_key (str): Key of `doc.spans` where the predicted entities are also
        stored, with their confidences in `doc.spans[spans_key].attrs["scores"]`.
    scorer (Optional[Callable]): Scoring method, `spacy.ner_scorer.v1` by default.
    confidence_temperature (float): The tag probabilities behind the entity
        confidences are softened (> 1) or sharpened (< 1) with this temperature;
        the predicted entities don't change. `python -m spacy_posattn calibrate`
        fits it on dev data.
    crf_weight (float): The weight of the component's feature CRF in the
        average of its tag marginals with the network's probabilities, from 0
        (the network alone, the default) to 1. `python -m spacy_posattn
        train-crf` trains the CRF (stored with the component) and chooses the
        weight on dev data. The CRF reads `token.tag_`, so a `tagger` must run
        before this component.
    """
    return PosAttnEntityRecognizer(
        nlp.vocab, model, name=name, spans_key=spans_key, scorer=scorer,
        confidence_temperature=confidence_temperature, crf_weight=crf_weight,
    )


class PosAttnEntityRecognizer(TrainablePipe):
    """Named entities from a per-token BILUO tagger with constrained decoding.

    Entities already in `doc.ents` (e.g. from an entity ruler earlier in the
    pipeline) are kept; predicted ones that overlap them are dropped.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "posattn_ner",
        *,
        spans_key: str = "ents",
        scorer: Optional[Callable] = None,
        confidence_temperature: float = 1.0,
        crf_weight: float = 0.0,
    ) -> None:
        if not confidence_temperature > 0:
            raise ValueError(f"[posattn_ner] confidence_temperature must be > 0, got {confidence_temperature!r}")
        if not 0.0 <= crf_weight <= 1.0:
            raise ValueError(f"[posattn_ner] crf_weight must be between 0 and 1, got {crf_weight!r}")
        self.confidence_temperature = float(confidence_temperature)
        self.crf_weight = float(crf_weight)
        self.crf: Optional[FeatureCRF] = None
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {"labels": [], "spans_key": spans_key}

    @property
    def labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str]): The entity labels."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str]): The labels, for `spacy init labels`."""
        return self.labels

    @property
    def tags(self) -> List[str]:
        """RETURNS (List[str]): The BILUO tags, in the order of the model's outputs."""
        return biluo_tags(self.labels)

    def add_label(self, label: str) -> int:
        """Add an entity label before initialization.

        label (str): The label to add.
        RETURNS (int): 0 if it was there already, else 1.
        """
        if not isinstance(label, str) or not label or "-" in label:
            raise ValueError(f"[posattn_ner] Entity labels must be non-empty strings without '-', got {label!r}.")
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"] = sorted([*self.labels, label])
        self.vocab.strings.add(label)
        return 1

    def _allow_extra_label(self) -> None:
        if self.model.has_dim("nO") and self.model.get_dim("nO") is not None:
            raise ValueError(
                f"[posattn_ner] Can't add a label to '{self.name}' after it was initialized: "
                "pass all labels at initialization (e.g. with `spacy init labels`)."
            )

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
    ) -> None:
        """Set the labels from `labels` or the data, and initialize the model.

        get_examples (Callable[[], Iterable[Example]]): The training examples.
        nlp (Language): The pipeline.
        labels (Optional[Iterable[str]]): The labels, e.g. from `spacy init labels`.
        """
        validate_get_examples(get_examples, "PosAttnEntityRecognizer.initialize")
        if labels is None:
            labels = {ent.label_ for eg in get_examples() for ent in eg.reference.ents}
        for label in sorted(labels):
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"[posattn_ner] '{self.name}' has no entity labels: the training examples have no "
                "entities and no labels were given. Check the corpus or pass `labels`."
            )
        docs = [eg.x for eg in islice(get_examples(), 10)]
        n_tags = len(self.tags)
        self.model.initialize(X=docs, Y=[self.model.ops.alloc2f(len(doc), n_tags) for doc in docs])

    def predict(self, docs: Iterable[Doc]) -> List[Floats2d]:
        """Tag probabilities for each doc; does not modify the docs.

        docs (Iterable[Doc]): The docs.
        RETURNS (List[Floats2d]): One (n_tokens, n_tags) array per doc.
        """
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            n_tags = len(self.tags)
            return [self.model.ops.alloc2f(len(doc), n_tags) for doc in docs]
        scores = self.model.predict(docs)
        if self.crf_weight > 0:
            crf = self.crf_marginals(docs)
            w = self.crf_weight
            scores = [(1.0 - w) * to_numpy(s) + w * c for s, c in zip(scores, crf)]
        return scores

    def crf_marginals(self, docs: List[Doc]) -> List[numpy.ndarray]:
        """The feature CRF's tag marginals, from the docs' words and POS tags.

        docs (List[Doc]): The docs, already POS-tagged.
        RETURNS (List[numpy.ndarray]): One (n_tokens, n_tags) array per doc.
        """
        if self.crf is None:
            raise ValueError(
                f"[posattn_ner] '{self.name}' has crf_weight = {self.crf_weight:g} but no CRF: train one "
                "with `python -m spacy_posattn train-crf`, or set crf_weight = 0."
            )
        for doc in docs:
            if len(doc) and not doc.has_annotation("TAG"):
                raise ValueError(
                    f"[posattn_ner] '{self.name}' mixes in its CRF (crf_weight = {self.crf_weight:g}), which "
                    f"reads POS tags, but the doc {doc.text[:60]!r} has none: put a `tagger` before "
                    f"'{self.name}' in the pipeline (and don't disable it), or set crf_weight = 0."
                )
        return [self.crf.doc_marginals(doc, self.tags) for doc in docs]

    def set_annotations(self, docs: Iterable[Doc], scores: List[Floats2d]) -> None:
        """Decode the best well-formed tag sequences into `doc.ents` and store
        each entity's confidence (the mean probability of its tags) in
        `doc.spans[spans_key].attrs["scores"]`.

        docs (Iterable[Doc]): The docs.
        scores (List[Floats2d]): As returned by `predict`.
        """
        docs = list(docs)
        probs = [to_numpy(p) for p in scores]
        log_probs = [numpy.log(numpy.clip(p, 1e-12, 1.0)) for p in probs]
        tags = self.tags
        paths = viterbi_decode(log_probs, *transition_constraints(tags))
        for doc, path, log_prob in zip(docs, paths, log_probs):
            existing = list(doc.ents)
            taken = {i for ent in existing for i in range(ent.start, ent.end)}
            spans = [
                span
                for span in biluo_tags_to_spans(doc, [tags[i] for i in path])
                if taken.isdisjoint(range(span.start, span.end))
            ]
            doc.set_ents(existing + spans, default="outside")
            confidences = span_confidences(log_prob, path, spans, self.confidence_temperature)
            doc.spans[self.cfg["spans_key"]] = SpanGroup(
                doc, name=self.cfg["spans_key"], spans=spans, attrs={"scores": confidences}
            )

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Cross-entropy on the tokens with a gold tag ("active loss"): tokens
        with missing or misaligned annotation add nothing.

        examples (Iterable[Example]): The batch.
        scores (List[Floats2d]): Tag probabilities, as `predict` returns.
        RETURNS (Tuple[float, List[Floats2d]]): The loss and its gradient.
        """
        validate_examples(examples, "PosAttnEntityRecognizer.get_loss")
        tag_ids = {tag: i for i, tag in enumerate(self.tags)}
        gold_ids = []
        for eg in examples:
            for tag in eg.get_aligned_ner():
                if tag in (None, "-", ""):
                    gold_ids.append(-1)  # missing or misaligned: no loss
                elif tag in tag_ids:
                    gold_ids.append(tag_ids[tag])
                else:
                    raise ValueError(
                        f"[posattn_ner] Entity label '{tag.split('-', 1)[-1]}' in "
                        f"'{eg.reference.text[:60]}' was not seen at initialization (labels: "
                        f"{', '.join(self.labels)}). Re-initialize with data or `labels` that include it."
                    )
        ops = self.model.ops
        guesses = ops.flatten(scores)
        ids = ops.asarray1i(gold_ids)
        rows = ops.xp.nonzero(ids >= 0)[0]
        # d is the gradient w.r.t. the pre-softmax logits (thinc's Softmax_v2 convention).
        d_scores = ops.alloc2f(*guesses.shape)
        d_scores[rows] = guesses[rows]
        d_scores[rows, ids[rows]] -= 1.0
        loss = -ops.xp.log(ops.xp.clip(guesses[rows, ids[rows]], 1e-12, 1.0)).sum()
        return float(loss), ops.unflatten(d_scores, [len(s) for s in scores])

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        """Serialize the component, with its CRF if it has one.

        RETURNS (bytes): The serialized component.
        """
        self._note_crf_features()
        data = srsly.msgpack_loads(super().to_bytes(exclude=exclude))
        if self.crf is not None:
            data["crf"] = self.crf.model_bytes
        return srsly.msgpack_dumps(data)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "PosAttnEntityRecognizer":
        """Load the component, with its CRF if the data has one.

        RETURNS (PosAttnEntityRecognizer): The loaded component.
        """
        data = srsly.msgpack_loads(bytes_data)
        crf = data.pop("crf", None)
        super().from_bytes(srsly.msgpack_dumps(data), exclude=exclude)
        self.crf = FeatureCRF(crf, features=self.cfg.get("crf_features", "paper")) if crf else None
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        """Save the component to a directory, its CRF as `crf.crfsuite` (and
        the CRF's feature set in `cfg`)."""
        self._note_crf_features()
        super().to_disk(path, exclude=exclude)
        if self.crf is not None:
            (Path(path) / CRF_FILE).write_bytes(self.crf.model_bytes)

    def from_disk(self, path, *, exclude=tuple()) -> "PosAttnEntityRecognizer":
        """Load the component from a directory, with `crf.crfsuite` if present.

        RETURNS (PosAttnEntityRecognizer): The loaded component.
        """
        super().from_disk(path, exclude=exclude)
        crf_path = Path(path) / CRF_FILE
        features = self.cfg.get("crf_features", "paper")
        self.crf = FeatureCRF(crf_path.read_bytes(), features=features) if crf_path.exists() else None
        return self

    def _note_crf_features(self) -> None:
        """Record the CRF's feature set in `cfg`, which is saved with the component
        (pipelines saved before feature sets existed have none: "paper")."""
        if self.crf is not None:
            self.cfg["crf_features"] = self.crf.features
        else:
            self.cfg.pop("crf_features", None)
