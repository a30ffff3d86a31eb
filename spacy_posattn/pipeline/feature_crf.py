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
The "extended" set (`extended_word_features`, the default pipeline's) adds the
word's shape, prefixes and 4-character suffix, the lowercase form, istitle and
POS tag two words away, and the word and POS bigrams with each neighbour.

The same class serves `posattn_tagger`'s POS CRF, on the "words" set
(`word_only_features`), which reads no POS tags.
"""
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

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


def word_shape(word: str) -> str:
    """RETURNS (str): The word's character classes with repeats collapsed:
    "Xx" for "London", "d.d" for "3.5", "X-d" for "F-16"."""
    shape: List[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not shape or shape[-1] != c:
            shape.append(c)
    return "".join(shape)


def extended_word_features(words: List[str], tags: List[str], i: int) -> Features:
    """RETURNS (Dict[str, object]): The paper's features of the word at index `i`
    plus its shape, prefixes, 4-character suffix, hyphen and digit flags, the
    words and POS tags two away, and the word and POS bigrams with each neighbour."""
    features = word_features(words, tags, i)
    word = words[i]
    lower = word.lower()
    features.update(
        {
            "word[:3]": lower[:3],
            "word[:2]": lower[:2],
            "word[-4:]": lower[-4:],
            "shape": word_shape(word),
            "hyphen": "-" in word,
            "hasdigit": any(c.isdigit() for c in word),
            "pos[:2]": tags[i][:2],
        }
    )
    for offset in (-2, 2):
        j = i + offset
        if 0 <= j < len(words):
            features[f"{offset}:word.lower()"] = words[j].lower()
            features[f"{offset}:word.istitle()"] = words[j].istitle()
            features[f"{offset}:postag"] = tags[j]
    for offset in (-1, 1):
        j = i + offset
        if 0 <= j < len(words):
            first, second = (j, i) if offset < 0 else (i, j)
            features[f"{offset}:shape"] = word_shape(words[j])
            features[f"{offset}:word[-3:]"] = words[j].lower()[-3:]
            features[f"bigram{offset}"] = words[first].lower() + "|" + words[second].lower()
            features[f"posbigram{offset}"] = tags[first] + "|" + tags[second]
    return features


def word_only_features(words: List[str], tags: List[str], i: int) -> Features:
    """RETURNS (Dict[str, object]): Features of the word at index `i` that read
    no POS tags (`tags` is ignored), for a CRF that predicts them: the word's
    lowercase form, shape, 1- to 4-character suffixes and 1- to 3-character
    prefixes, istitle, isupper, isdigit and hyphen flags; the lowercase forms of
    the words up to two away ("-2:" ... "2:", or "-2:edge" past an edge); the
    shape and 3-character suffix of each neighbour and the word bigrams with them."""
    word = words[i]
    lower = word.lower()
    features: Features = {
        "bias": 1.0,
        "word.lower()": lower,
        "shape": word_shape(word),
        "word.istitle()": word.istitle(),
        "word.isupper()": word.isupper(),
        "word.isdigit()": word.isdigit(),
        "hyphen": "-" in word,
    }
    for k in (1, 2, 3, 4):
        features[f"word[-{k}:]"] = lower[-k:]
    for k in (1, 2, 3):
        features[f"word[:{k}]"] = lower[:k]
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if not 0 <= j < len(words):
            features[f"{offset}:edge"] = True
            continue
        features[f"{offset}:word.lower()"] = words[j].lower()
        if abs(offset) == 1:
            first, second = (j, i) if offset < 0 else (i, j)
            features[f"{offset}:word[-3:]"] = words[j].lower()[-3:]
            features[f"{offset}:shape"] = word_shape(words[j])
            features[f"bigram{offset}"] = words[first].lower() + "|" + words[second].lower()
    return features


# The CRF's feature sets by name: a trained CRF keeps the name of its own.
FEATURE_SETS: Dict[str, Callable[[List[str], List[str], int], Features]] = {
    "paper": word_features,
    "extended": extended_word_features,
    "words": word_only_features,
}
# The feature sets that read POS tags (a CRF with one needs a tagger before it).
POS_FEATURE_SETS = ("paper", "extended")


def feature_set(name: str) -> Callable[[List[str], List[str], int], Features]:
    """RETURNS (Callable): The word-feature function of a feature set (`FEATURE_SETS`)."""
    if name not in FEATURE_SETS:
        raise ValueError(f"Unknown CRF feature set {name!r}: use one of {', '.join(map(repr, FEATURE_SETS))}.")
    return FEATURE_SETS[name]


def reads_pos_tags(features: str) -> bool:
    """RETURNS (bool): Whether the feature set named `features` reads POS tags."""
    feature_set(features)
    return features in POS_FEATURE_SETS


def sentence_features(words: List[str], tags: List[str], features: str = "paper") -> List[Features]:
    """RETURNS (List[Dict[str, object]]): The features of each word of a sentence,
    from the feature set named `features` (`FEATURE_SETS`)."""
    word_fn = feature_set(features)
    return [word_fn(words, tags, i) for i in range(len(words))]


def crf_sequences(doc: Doc) -> List[slice]:
    """The token slices the CRF reads as sequences: the doc's sentences when it
    has sentence boundaries (as the gold training Docs do), else the whole doc.

    RETURNS (List[slice]): The slices, in order, covering the doc.
    """
    if len(doc) and doc.has_annotation("SENT_START"):
        return [slice(sent.start, sent.end) for sent in doc.sents]
    return [slice(0, len(doc))]


class FeatureCRF:
    """A trained CRFsuite model, kept as the bytes of its model file, and the
    name of the feature set (`FEATURE_SETS`) it was trained on."""

    def __init__(self, model_bytes: bytes, features: str = "paper") -> None:
        if not model_bytes:
            raise ValueError("FeatureCRF needs the bytes of a CRFsuite model file, got none.")
        feature_set(features)  # a clear error for an unknown name
        self.model_bytes = bytes(model_bytes)
        self.features = features
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
        features: str = "paper",
    ) -> "FeatureCRF":
        """Train with L-BFGS (the paper's CRF baseline settings by default).

        sequences (Iterable[Tuple[List[str], List[str], List[str]]]): Words, POS tags
            and the tags to learn (BILUO entity tags, or POS tags again for a
            "words" CRF, which reads no POS features) of each sequence.
        c1 (float): L1 regularization coefficient.
        c2 (float): L2 regularization coefficient.
        max_iterations (int): The most L-BFGS iterations.
        features (str): The feature set (`FEATURE_SETS`): "paper" or "extended"
            for entities, "words" for POS tags.
        RETURNS (FeatureCRF): The trained CRF.
        """
        feature_set(features)
        trainer = pycrfsuite.Trainer(verbose=False)
        n = 0
        for words, pos, tags in sequences:
            if not (len(words) == len(pos) == len(tags)):
                raise ValueError(
                    f"A CRF training sequence has {len(words)} words, {len(pos)} POS tags and "
                    f"{len(tags)} entity tags; they must be equal (sequence {n}: {' '.join(words)[:60]!r})."
                )
            if words:
                trainer.append(sentence_features(words, pos, features), tags)
                n += 1
        if n == 0:
            raise ValueError("No CRF training sequences: the training data has no tokens.")
        trainer.set_params(
            {"c1": c1, "c2": c2, "max_iterations": max_iterations, "feature.possible_transitions": True}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.crfsuite"
            trainer.train(str(path))
            return cls(path.read_bytes(), features=features)

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
        tagger.set(sentence_features(words, pos, self.features))
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
        return {"model_bytes": self.model_bytes, "features": self.features}  # the open tagger can't be pickled

    def __setstate__(self, state: Dict) -> None:
        self.__init__(state["model_bytes"], state.get("features", "paper"))
