"""Sentence by sentence prediction: the encoder's sentence spans, the heads'
attention within sentences, and the sentence-aware copy of an older pipeline."""
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.language import Language
from numpy.testing import assert_allclose
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import combine_score_weights, load_config
from spacy_transformers.span_getters import get_strided_spans

import spacy_posattn.pipeline  # noqa: F401  (registers the factories)
from spacy_posattn.span_getters import configure_sentence_spans, get_sentence_spans, load_sentence_aware

from .conftest import LISTENER, make_nlp, train_tiny

ROOT = Path(__file__).parent.parent
SENTENCE_SPANS = {"@span_getters": "spacy-posattn.sentence_spans.v1", "window": 16, "stride": 12}
ATTENTION_TAGGER = {
    "@architectures": "spacy-posattn.PositionalAttentionTagger.v2",
    "width": 32, "depth": 1, "heads": 2, "window": 4, "max_distance": 4, "dropout": 0.0,
    "tok2vec": LISTENER,
}


def bounds(spans):
    return [(span.start, span.end) for span in spans]


@pytest.mark.parametrize("window,stride", [(16, 12), (5, 5), (128, 112)])
def test_sentence_spans_without_boundaries_are_strided_windows(window, stride):
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=[f"w{i}" for i in range(n)]) for n in (0, 1, 5, 11, 12, 13, 24, 30, 47, 130, 250)]
    ours = get_sentence_spans(docs, window=window, stride=stride)
    theirs = get_strided_spans(docs, window=window, stride=stride)
    assert [bounds(s) for s in ours] == [bounds(s) for s in theirs]


def test_sentence_spans_follow_sentences():
    vocab = spacy.blank("en").vocab
    lengths = [3, 1, 20, 4]  # the third is longer than the window
    starts = [i == 0 or i in numpy.cumsum(lengths) for i in range(sum(lengths))]
    doc = Doc(vocab, words=[f"w{i}" for i in range(sum(lengths))], sent_starts=starts)
    spans = configure_sentence_spans(window=8, stride=6)([doc])[0]
    # The long sentence is cut as strided windows over it alone, offset by its start.
    long = [(4 + s, 4 + e) for s, e in bounds(get_strided_spans([Doc(vocab, words=["x"] * 20)], 8, 6)[0])]
    assert bounds(spans) == [(0, 3), (3, 4)] + long + [(24, 28)]
    one = Doc(vocab, words=["a", "b", "c"], sent_starts=[True, False, False])
    assert bounds(get_sentence_spans([one], 8, 6)[0]) == [(0, 3)]


@pytest.mark.parametrize("window,stride", [(0, 1), (8, 0), (8, 9)])
def test_sentence_spans_bad_settings_fail_clearly(window, stride):
    with pytest.raises(ValueError, match="stride <= window"):
        configure_sentence_spans(window=window, stride=stride)


def test_a_doc_of_sentences_predicts_as_its_sentences_alone(tiny_bert):
    nlp = make_nlp(tiny_bert, transformer_model={"get_spans": SENTENCE_SPANS}, tagger_model=ATTENTION_TAGGER)
    nlp.add_pipe("sentencizer", first=True, config={"scorer": None})
    train_tiny(nlp, 3)
    first, second = "Alice will go to China this Saturday .", "Her father works in WHO ."
    alone = [nlp(first), nlp(second)]
    joined = nlp(f"{first} {second}")
    assert [len(sent) for sent in joined.sents] == [len(doc) for doc in alone]
    with nlp.select_pipes(disable=["sentencizer"]):
        unsplit = nlp(f"{first} {second}")
    assert not unsplit.has_annotation("SENT_START")
    for name in ("tagger", "posattn_ner"):
        model = nlp.get_pipe(name).model
        expected = numpy.concatenate(model.predict(alone))
        assert_allclose(model.predict([joined])[0], expected, atol=1e-6)
        # Without sentence boundaries the second sentence sees the first: not the same
        # (the untrained heads' probabilities are close to uniform, so the gap is small).
        assert numpy.abs(model.predict([unsplit])[0] - expected).max() > 5e-5
    assert [(e.text, e.label_) for e in joined.ents] == [(e.text, e.label_) for doc in alone for e in doc.ents]


