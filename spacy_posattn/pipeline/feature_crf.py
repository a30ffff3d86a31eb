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
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import pycrfsuite
from spacy.tokens import Doc

# The token slices the CRF reads as sequences: the doc's sentences, when it has them.
from ..sentences import sentence_slices as crf_sequences

if TYPE_CHECKING:
    from .crf_attributes import AttributeRows

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
# Sequences per forward-backward pass in `FeatureCRF.batch_marginals`.
GROUP_SIZE = 32
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
        self._weights: Optional[CRFWeights] = None
        self._attribute_rows: Optional["AttributeRows"] = None

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
        return self.batch_marginals([(words, pos)], tags)[0]

    def doc_marginals(self, doc: Doc, tags: Sequence[str]) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): `marginals` for a doc's tokens and POS tags
        (`token.tag_`), sequence by sequence (`crf_sequences`)."""
        return self.docs_marginals([doc], tags)[0]

    def docs_marginals(self, docs: Sequence[Doc], tags: Sequence[str]) -> List[numpy.ndarray]:
        """RETURNS (List[numpy.ndarray]): `doc_marginals` for each doc, computed
        together (`batch_marginals`)."""
        sequences: List[Tuple[List[str], List[str]]] = []
        places: List[Tuple[int, slice]] = []
        reads_tags = reads_pos_tags(self.features)
        for i, doc in enumerate(docs):
            words = [t.text for t in doc]
            pos = [t.tag_ for t in doc] if reads_tags else [""] * len(words)  # the "words" set reads none
            for span in crf_sequences(doc):
                sequences.append((words[span], pos[span]))
                places.append((i, span))
        out = [numpy.zeros((len(doc), len(tags)), dtype="float32") for doc in docs]
        for (i, span), marginals in zip(places, self.batch_marginals(sequences, tags)):
            out[i][span] = marginals
        return out

    def batch_marginals(self, sequences: Sequence[Tuple[List[str], List[str]]], tags: Sequence[str]) -> List[numpy.ndarray]:
        """`marginals` for several (words, POS tags) sequences, by forward-backward
        in numpy on the CRF's weights (read once from CRFsuite's model dump):
        CRFsuite's own `Tagger.marginal` answers one tag at one position per call.

        RETURNS (List[numpy.ndarray]): One (len(words), len(tags)) float32 array per sequence.
        """
        weights = self.weights
        columns = [weights.label_index.get(tag) for tag in tags]
        known = [j for j, column in enumerate(columns) if column is not None]  # a tag the CRF never saw gets 0
        known_columns = [columns[j] for j in known]
        out = [numpy.zeros((len(words), len(tags)), dtype="float32") for words, _ in sequences]
        # Sequences sorted by length, in groups of up to GROUP_SIZE that share one
        # forward-backward pass, each padded to its longest.
        order = sorted((k for k, (words, _) in enumerate(sequences) if words), key=lambda k: len(sequences[k][0]))
        sentence_rows = self.attribute_rows.sentence_rows
        for start in range(0, len(order), GROUP_SIZE):
            members = order[start : start + GROUP_SIZE]
            lengths = numpy.array([len(sequences[k][0]) for k in members])
            flat = weights.row_scores([rows for k in members for rows in sentence_rows(*sequences[k])])
            scores = numpy.zeros((len(members), int(lengths.max()), len(weights.labels)))
            ends = numpy.cumsum(lengths)
            for row, (end, n) in enumerate(zip(ends, lengths)):
                scores[row, :n] = flat[end - n : end]
            marginals = weights.forward_backward(scores, lengths)
            for k, m, n in zip(members, marginals, lengths):
                out[k][:, known] = m[:n][:, known_columns]
        return out

    @property
    def attribute_rows(self) -> "AttributeRows":
        """RETURNS (AttributeRows): The weight rows of each position's attributes
        under this CRF's feature set (each word type's cached), made on first use."""
        if self._attribute_rows is None:
            from .crf_attributes import AttributeRows  # it imports this module

            self._attribute_rows = AttributeRows(self.weights.attributes, self.features)
        return self._attribute_rows

    @property
    def weights(self) -> "CRFWeights":
        """RETURNS (CRFWeights): The model's weights as arrays, read on first use."""
        if self._weights is None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.txt"
                self.tagger.dump(str(path))
                self._weights = CRFWeights.from_dump(path.read_text(encoding="utf8"), self.labels)
        return self._weights

    def __getstate__(self) -> Dict:
        return {"model_bytes": self.model_bytes, "features": self.features}  # the open tagger can't be pickled

    def __setstate__(self, state: Dict) -> None:
        self.__init__(state["model_bytes"], state.get("features", "paper"))


