"""The attributes a feature CRF sees at each position of a sentence, built fast.

pycrfsuite turns a feature dict into attributes: {"k": "v"} is the attribute
"k:v" with value 1, {"k": True} (or a number) the attribute "k" with that
value, {"k": False} nothing that counts. Every feature set of `feature_crf`
gives only the value 1 (`True` flags and the "bias" 1.0), so a position's state
score is the sum of its attributes' weight rows.

`sentence_features` builds one dict per token and reads each neighbour's word
again at every position. Here a word's strings for each role (the word itself,
or the neighbour at offset -2 .. 2) are built once per word type and turned
into weight rows once (`AttributeRows` caches them), and a position adds only
its POS tags and word bigrams. `attribute_strings` gives exactly the attributes
that pycrfsuite makes of `sentence_features` (tested on every feature set).
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .feature_crf import FEATURE_SETS, word_shape

WordRoles = Dict[int, List[str]]


def _flags(prefix: str, word: str, names: Sequence[str]) -> List[str]:
    tests = {"istitle": word.istitle, "isupper": word.isupper, "isdigit": word.isdigit}
    return [f"{prefix}word.{name}()" for name in names if tests[name]()]


def _paper_roles(word: str) -> WordRoles:
    lower = word.lower()
    roles: WordRoles = {
        0: [f"word.lower():{lower}", f"word[-3:]:{word[-3:]}", f"word[-2:]:{word[-2:]}"]
        + _flags("", word, ("isupper", "isdigit", "istitle"))
    }
    for offset, prefix in ((-1, "-1:"), (1, "+1:")):
        roles[offset] = [f"{prefix}word.lower():{lower}"] + _flags(prefix, word, ("istitle", "isupper", "isdigit"))
    return roles


def _extended_roles(word: str) -> WordRoles:
    roles = _paper_roles(word)
    lower, shape = word.lower(), word_shape(word)
    roles[0] += [f"word[:3]:{lower[:3]}", f"word[:2]:{lower[:2]}", f"word[-4:]:{lower[-4:]}", f"shape:{shape}"]
    roles[0] += ["hyphen"] * ("-" in word) + ["hasdigit"] * any(c.isdigit() for c in word)
    for offset in (-2, 2):
        roles[offset] = [f"{offset}:word.lower():{lower}"] + _flags(f"{offset}:", word, ("istitle",))
    for offset in (-1, 1):
        roles[offset] += [f"{offset}:shape:{shape}", f"{offset}:word[-3:]:{lower[-3:]}"]
    return roles


def _words_roles(word: str) -> WordRoles:
    lower, shape = word.lower(), word_shape(word)
    roles: WordRoles = {
        0: ["bias", f"word.lower():{lower}", f"shape:{shape}"]
        + _flags("", word, ("istitle", "isupper", "isdigit"))
        + ["hyphen"] * ("-" in word)
        + [f"word[-{k}:]:{lower[-k:]}" for k in (1, 2, 3, 4)]
        + [f"word[:{k}]:{lower[:k]}" for k in (1, 2, 3)]
    }
    for offset in (-2, -1, 1, 2):
        roles[offset] = [f"{offset}:word.lower():{lower}"]
        if abs(offset) == 1:
            roles[offset] += [f"{offset}:word[-3:]:{lower[-3:]}", f"{offset}:shape:{shape}"]
    return roles


def _paper_position(words: List[str], tags: List[str], i: int) -> List[str]:
    out = [f"postag:{tags[i]}"]
    for offset, prefix, edge in ((-1, "-1:", "BOS"), (1, "+1:", "EOS")):
        j = i + offset
        out.append(f"{prefix}postag:{tags[j]}" if 0 <= j < len(words) else edge)
    return out


def _extended_position(words: List[str], tags: List[str], i: int) -> List[str]:
    out = _paper_position(words, tags, i) + [f"pos[:2]:{tags[i][:2]}"]
    for offset in (-2, 2):
        j = i + offset
        if 0 <= j < len(words):
            out.append(f"{offset}:postag:{tags[j]}")
    for offset in (-1, 1):
        j = i + offset
        if 0 <= j < len(words):
            first, second = (j, i) if offset < 0 else (i, j)
            out.append(f"bigram{offset}:{words[first].lower()}|{words[second].lower()}")
            out.append(f"posbigram{offset}:{tags[first]}|{tags[second]}")
    return out


def _words_position(words: List[str], tags: List[str], i: int) -> List[str]:
    out = []
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if not 0 <= j < len(words):
            out.append(f"{offset}:edge")
        elif abs(offset) == 1:
            first, second = (j, i) if offset < 0 else (i, j)
            out.append(f"bigram{offset}:{words[first].lower()}|{words[second].lower()}")
    return out


# Per feature set: the strings of a word in each role (0: itself; -2..2: the
# neighbour at that offset from the position), and the strings of a position
# that depend on more than one word (POS tags, bigrams, sentence edges).
SPLIT_FEATURE_SETS: Dict[str, Tuple[Callable[[str], WordRoles], Callable[[List[str], List[str], int], List[str]]]] = {
    "paper": (_paper_roles, _paper_position),
    "extended": (_extended_roles, _extended_position),
    "words": (_words_roles, _words_position),
}
assert set(SPLIT_FEATURE_SETS) == set(FEATURE_SETS), "every CRF feature set needs its split form here"


def attribute_strings(words: List[str], tags: List[str], features: str) -> List[List[str]]:
    """RETURNS (List[List[str]]): The attributes of each position of a sentence
    for the feature set named `features`, as pycrfsuite makes them of
    `sentence_features(words, tags, features)` (the ones with a value that counts)."""
    word_roles, position = SPLIT_FEATURE_SETS[features]
    roles = [word_roles(word) for word in words]
    out = []
    for i in range(len(words)):
        strings = list(roles[i][0])
        for offset in roles[i]:
            j = i + offset
            if offset and 0 <= j < len(words):
                strings += roles[j][offset]
        out.append(strings + position(words, tags, i))
    return out


class AttributeRows:
    """Weight rows of a CRF's attributes at each position of a sentence, with
    each word type's rows per role computed once (up to `cache_size` words).

    attributes (Dict[str, int]): Attribute -> row of the CRF's state weights.
    features (str): The CRF's feature set.
    """

    def __init__(self, attributes: Dict[str, int], features: str, cache_size: int = 200_000) -> None:
        if features not in SPLIT_FEATURE_SETS:
            raise ValueError(f"Unknown CRF feature set {features!r}: use one of {', '.join(SPLIT_FEATURE_SETS)}.")
        self.attributes = attributes
        self.features = features
        self.cache_size = cache_size
        self._word_roles, self._position = SPLIT_FEATURE_SETS[features]
        self._cache: Dict[str, Dict[int, List[int]]] = {}

    def _rows(self, strings: List[str]) -> List[int]:
        get = self.attributes.get
        return [row for row in map(get, strings) if row is not None]

    def word_rows(self, word: str) -> Dict[int, List[int]]:
        """RETURNS (Dict[int, List[int]]): Role -> the rows of the word's known attributes."""
        rows: Optional[Dict[int, List[int]]] = self._cache.get(word)
        if rows is None:
            rows = {role: self._rows(strings) for role, strings in self._word_roles(word).items()}
            if len(self._cache) < self.cache_size:
                self._cache[word] = rows
        return rows

    def sentence_rows(self, words: List[str], tags: List[str]) -> List[List[int]]:
        """RETURNS (List[List[int]]): The rows of each position's known attributes."""
        roles = [self.word_rows(word) for word in words]
        n = len(words)
        out = []
        for i in range(n):
            rows = list(roles[i][0])
            for offset in roles[i]:
                j = i + offset
                if offset and 0 <= j < n:
                    rows += roles[j][offset]
            out.append(rows + self._rows(self._position(words, tags, i)))
        return out
