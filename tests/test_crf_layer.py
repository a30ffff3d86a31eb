"""The opt-in CRF output of `posattn_ner`: forward-backward against brute-force
enumeration, gradients against finite differences, and the component training,
saving and decoding with its learned scores."""
import itertools

import numpy
import pytest
from numpy.testing import assert_allclose
from spacy.util import load_model_from_path, make_tempdir
from thinc.api import fix_random_seed

from spacy_posattn.pipeline.crf import crf_loss, forward_backward
from spacy_posattn.pipeline.decoding import biluo_tags, transition_constraints, viterbi_decode

from .conftest import TRAIN_DATA, make_examples, make_nlp


def path_score(emissions, path, start, transitions, end):
    score = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
    return score + sum(transitions[a, b] for a, b in zip(path, path[1:]))


def brute_force(emissions, start, transitions, end, gold=None):
    """log Z, tag marginals and transition counts by enumerating every path
    (only paths that agree with the known gold tags, if `gold` is given)."""
    n, n_tags = emissions.shape
    paths = [
        p for p in itertools.product(range(n_tags), repeat=n)
        if gold is None or all(g < 0 or g == tag for g, tag in zip(gold, p))
    ]
    scores = numpy.array([path_score(emissions, p, start, transitions, end) for p in paths])
    log_z = numpy.log(numpy.exp(scores - scores.max()).sum()) + scores.max()
    weights = numpy.exp(scores - log_z)
    marginals, pairs = numpy.zeros((n, n_tags)), numpy.zeros((n_tags, n_tags))
    for w, p in zip(weights, paths):
        marginals[numpy.arange(n), p] += w
        for a, b in zip(p, p[1:]):
            pairs[a, b] += w
    return log_z, marginals, pairs


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)


def test_forward_backward_equals_enumeration_on_a_padded_batch(rng):
    n_tags, lengths = 3, numpy.array([4, 1, 3, 2])
    emissions = rng.normal(size=(len(lengths), lengths.max(), n_tags))
    start, end = rng.normal(size=n_tags), rng.normal(size=n_tags)
    transitions = rng.normal(size=(n_tags, n_tags))
    log_z, marginals, pairs = forward_backward(emissions, lengths, start, transitions, end)
    expected_pairs = numpy.zeros((n_tags, n_tags))
    for i, n in enumerate(lengths):
        z, m, p = brute_force(emissions[i, :n], start, transitions, end)
        assert log_z[i] == pytest.approx(z, rel=1e-9)
        assert_allclose(marginals[i, :n], m, atol=1e-9)
        assert not marginals[i, n:].any()
        expected_pairs += p
    assert_allclose(pairs, expected_pairs, atol=1e-9)


def test_loss_is_the_gold_negative_log_likelihood_with_unknown_tags_marginalised(rng):
    n_tags = 3
    log_probs = [rng.normal(size=(3, n_tags)), rng.normal(size=(2, n_tags))]
    gold = [numpy.array([0, -1, 2]), numpy.array([1, 1])]
    start, end = rng.normal(size=n_tags), rng.normal(size=n_tags)
    transitions = rng.normal(size=(n_tags, n_tags))
    loss, *_ = crf_loss(log_probs, gold, start, transitions, end)
    expected = sum(
        brute_force(lp, start, transitions, end)[0] - brute_force(lp, start, transitions, end, g)[0]
        for lp, g in zip(log_probs, gold)
    )
    assert loss == pytest.approx(expected, rel=1e-6)


def test_gradients_equal_finite_differences(rng):
    n_tags = 3
    log_probs = [rng.normal(size=(3, n_tags)), rng.normal(size=(2, n_tags)), numpy.zeros((0, n_tags))]
    gold = [numpy.array([0, -1, 2]), numpy.array([1, 0]), numpy.zeros((0,), dtype="int64")]
    scores = {"start": rng.normal(size=n_tags), "transitions": rng.normal(size=(n_tags, n_tags)),
              "end": rng.normal(size=n_tags)}

    def loss_of(lps, s):
        return crf_loss(lps, gold, s["start"], s["transitions"], s["end"])[0]

    _, d_emissions, d_start, d_transitions, d_end = crf_loss(log_probs, gold, **scores)
    assert d_emissions[2].shape == (0, n_tags)
    eps = 1e-5
    for doc, (t, k) in ((0, (1, 2)), (0, (2, 0)), (1, (0, 1))):
        up = [lp.copy() for lp in log_probs]
        down = [lp.copy() for lp in log_probs]
        up[doc][t, k] += eps
        down[doc][t, k] -= eps
        assert d_emissions[doc][t, k] == pytest.approx((loss_of(up, scores) - loss_of(down, scores)) / (2 * eps), abs=1e-4)
    for name, grad in (("start", d_start), ("transitions", d_transitions), ("end", d_end)):
        for index in numpy.ndindex(scores[name].shape):
            up = {**scores, name: scores[name].copy()}
            down = {**scores, name: scores[name].copy()}
            up[name][index] += eps
            down[name][index] -= eps
            numeric = (loss_of(log_probs, up) - loss_of(log_probs, down)) / (2 * eps)
            assert grad[index] == pytest.approx(numeric, abs=1e-4), (name, index)


