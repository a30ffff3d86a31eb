"""`input_dropout`: dropout on a head's input features at its own rate."""
import numpy
import pytest
from spacy.training import Example
from spacy.util import load_model_from_config
from thinc.api import Config, fix_random_seed, set_dropout_rate

from spacy_posattn.layers import feature_dropout

from .test_layers import LEXICAL, TAGGER_CONFIG


def ones(*shapes):
    return [numpy.ones(shape, dtype="float32") for shape in shapes]


def test_rate_is_applied_in_training_only():
    fix_random_seed(0)
    layer = feature_dropout(0.25)
    Xs = ones((400, 50), (0, 50), (3, 50))
    Ys, backprop = layer(Xs, is_train=True)
    zeroed = float((Ys[0] == 0).mean())
    assert 0.22 < zeroed < 0.28
    kept = Ys[0][Ys[0] != 0]
    assert numpy.allclose(kept, 1 / 0.75)  # inverted dropout: the expectation is unchanged
    assert Ys[1].shape == (0, 50)
    dXs = backprop(ones((400, 50), (0, 50), (3, 50)))
    assert numpy.array_equal(dXs[0] == 0, Ys[0] == 0)  # the same units get no gradient
    Ys_predict, _ = layer(Xs, is_train=False)
    assert all(Y is X for X, Y in zip(Xs, Ys_predict))


def test_training_dropout_does_not_override_the_rate():
    layer = feature_dropout(0.5)
    set_dropout_rate(layer, 0.0)  # what spaCy's nlp.update(drop=0.0) does to every layer
    Ys, _ = layer(ones((200, 20)), is_train=True)
    assert (Ys[0] == 0).mean() > 0.4


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_bad_rate_fails_clearly(rate):
    with pytest.raises(ValueError, match="input_dropout"):
        feature_dropout(rate)


def build_ner(input_dropout):
    text = TAGGER_CONFIG.format(depth=2, lexical=LEXICAL)
    text = text.replace("dropout = 0.0", f"dropout = 0.0\ninput_dropout = {input_dropout}", 1)
    nlp = load_model_from_config(Config().from_str(text), auto_fill=True, validate=True)
    return nlp, nlp.get_pipe("posattn_ner")


@pytest.mark.parametrize("input_dropout", [0.0, 0.3])
def test_architecture_input_dropout(input_dropout):
    fix_random_seed(0)
    nlp, ner = build_ner(input_dropout)
    rates = [node.attrs["feature_dropout_rate"] for node in ner.model.walk() if node.name == "feature_dropout"]
    # 0 leaves the layer out, so pipelines saved before it existed load as they were
    assert rates == ([input_dropout] if input_dropout else [])
    doc = nlp.make_doc("Alice went to China .")
    reference = doc.copy()
    reference.ents = [reference.char_span(0, 5, "per"), reference.char_span(14, 19, "geo")]
    nlp.initialize(lambda: [Example(doc, reference)])
    first = ner.predict([doc])[0]
    assert numpy.array_equal(first, ner.predict([doc])[0])  # deterministic at prediction time
    losses = {}
    nlp.update([Example(nlp.make_doc(doc.text), reference)], drop=0.0, losses=losses)
    assert losses["posattn_ner"] > 0
    assert not numpy.array_equal(first, ner.predict([doc])[0])  # it trains through the layer