def test_a_doc_of_sentences_trains(tiny_bert):
    """The heads' attention within sentences passes gradients back (training
    Docs with sentence boundaries, e.g. gold Docs of several sentences)."""
    nlp = make_nlp(tiny_bert, transformer_model={"get_spans": SENTENCE_SPANS}, tagger_model=ATTENTION_TAGGER)
    train_tiny(nlp, 1)
    optimizer = nlp.resume_training()
    doc = nlp.make_doc("Alice will go to China . Her father works in WHO .")
    for token in doc:
        token.is_sent_start = token.i in (0, 6)
    tags = ["NNP" if token.text[0].isupper() else "NN" for token in doc]  # the tiny label set
    example = Example.from_dict(doc, {"tags": tags, "entities": [(0, 5, "per"), (17, 22, "geo"), (45, 48, "org")]})
    # The projection before the attention blocks: it learns only through them.
    features, project, attention, output = nlp.get_pipe("tagger").model.layers
    linear = project.layers[0]
    before = linear.get_param("W").copy()
    losses = nlp.update([example], sgd=optimizer)
    assert numpy.isfinite(losses["tagger"]) and numpy.isfinite(losses["posattn_ner"])
    assert not numpy.allclose(linear.get_param("W"), before)


def test_sentence_aware_copy_of_an_older_pipeline(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert, tagger_model=ATTENTION_TAGGER)
    train_tiny(nlp, 2)
    nlp.to_disk(tmp_path / "old")
    aware = load_sentence_aware(tmp_path / "old")
    assert aware.pipe_names == ["sentencizer", "transformer", "tagger", "posattn_ner"]
    getter = aware.config["components"]["transformer"]["model"]["get_spans"]
    assert getter == {"@span_getters": "spacy-posattn.sentence_spans.v1", "window": 16, "stride": 12}
    text = "Bob met Carol Smith in Paris ."
    for name in ("tagger", "posattn_ner"):  # the same weights: one sentence predicts the same
        assert_allclose(
            aware.get_pipe(name).model.predict([aware(text)])[0],
            nlp.get_pipe(name).model.predict([nlp(text)])[0],
            atol=1e-5,
        )
    aware.to_disk(tmp_path / "aware")
    assert spacy.load(tmp_path / "aware").pipe_names[0] == "sentencizer"


def test_sentence_aware_copy_refuses_other_span_getters(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert, transformer_model={"get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"}})
    train_tiny(nlp, 1)
    nlp.to_disk(tmp_path / "docs")
    with pytest.raises(ValueError, match="doc_spans"):
        load_sentence_aware(tmp_path / "docs")


@pytest.mark.parametrize(
    "config_name", ["posattn_minilm.cfg", "posattn_minilm_warm.cfg", "posattn_minilm_gpu.cfg", "posattn_tiny.cfg"]
)
def test_the_sentencizer_does_not_count_in_the_training_score(config_name):
    """spaCy adds each component's default score weights to [training.score_weights]:
    the sentencizer's sents_f (0 on dev: it has no scorer) would halve the printed
    score. The configs drop it, so the score is entities and POS as before."""
    config = load_config(ROOT / "configs" / config_name, interpolate=False)
    spacy.blank("en")  # registers spaCy's own factories
    defaults = [Language.get_factory_meta(name).default_score_weights for name in ("sentencizer", "tagger", "posattn_ner")]
    weights = combine_score_weights(defaults, dict(config["training"]["score_weights"]))
    assert {key for key, weight in weights.items() if weight} == {"ents_f", "tag_acc"}
    assert weights["ents_f"] == pytest.approx(0.8) and weights["tag_acc"] == pytest.approx(0.2)
