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


@pytest.mark.parametrize("window", [3, 8])
def test_packed_batch_equals_padded_batch(window):
    """The layer packs a batch's docs into one row (no padding between docs);
    it gives the outputs and gradients of the padded layout, one doc per row,
    that 0.1.0 used, on the same weights: lengths around the window size."""
    import torch

    layer = make_layer(window=window, max_distance=window)
    lengths = [window - 1, window, window + 1, 1, 2 * window + 1, 0, 5 * window]
    Xs = [rand(n, i) for i, n in enumerate(lengths)]
    packed = layer.predict(Xs)

    module = layer.layers[0].shims[0]._model
    L = max(lengths)
    padded = torch.zeros(len(lengths), L, WIDTH)
    segments = torch.full((len(lengths), L), -1)
    for i, X in enumerate(Xs):
        padded[i, : len(X)] = torch.from_numpy(X)
        segments[i, : len(X)] = 0
    padded.requires_grad_(True)
    with torch.enable_grad():
        Y = module(padded, segments)
        dY = [rand(n, 20 + i) for i, n in enumerate(lengths)]
        dY_padded = torch.zeros_like(Y)
        for i, d in enumerate(dY):
            dY_padded[i, : len(d)] = torch.from_numpy(d)
        Y.backward(dY_padded)
    for i, n in enumerate(lengths):
        assert_allclose(packed[i], Y[i, :n].detach().numpy(), rtol=1e-4, atol=1e-5)

    _, backprop = layer.begin_update(Xs)
    dXs = backprop(dY)
    for i, n in enumerate(lengths):
        assert_allclose(dXs[i], padded.grad[i, :n].numpy(), rtol=1e-4, atol=1e-5)


def test_packed_docs_do_not_see_each_other():
    """Docs packed side by side: changing one doc leaves its neighbours' outputs unchanged."""
    layer = make_layer(window=4)
    Xs = [rand(6, 1), rand(3, 2), rand(9, 3)]
    before = layer.predict(Xs)
    changed = [Xs[0], rand(3, 99) * 5, Xs[2]]
    after = layer.predict(changed)
    assert_allclose(before[0], after[0], atol=1e-6)
    assert_allclose(before[2], after[2], atol=1e-6)
    assert not numpy.allclose(before[1], after[1], atol=1e-3)
