"""The `posattn_ner` component: entity spans from per-token BILUO tag scores."""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, SpanGroup
from spacy.training import Example, biluo_tags_to_spans, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, to_numpy
from thinc.types import Floats2d

from .crf_mix import FeatureCRFMix
from .decoding import biluo_tags, span_confidences, transition_constraints, viterbi_decode

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


class PosAttnEntityRecognizer(FeatureCRFMix, TrainablePipe):
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
        self.confidence_temperature = float(confidence_temperature)
        self.vocab = vocab
        self.model = model
        self.name = name
        self._init_crf_mix(crf_weight)
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

    @property
    def crf_labels(self) -> List[str]:
        """RETURNS (List[str]): The tags of the CRF mix's columns: `tags`."""
        return self.tags

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
        return self.mix_crf(docs, self.model.predict(docs))

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