class CRFWeights:
    """A linear-chain CRF's weights as arrays: state weights per attribute and
    label, transition weights per label pair (CRFsuite's CRF1d has no start or
    end weights)."""

    def __init__(self, labels: List[str], attributes: Dict[str, int], state: numpy.ndarray, transitions: numpy.ndarray) -> None:
        self.labels = labels
        self.label_index = {label: i for i, label in enumerate(labels)}
        self.attributes = attributes
        self.state = state  # (n_attributes + 1, n_labels): the last row is 0, for unknown attributes
        self.transitions = transitions  # (n_labels, n_labels), from row to column
        self._exp_transitions = numpy.exp(transitions)

    @classmethod
    def from_dump(cls, text: str, labels: List[str]) -> "CRFWeights":
        """Read the text of CRFsuite's `Tagger.dump` (weights printed to 6 decimals)."""
        index = {label: i for i, label in enumerate(labels)}
        attributes: Dict[str, int] = {}
        transitions = numpy.zeros((len(labels), len(labels)))
        rows: List[int] = []
        cols: List[int] = []
        values: List[float] = []
        section = None
        for line in text.split("\n"):
            line = line.lstrip()  # trailing spaces can belong to a name
            if not line:
                continue
            if line.endswith(" = {") and line.split(" ", 1)[0].isupper():
                section = line.split(" ", 1)[0]
            elif line == "}":
                section = None
            elif section == "ATTRIBUTES":
                number, name = line.split(": ", 1)
                attributes[name] = int(number)
            elif section in ("TRANSITIONS", "STATE_FEATURES"):
                body, weight = line.split(") ", 1)[1].rsplit(": ", 1)
                source, label = body.rsplit(" --> ", 1)
                if section == "TRANSITIONS":
                    transitions[index[source], index[label]] = float(weight)
                else:
                    rows.append(attributes[source])
                    cols.append(index[label])
                    values.append(float(weight))
        state = numpy.zeros((len(attributes) + 1, len(labels)))
        state[rows, cols] = values
        return cls(labels, attributes, state, transitions)

    def row_scores(self, rows: List[List[int]]) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): (len(rows), n_labels): each position's sum of
        the state weight rows of its attributes (`AttributeRows.sentence_rows`;
        every attribute of the feature sets has the value 1)."""
        if not rows:
            return numpy.zeros((0, len(self.labels)))
        unknown = len(self.attributes)  # the zero row: every position has one, so no segment is empty
        flat: List[int] = []
        starts: List[int] = []
        for position in rows:
            starts.append(len(flat))
            flat.append(unknown)
            flat.extend(position)
        return numpy.add.reduceat(self.state[flat], starts, axis=0)

    def forward_backward(self, scores: numpy.ndarray, lengths: numpy.ndarray) -> numpy.ndarray:
        """The label marginals of sequences padded to one length.

        scores (numpy.ndarray): (n_sequences, length, n_labels) state scores.
        lengths (numpy.ndarray): Each sequence's length; the positions after it
            are padding.
        RETURNS (numpy.ndarray): The marginals, same shape, float32 (meaningless
            on the padding).
        """
        n, length, _ = scores.shape
        emit = numpy.exp(scores - scores.max(axis=2, keepdims=True))
        trans = self._exp_transitions
        alpha = numpy.empty_like(emit)
        beta = numpy.empty_like(emit)
        alpha[:, 0] = emit[:, 0] / emit[:, 0].sum(axis=1, keepdims=True)
        for t in range(1, length):
            a = (alpha[:, t - 1] @ trans) * emit[:, t]
            alpha[:, t] = a / a.sum(axis=1, keepdims=True)
        beta[:, length - 1] = 1.0
        for t in range(length - 2, -1, -1):
            b = (emit[:, t + 1] * beta[:, t + 1]) @ trans.T
            # A sequence's last position (and its padding) has beta 1.
            beta[:, t] = numpy.where((t >= lengths - 1)[:, None], 1.0, b / b.sum(axis=1, keepdims=True))
        marginals = alpha * beta
        return (marginals / marginals.sum(axis=2, keepdims=True)).astype("float32")
