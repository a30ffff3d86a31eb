"""A linear-chain CRF over the paper's hand-made word features, whose BILUO tag
marginals `posattn_ner` averages with its own probabilities (`crf_weight`).

The CRF is a model of another family than the network: sparse lexical
features of the word and its neighbours plus POS tags, trained by CRFsuite's
L-BFGS in minutes. Its errors differ from the network's, so the average is
better than either (see the README's "CRF mix"). It is trained after the
network, on the gold tokens and POS tags of the training data
(`python -m spacy_posattn train-crf`), and at prediction it reads the POS tags
that the pipeline's `tagger` has just set.

The features are the paper's: the word's lowercase form, last three and two
characters, isupper, isdigit, istitle and POS tag; the lowercase form, istitle,
isupper, isdigit and POS tag of the previous ("-1:") and next ("+1:") word; and
"BOS" / "EOS" (the paper's BEG / END) at the start / end of a sequence.
"""
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import pycrfsuite
from spacy.tokens import Doc

Features = Dict[str, object]


def word_features(words: List[str], tags: List[str], i: int) -> Features:
    """RETURNS (Dict[str, object]): The features of the word at index `i` of a sentence."""
    word = words[i]
    features: Features = {
        "word.lower()": word.lower(),
        "word[-3:]": word[-3:],
        "word[-2:]": word[-2:],
        "word.isupper()": word.isupper(),
        "word.isdigit()": word.isdigit(),
        "word.istitle()": word.istitle(),
        "postag": tags[i],
    }
    for offset, prefix, edge in ((-1, "-1:", "BOS"), (1, "+1:", "EOS")):
        j = i + offset
        if 0 <= j < len(words):
            features.update(
                {
                    prefix + "word.lower()": words[j].lower(),
                    prefix + "word.istitle()": words[j].istitle(),
                    prefix + "word.isupper()": words[j].isupper(),
                    prefix + "word.isdigit()": words[j].isdigit(),
                    prefix + "postag": tags[j],
                }
            )
        else:
            features[edge] = True
    return features


def sentence_features(words: List[str], tags: List[str]) -> List[Features]:
    """RETURNS (List[Dict[str, object]]): The features of each word of a sentence."""
    return [word_features(words, tags, i) for i in range(len(words))]


def crf_sequences(doc: Doc) -> List[slice]:
    """The token slices the CRF reads as sequences: the doc's sentences when it
    has sentence boundaries (as the gold training Docs do), else the whole doc.

    RETURNS (List[slice]): The slices, in order, covering the doc.
    """
    if len(doc) and doc.has_annotation("SENT_START"):
        return [slice(sent.start, sent.end) for sent in doc.sents]
    return [slice(0, len(doc))]


class FeatureCRF:
    """A trained CRFsuite model, kept as the bytes of its model file."""

    def __init__(self, model_bytes: bytes) -> None:
        if not model_bytes:
            raise ValueError("FeatureCRF needs the bytes of a CRFsuite model file, got none.")
        self.model_bytes = bytes(model_bytes)
        self._tagger: Optional[pycrfsuite.Tagger] = None
        self._labels: List[str] = []

    @classmethod
    def train(
        cls,
        sequences: Iterable[Tuple[List[str], List[str], List[str]]],
        *,
        c1: float = 0.1,
        c2: float = 0.1,
        max_iterations: int = 100,
    ) -> "FeatureCRF":
        """Train with L-BFGS (the paper's CRF baseline settings by default).

        sequences (Iterable[Tuple[List[str], List[str], List[str]]]): Words, POS tags
            and BILUO entity tags of each sequence.
        c1 (float): L1 regularization coefficient.
        c2 (float): L2 regularization coefficient.
        max_iterations (int): The most L-BFGS iterations.
        RETURNS (FeatureCRF): The trained CRF.
        """
        trainer = pycrfsuite.Trainer(verbose=False)
        n = 0
        for words, pos, tags in sequences:
            if not (len(words) == len(pos) == len(tags)):
                raise ValueError(
                    f"A CRF training sequence has {len(words)} words, {len(pos)} POS tags and "
                    f"{len(tags)} entity tags; they must be equal (sequence {n}: {' '.join(words)[:60]!r})."
                )
            if words:
                trainer.append(sentence_features(words, pos), tags)
                n += 1
        if n == 0:
            raise ValueError("No CRF training sequences: the training data has no tokens.")
        trainer.set_params(
            {"c1": c1, "c2": c2, "max_iterations": max_iterations, "feature.possible_transitions": True}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.crfsuite"
            trainer.train(str(path))
            return cls(path.read_bytes())

    @property
    def tagger(self) -> pycrfsuite.Tagger:
        """RETURNS (pycrfsuite.Tagger): The model, opened on first use."""
        if self._tagger is None:
            self._tagger = pycrfsuite.Tagger()
            self._tagger.open_inmemory(self.model_bytes)
            self._labels = list(self._tagger.labels())
        return self._tagger

    @property
    def labels(self) -> List[str]:
        """RETURNS (List[str]): The tags the CRF was trained with."""
        self.tagger  # opens the model and reads its labels once
        return list(self._labels)

    def marginals(self, words: List[str], pos: List[str], tags: Sequence[str]) -> numpy.ndarray:
        """The marginal probability of each tag at each position of a sequence.

        words (List[str]): The words.
        pos (List[str]): Their POS tags.
        tags (Sequence[str]): The tags to give, in this order (the component's);
            a tag the CRF never saw gets 0.
        RETURNS (numpy.ndarray): (len(words), len(tags)) float32; rows sum to 1
            over the tags the CRF knows.
        """
        out = numpy.zeros((len(words), len(tags)), dtype="float32")
        if not words:
            return out
        tagger = self.tagger
        tagger.set(sentence_features(words, pos))
        for j, tag in enumerate(tags):
            if tag in self._labels:
                out[:, j] = [tagger.marginal(tag, i) for i in range(len(words))]
        return out

    def doc_marginals(self, doc: Doc, tags: Sequence[str]) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): `marginals` for a doc's tokens and POS tags
        (`token.tag_`), sequence by sequence (`crf_sequences`)."""
        words, pos = [t.text for t in doc], [t.tag_ for t in doc]
        out = numpy.zeros((len(doc), len(tags)), dtype="float32")
        for span in crf_sequences(doc):
            out[span] = self.marginals(words[span], pos[span], tags)
        return out

    def __getstate__(self) -> Dict:
        return {"model_bytes": self.model_bytes}  # the open tagger can't be pickled

    def __setstate__(self, state: Dict) -> None:
        self.__init__(state["model_bytes"])
