"""Constrained Viterbi decoding always gives well-formed BILUO sequences."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from spacy.tokens import Doc
from spacy.training import biluo_tags_to_spans
from spacy.vocab import Vocab

from spacy_posattn.pipeline.decoding import biluo_tags, transition_constraints, viterbi_decode

LABELS = ["geo", "per", "tim"]
TAGS = biluo_tags(LABELS)
CONSTRAINTS = transition_constraints(TAGS)


def is_well_formed(tags) -> bool:
    inside = None
    for tag in tags:
        prefix, _, label = tag.partition("-")
        if inside is not None:
            if prefix not in ("I", "L") or label != inside:
                return False
            inside = None if prefix == "L" else inside
        elif prefix in ("I", "L"):
            return False
        elif prefix == "B":
            inside = label
    return inside is None


def decode(*score_arrays):
    return viterbi_decode([numpy.log(s) for s in score_arrays], *CONSTRAINTS)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.integers(0, 40).flatmap(
            lambda n: arrays("float32", (n, len(TAGS)), elements=st.floats(0.0009765625, 1.0, width=32))
        ),
        min_size=1,
        max_size=4,
    )
)
def test_decoding_gives_valid_spans(batch):
    paths = decode(*batch)
    vocab = Vocab()
    for scores, path in zip(batch, paths):
        assert len(path) == len(scores)
        tags = [TAGS[i] for i in path]
        assert is_well_formed(tags), tags
        doc = Doc(vocab, words=["w"] * len(tags))
        spans = biluo_tags_to_spans(doc, tags)
        covered = [i for span in spans for i in range(span.start, span.end)]
        assert len(covered) == len(set(covered)) and all(0 <= i < len(doc) for i in covered)


def onehot(tags, p=0.9):
    out = numpy.full((len(tags), len(TAGS)), (1 - p) / (len(TAGS) - 1), dtype="float32")
    for i, tag in enumerate(tags):
        out[i, TAGS.index(tag)] = p
    return out


def test_decoding_keeps_valid_argmax_and_repairs_invalid():
    good = ["B-per", "L-per", "O", "U-geo"]
    assert [TAGS[i] for i in decode(onehot(good))[0]] == good
    # A lone I- tag (the paper's classic bug) can't survive decoding.
    repaired = [TAGS[i] for i in decode(onehot(["O", "I-geo", "O"]))[0]]
    assert is_well_formed(repaired)


def test_batch_decoding_equals_one_by_one():
    rng = numpy.random.RandomState(0)
    docs = [rng.dirichlet(numpy.ones(len(TAGS)), size=n).astype("float32") for n in (5, 0, 17, 1)]
    batched = decode(*docs)
    for scores, path in zip(docs, batched):
        assert list(decode(scores)[0]) == list(path)


def brute_force_best(log_probs, start, transitions, end):
    """The best-scoring allowed tag sequence, by enumerating all of them."""
    from itertools import product

    n, n_tags = log_probs.shape
    best, best_path = -numpy.inf, None
    for path in product(range(n_tags), repeat=n):
        score = start[path[0]] + end[path[-1]] + sum(log_probs[i, t] for i, t in enumerate(path))
        score += sum(transitions[a, b] for a, b in zip(path, path[1:]))
        if score > best:
            best, best_path = score, list(path)
    return best, best_path


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: arrays("float64", (n, 9), elements=st.floats(-6.0, 0.0))))
def test_viterbi_is_optimal_against_brute_force(log_probs):
    tags = biluo_tags(["geo", "per"])  # 9 tags: every sequence of up to 4 tokens is enumerated
    start, transitions, end = transition_constraints(tags)
    (path,) = viterbi_decode([log_probs], start, transitions, end)
    best, _ = brute_force_best(log_probs, start, transitions, end)
    score = start[path[0]] + end[path[-1]] + sum(log_probs[i, t] for i, t in enumerate(path))
    score += sum(transitions[a, b] for a, b in zip(path, path[1:]))
    assert is_well_formed([tags[t] for t in path])
    assert score == pytest.approx(best, abs=1e-6)
