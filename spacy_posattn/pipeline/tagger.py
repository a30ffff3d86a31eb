"""The `posattn_tagger` component: spaCy's `Tagger` with an optional feature
CRF averaged into its tag probabilities at prediction (`crf_weight`).

Training, losses, labels, scoring and the model are spaCy's tagger's; only
`predict` changes, and only when `crf_weight` > 0. `python -m spacy_posattn
train-crf` trains the POS CRF (on the "words" features, which read no POS tags)
and turns a pipeline's `tagger` into a `posattn_tagger` with the weight chosen
on dev data.
"""
from typing import Callable, Iterable, List, Optional

from spacy.language import Language
from spacy.pipeline import Tagger
from spacy.pipeline.tagger import DEFAULT_TAGGER_MODEL, tagger_score
from spacy.tokens import Doc
from spacy.vocab import Vocab
from thinc.api import Model

from .crf_mix import FeatureCRFMix

# spaCy's `tagger` factory settings, plus crf_weight.
DEFAULT_CONFIG = {
    "model": DEFAULT_TAGGER_MODEL,
    "overwrite": False,
    "scorer": {"@scorers": "spacy.tagger_scorer.v1"},
    "neg_prefix": "!",
    "label_smoothing": 0.0,
    "crf_weight": 0.0,
}


@Language.factory(
    "posattn_tagger",
    assigns=["token.tag"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"tag_acc": 1.0, "pos_acc": 0.0, "tag_micro_p": None, "tag_micro_r": None, "tag_micro_f": None},
)
def make_posattn_tagger(
    nlp: Language,
    name: str,
    model: Model,
    overwrite: bool,
    scorer: Optional[Callable],
    neg_prefix: str,
    label_smoothing: float,
    crf_weight: float = 0.0,
) -> "PosAttnTagger":
    """Create a `posattn_tagger` component: spaCy's `tagger` (same settings)
    plus `crf_weight`.

    crf_weight (float): The weight of the component's POS feature CRF in the
        average of its tag marginals with the model's probabilities, from 0
        (the model alone: exactly spaCy's tagger, the default) to 1.
    """
    return PosAttnTagger(
        nlp.vocab, model, name=name, overwrite=overwrite, scorer=scorer, neg_prefix=neg_prefix,
        label_smoothing=label_smoothing, crf_weight=crf_weight,
    )


class PosAttnTagger(FeatureCRFMix, Tagger):
    """spaCy's `Tagger`, whose predictions can average in a feature CRF's marginals."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "tagger",
        *,
        overwrite: bool = False,
        scorer: Optional[Callable] = tagger_score,
        neg_prefix: str = "!",
        label_smoothing: float = 0.0,
        crf_weight: float = 0.0,
    ) -> None:
        super().__init__(
            vocab, model, name, overwrite=overwrite, scorer=scorer, neg_prefix=neg_prefix,
            label_smoothing=label_smoothing,
        )
        self._init_crf_mix(crf_weight)

    @property
    def crf_labels(self) -> List[str]:
        """RETURNS (List[str]): The tags of the CRF mix's columns: `labels`."""
        return list(self.labels)

    def predict(self, docs: Iterable[Doc]):
        """The best tag of each token (ids into `labels`), from the model's
        probabilities averaged with the CRF's marginals at `crf_weight`.

        docs (Iterable[Doc]): The docs.
        RETURNS (List[numpy.ndarray]): One array of tag ids per doc.
        """
        docs = list(docs)
        if self.crf_weight <= 0 or not any(len(doc) for doc in docs):
            return super().predict(docs)
        return self._scores2guesses(self.mix_crf(docs, self.model.predict(docs)))
