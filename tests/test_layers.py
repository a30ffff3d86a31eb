"""The positional-attention layer and the tagger architecture."""
import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.util import load_model_from_config
from thinc.api import Config, ConfigValidationError, fix_random_seed

from spacy_posattn.layers import positional_attention_encoder

WIDTH = 16


def make_layer(**kwargs):
    fix_random_seed(0)
    config = dict(width=WIDTH, depth=2, heads=4, window=3, max_distance=2, dropout=0.0)
    config.update(kwargs)
    layer = positional_attention_encoder(**config)
    layer.initialize()
    return layer


def rand(n: int, seed: int = 0):
    return numpy.random.RandomState(seed).normal(size=(n, WIDTH)).astype("float32")


@pytest.mark.parametrize("lengths", [[5], [0], [1], [0, 3], [1, 7, 20], [1000]])
def test_shapes_and_backprop(lengths):
    layer = make_layer()
    Xs = [rand(n, i) for i, n in enumerate(lengths)]
    Ys, backprop = layer.begin_update(Xs)
    assert [Y.shape for Y in Ys] == [(n, WIDTH) for n in lengths]
    assert all(numpy.isfinite(Y).all() for Y in Ys)
    dXs = backprop([rand(len(Y), 9) for Y in Ys])
    assert [dX.shape for dX in dXs] == [X.shape for X in Xs]
    if sum(lengths):
        assert any(numpy.abs(dX).sum() > 0 for dX in dXs)


def test_padding_invariance():
    """A doc gives the same output alone and in a batch with a longer doc."""
    layer = make_layer()
    short, long = rand(7, 1), rand(50, 2)
    alone = layer.predict([short])[0]
    batched = layer.predict([long, short, rand(0)])[1]
    assert_allclose(alone, batched, rtol=1e-5, atol=1e-5)


def test_attention_is_local():
    """Changing a token more than `window` positions away leaves an output unchanged."""
    layer = make_layer(depth=1, window=3)
    X = rand(30)
    Y = layer.predict([X])[0]
    X2 = X.copy()
    X2[20] = rand(1, 7)[0] * 3
    Y2 = layer.predict([X2])[0]
    assert_allclose(Y[:17], Y2[:17], atol=1e-6)  # positions 0..16 are > 3 away from 20
    assert not numpy.allclose(Y[17:24], Y2[17:24], atol=1e-3)


def test_position_sensitivity():
    """With the relative bias, reordering tokens is not just a reordering of outputs."""
    layer = make_layer(depth=1)
    X = rand(6)
    order = numpy.array([3, 0, 5, 1, 4, 2])
    Y = layer.predict([X])[0]
    Y_perm = layer.predict([X[order]])[0]
    assert not numpy.allclose(Y[order], Y_perm, atol=1e-4)
    # Without the bias (all zero) the layer is permutation-equivariant within one window.
    attn = layer.layers[0].shims[0]._model.blocks[0].attn
    attn.rel_bias.weight.data.zero_()
    wide = make_layer(depth=1, window=8)
    wide.layers[0].shims[0]._model.blocks[0].attn.rel_bias.weight.data.zero_()
    Y = wide.predict([X])[0]
    assert_allclose(Y[order], wide.predict([X[order]])[0], atol=1e-5)


@pytest.mark.parametrize("bad", [dict(heads=3), dict(window=0), dict(max_distance=-1), dict(depth=0)])
def test_bad_layer_arguments(bad):
    with pytest.raises(ValueError):
        make_layer(**bad)


TAGGER_CONFIG = """
[nlp]
lang = "en"
pipeline = ["posattn_ner"]

[components]

[components.posattn_ner]
factory = "posattn_ner"

[components.posattn_ner.model]
@architectures = "spacy-posattn.PositionalAttentionTagger.v2"
width = 16
depth = {depth}
heads = 2
window = 4
max_distance = 4
dropout = 0.0

[components.posattn_ner.model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
width = 12
depth = 1
embed_size = 100
window_size = 1
maxout_pieces = 2
subword_features = true
pretrained_vectors = null
{lexical}
"""
LEXICAL = """
[components.posattn_ner.model.lexical]
@architectures = "spacy.MultiHashEmbed.v2"
width = 8
attrs = ["NORM", "SHAPE"]
rows = [100, 50]
include_static_vectors = false
"""


@pytest.mark.parametrize("depth,lexical", [(2, LEXICAL), (2, ""), (0, LEXICAL)])
def test_architecture_variants(depth, lexical):
    config = Config().from_str(TAGGER_CONFIG.format(depth=depth, lexical=lexical))
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    ner = nlp.get_pipe("posattn_ner")
    doc = nlp.make_doc("Alice went to China .")
    ner.add_label("per")
    ner.add_label("geo")
    nlp.initialize()
    scores = ner.predict([doc, nlp.make_doc("")])
    assert scores[0].shape == (5, len(ner.tags)) and scores[1].shape == (0, len(ner.tags))
    assert_allclose(scores[0].sum(axis=1), 1.0, rtol=1e-5)
    assert ner.model.attrs["depth"] == depth


@pytest.mark.parametrize("key,value", [("width", '"wide"'), ("dropout", '"none"'), ("unknown_knob", "3")])
def test_bad_config_values_fail_clearly(key, value):
    config = Config().from_str(TAGGER_CONFIG.format(depth=2, lexical=""))
    config["components"]["posattn_ner"]["model"][key] = value.strip('"')
    with pytest.raises(ConfigValidationError) as err:
        load_model_from_config(config, auto_fill=True, validate=True)
    assert key in str(err.value)