def test_ill_formed_gold_is_a_clear_error():
    tags = biluo_tags(["geo"])  # O B I L U
    start, transitions, end = transition_constraints(tags)
    log_probs = [numpy.zeros((2, len(tags)))]
    with pytest.raises(ValueError, match="not a well-formed"):
        crf_loss(log_probs, [numpy.array([tags.index("I-geo"), 0])], start, transitions, end, texts=["in Paris"])


def test_viterbi_with_learned_scores_is_the_best_path(rng):
    """Decoding adds the learned scores to the constraints: the best well-formed path."""
    tags = biluo_tags(["geo", "per"])
    fixed = transition_constraints(tags)
    learned = (rng.normal(size=len(tags)), rng.normal(size=(len(tags), len(tags))), rng.normal(size=len(tags)))
    start, transitions, end = (f + s for f, s in zip(fixed, learned))
    emissions = rng.normal(size=(3, len(tags))).astype("float32")
    [path] = viterbi_decode([emissions], start, transitions, end)
    best = max(itertools.product(range(len(tags)), repeat=3),
               key=lambda p: path_score(emissions, p, start, transitions, end))
    assert tuple(path) == best


@pytest.fixture(scope="module")
def trained_crf(tiny_bert):
    fix_random_seed(0)
    nlp = make_nlp(tiny_bert, tagger=False, ner_model={"crf": True})
    examples = make_examples(nlp, tags=False)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    ner = nlp.get_pipe("posattn_ner")
    crf = ner.model.get_ref("crf")
    initial = crf.get_param("transitions").copy()
    history = []
    for _ in range(80):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses["posattn_ner"])
    return nlp, history, initial


def test_crf_scores_train_and_the_component_learns(trained_crf):
    nlp, history, initial = trained_crf
    crf = nlp.get_pipe("posattn_ner").model.get_ref("crf")
    assert not initial.any()  # zeros at first
    assert numpy.abs(crf.get_param("transitions") - initial).max() > 1e-3
    assert history[-1] < history[0] / 20
    for text, ents in TRAIN_DATA:
        assert [(e.start_char, e.end_char, e.label_) for e in nlp(text).ents] == ents


def test_crf_get_loss_equals_the_update_loss(trained_crf):
    nlp, _, _ = trained_crf
    ner = nlp.get_pipe("posattn_ner")
    examples = make_examples(nlp, tags=False)
    docs = [nlp.make_doc(eg.reference.text) for eg in examples]
    for doc in docs:
        nlp.get_pipe("transformer")(doc)
    loss, d_scores = ner.get_loss(examples, ner.model.predict(docs))
    probs = ner.model.predict(docs)
    expected, *_ = crf_loss([numpy.log(numpy.clip(p, 1e-12, 1)) for p in probs], ner._gold_ids(examples),
                            *ner._sequence_scores())
    assert loss == pytest.approx(expected, rel=1e-5)
    assert [d.shape for d in d_scores] == [p.shape for p in probs]


def test_decoding_uses_the_learned_scores(trained_crf):
    """Forbid-by-score every transition out of O into a B tag: no multi-token entity is left."""
    nlp, _, _ = trained_crf
    ner = nlp.get_pipe("posattn_ner")
    crf = ner.model.get_ref("crf")
    saved = crf.get_param("start").copy()
    try:
        start = saved.copy()
        start[[i for i, tag in enumerate(ner.tags) if tag.startswith(("B-", "U-"))]] = -1e4
        crf.set_param("start", start)
        doc = nlp(TRAIN_DATA[0][0])
        assert doc.ents[0].start > 0  # the first token can no longer open an entity
    finally:
        crf.set_param("start", saved)
    assert nlp(TRAIN_DATA[0][0]).ents[0].start == 0


def test_crf_pipeline_saves_and_loads_the_same(trained_crf):
    nlp, _, _ = trained_crf
    texts = [text for text, _ in TRAIN_DATA] + ["Alice and Bob visited China ."]
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        loaded = load_model_from_path(tmp)
    assert_allclose(loaded.get_pipe("posattn_ner").model.get_ref("crf").get_param("transitions"),
                    nlp.get_pipe("posattn_ner").model.get_ref("crf").get_param("transitions"))
    for text in texts:
        assert [(e.start, e.end, e.label_) for e in loaded(text).ents] == [(e.start, e.end, e.label_) for e in nlp(text).ents]
