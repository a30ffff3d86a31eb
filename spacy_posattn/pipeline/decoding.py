"""BILUO tag sets and constrained Viterbi decoding.

The entity recognizer predicts one BILUO tag per token: `O`, or `B-`, `I-`,
`L-`, `U-` plus an entity label. Decoding finds the highest-scoring sequence
among those that are well formed (every entity opens with `B-` and closes with
`L-` of the same label, or is a single `U-`), so predictions always convert to
spans.
"""
from typing import Iterable, List, Sequence, Tuple

import numpy

NEG_INF = -1e9


def biluo_tags(labels: Iterable[str]) -> List[str]:
    """The tag set for some entity labels: `O` first, then B, I, L, U per label.

    labels (Iterable[str]): The entity labels.
    RETURNS (List[str]): The tags, in the order of the model's outputs.
    """
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in "BILU"]


def transition_constraints(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Allowed first tags, tag-to-tag transitions and last tags, as 0 / NEG_INF.

    tags (Sequence[str]): Tags as made by `biluo_tags`.
    RETURNS (Tuple[ndarray, ndarray, ndarray]): start (T,), transitions (T, T), end (T,).
    """
    prefixes = [tag.split("-", 1)[0] for tag in tags]
    labels = [tag.split("-", 1)[1] if "-" in tag else None for tag in tags]
    opens = numpy.array([p in ("B", "I") for p in prefixes])  # inside an entity after this tag
    starts_outside = numpy.array([p in ("O", "B", "U") for p in prefixes])
    continues = numpy.array([p in ("I", "L") for p in prefixes])
    same_label = numpy.array([[a == b for b in labels] for a in labels])
    allowed = numpy.where(
        opens[:, None], continues[None, :] & same_label, starts_outside[None, :]
    )
    to_score = lambda ok: numpy.where(ok, 0.0, NEG_INF).astype("float32")  # noqa: E731
    return to_score(starts_outside), to_score(allowed), to_score(~opens)


def viterbi_decode(
    log_probs: List[numpy.ndarray],
    start: numpy.ndarray,
    transitions: numpy.ndarray,
    end: numpy.ndarray,
) -> List[numpy.ndarray]:
    """Best well-formed tag sequence for each doc, decoded for the batch at once.

    log_probs (List[ndarray]): One (n_tokens, n_tags) array of log probabilities per doc.
    start, transitions, end: As returned by `transition_constraints`.
    RETURNS (List[ndarray]): One int array of tag indices per doc.
    """
    lengths = numpy.array([len(lp) for lp in log_probs], dtype="int64")
    if not log_probs or lengths.max(initial=0) == 0:
        return [numpy.zeros((n,), dtype="int64") for n in lengths]
    n_tags = transitions.shape[0]
    max_len = int(lengths.max())
    scores = numpy.zeros((len(log_probs), max_len, n_tags), dtype="float32")
    for i, lp in enumerate(log_probs):
        scores[i, : len(lp)] = lp
    best = scores[:, 0] + start
    backpointers = numpy.zeros((len(log_probs), max_len, n_tags), dtype="int64")
    for t in range(1, max_len):
        candidates = best[:, :, None] + transitions[None]
        prev = candidates.argmax(axis=1)
        step = numpy.take_along_axis(candidates, prev[:, None, :], axis=1)[:, 0] + scores[:, t]
        active = (t < lengths)[:, None]
        best = numpy.where(active, step, best)
        backpointers[:, t] = prev
    best = best + end
    paths = []
    for i, n in enumerate(lengths):
        path = numpy.zeros((n,), dtype="int64")
        if n:
            path[n - 1] = best[i].argmax()
            for t in range(n - 1, 0, -1):
                path[t - 1] = backpointers[i, t, path[t]]
        paths.append(path)
    return paths


def span_confidences(
    log_probs: numpy.ndarray, path: numpy.ndarray, spans: Sequence, temperature: float = 1.0
) -> List[float]:
    """Each span's confidence: the mean probability of its decoded tags, with
    the tag distribution of each token tempered as softmax(log p / temperature).

    log_probs (ndarray): (n_tokens, n_tags) log probabilities of one doc.
    path (ndarray): The decoded tag index of each token.
    spans (Sequence): Objects with `start` and `end` token offsets.
    temperature (float): 1.0 leaves the probabilities as they are.
    RETURNS (List[float]): One confidence per span.
    """
    if not len(spans):
        return []
    scaled = log_probs / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    chosen = numpy.exp(scaled[numpy.arange(len(path)), path]) / numpy.exp(scaled).sum(axis=1)
    return [float(chosen[span.start : span.end].mean()) for span in spans]
