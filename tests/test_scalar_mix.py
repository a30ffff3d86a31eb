"""spacy-posattn.ScalarMixListener.v1: a learned mix of every hidden layer, in
the fine-tuned pipeline and on cached frozen features."""
import json

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import DocBin
from spacy.util import load_config, load_model_from_path, make_tempdir
from thinc.api import Adam, NumpyOps, fix_random_seed

from spacy_posattn import feature_cache
from spacy_posattn.layers.scalar_mix import linear_mix, scalar_mix
from spacy_posattn.readers import unannotated_copy

from .conftest import TRAIN_DATA, make_examples, make_nlp
from .test_compare import tiny_corpus  # noqa: F401  (fixture)
from .test_workflow import ROOT

MIX_LISTENER = {"@architectures": "spacy-posattn.ScalarMixListener.v1", "pooling": {"@layers": "reduce_mean.v1"}}
ALL_LAYERS = {"transformer_config": {"output_hidden_states": True}}


def make_mix_nlp(encoder, mix="scalar"):
    listener = {**MIX_LISTENER, "mix": mix}
    tagger = {"@architectures": "spacy.Tagger.v2", "tok2vec": listener}
    return make_nlp(encoder, transformer_model=ALL_LAYERS, tagger_model=tagger, ner_model={"tok2vec": listener})


MIX_PARAMS = {"scalar": ("weights", "scale"), "linear": ("W", "b")}


def mixes(nlp):
    return {name: nlp.get_pipe(name).model.get_ref("tok2vec").layers[-1] for name in ("tagger", "posattn_ner")}


def test_scalar_mix_gradient_matches_finite_differences():
    ops = NumpyOps()
    mix = scalar_mix()
    rng = numpy.random.default_rng(0)
    Xs = [rng.normal(size=(3, 4, 5)).astype("f"), rng.normal(size=(2, 4, 5)).astype("f")]
    mix.initialize(X=Xs)
    mix(Xs, is_train=False)  # sets nL and the params
    mix.set_param("weights", ops.asarray1f(rng.normal(size=4)))
    mix.set_param("scale", ops.asarray1f([1.3]))
    dYs = [rng.normal(size=(3, 5)).astype("f"), rng.normal(size=(2, 5)).astype("f")]

    def loss():
        Ys, _ = mix(Xs, is_train=False)
        return float(sum((Y * dY).sum() for Y, dY in zip(Ys, dYs)))

    _, backprop = mix(Xs, is_train=True)
    dXs = backprop(dYs)
    for name in ("weights", "scale"):
        param = mix.get_param(name).copy()
        for i in range(len(param)):
            for sign in (1, -1):
                shifted = param.copy()
                shifted[i] += sign * 1e-3
                mix.set_param(name, shifted)
                if sign == 1:
                    up = loss()
                else:
                    down = loss()
            mix.set_param(name, param)
            assert (up - down) / 2e-3 == pytest.approx(float(mix.get_grad(name)[i]), rel=1e-2, abs=1e-3)
    Ys, _ = mix(Xs, is_train=False)
    weights = numpy.exp(mix.get_param("weights")) / numpy.exp(mix.get_param("weights")).sum()
    assert_allclose(Ys[0], 1.3 * numpy.einsum("nlw,l->nw", Xs[0], weights), rtol=1e-5)
    assert_allclose(dXs[1], 1.3 * weights[None, :, None] * dYs[1][:, None, :], rtol=1e-5)


@pytest.mark.parametrize("mix_type", ["scalar", "linear"])
def test_mix_weights_learn_and_pipeline_round_trips(tiny_bert, mix_type):
    fix_random_seed(0)
    nlp = make_mix_nlp(tiny_bert, mix_type)
    start = {}
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    n_layers = 2  # tiny BERT: embeddings + 1 layer
    nlp.update(examples, sgd=optimizer)  # the output layers start at zero: no gradient reaches the mix yet
    nlp.update(examples, sgd=False)  # backprop only: the mixes get gradients
    for name, mix in mixes(nlp).items():
        assert mix.get_dim("nL") == n_layers, name
        for param in MIX_PARAMS[mix_type]:
            assert numpy.abs(mix.get_grad(param)).sum() > 0, (name, param)
            start[name, param] = mix.get_param(param).copy()
    for _, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    for name, mix in mixes(nlp).items():
        for param in MIX_PARAMS[mix_type]:
            assert not numpy.allclose(mix.get_param(param), start[name, param]), (name, param)
    for text, ents in TRAIN_DATA:
        assert [(e.start_char, e.end_char, e.label_) for e in nlp(text).ents] == ents
    texts = [text for text, _ in TRAIN_DATA]
    before = list(nlp.pipe(texts))
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        nlp2 = load_model_from_path(tmp)
    for doc, doc2 in zip(before, nlp2.pipe(texts)):
        assert [(e.text, e.label_) for e in doc2.ents] == [(e.text, e.label_) for e in doc.ents]
        assert [t.tag_ for t in doc2] == [t.tag_ for t in doc]
        assert_allclose(doc2.spans["ents"].attrs["scores"], doc.spans["ents"].attrs["scores"], rtol=1e-5)


def test_linear_mix_starts_as_the_mean_and_its_gradient_matches_finite_differences():
    ops = NumpyOps()
    mix = linear_mix()
    rng = numpy.random.default_rng(0)
    Xs = [rng.normal(size=(3, 4, 5)).astype("f"), rng.normal(size=(2, 4, 5)).astype("f"), numpy.zeros((0, 4, 5), "f")]
    mix.initialize(X=Xs)
    Ys, _ = mix(Xs, is_train=False)  # sets nL, nI and the params
    assert (mix.get_dim("nL"), mix.get_dim("nI")) == (4, 5)
    assert_allclose(Ys[0], Xs[0].mean(axis=1), rtol=1e-5, atol=1e-6)
    assert Ys[2].shape == (0, 5)
    mix.set_param("W", ops.asarray3f(rng.normal(size=(4, 5, 5))))
    mix.set_param("b", ops.asarray1f(rng.normal(size=5)))
    dYs = [rng.normal(size=(3, 5)).astype("f"), rng.normal(size=(2, 5)).astype("f"), numpy.zeros((0, 5), "f")]

    def loss():
        Ys, _ = mix(Xs, is_train=False)
        return float(sum((Y * dY).sum() for Y, dY in zip(Ys, dYs)))

    _, backprop = mix(Xs, is_train=True)
    dXs = backprop(dYs)
    for name, index in (("W", (0, 1, 2)), ("W", (3, 4, 0)), ("b", (2,))):
        param = mix.get_param(name).copy()
        up, down = param.copy(), param.copy()
        up[index] += 1e-2
        down[index] -= 1e-2
        mix.set_param(name, up)
        loss_up = loss()
        mix.set_param(name, down)
        loss_down = loss()
        mix.set_param(name, param)
        assert (loss_up - loss_down) / 2e-2 == pytest.approx(float(mix.get_grad(name)[index]), rel=1e-2, abs=1e-3)
    W = mix.get_param("W")
    assert_allclose(dXs[1], numpy.einsum("nv,lwv->nlw", dYs[1], W), rtol=1e-4, atol=1e-5)
    assert dXs[2].shape == (0, 4, 5)
    # On cached features the listener asks for the parameters' gradients only.
    grads = {name: mix.get_grad(name).copy() for name in ("W", "b")}
    mix.attrs["input_gradient"] = False
    _, backprop = mix(Xs, is_train=True)
    assert backprop(dYs) == []
    for name, grad in grads.items():
        assert_allclose(mix.get_grad(name), 2 * grad, rtol=1e-5)
    with pytest.raises(ValueError, match="expected 4 layers of width 5"):
        mix([rng.normal(size=(2, 3, 5)).astype("f")], is_train=False)


def test_mix_listener_rejects_an_unknown_mix():
    from spacy_posattn.layers.scalar_mix import build_scalar_mix_listener_v1
    from thinc.api import reduce_mean

    with pytest.raises(ValueError, match="mix must be one of scalar, linear, got 'concat'"):
        build_scalar_mix_listener_v1(reduce_mean(), mix="concat")


def test_mix_listener_without_hidden_states_says_what_to_set(tiny_bert):
    tagger = {"@architectures": "spacy.Tagger.v2", "tok2vec": MIX_LISTENER}
    nlp = make_nlp(tiny_bert, tagger_model=tagger, ner_model={"tok2vec": MIX_LISTENER})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match="output_hidden_states"):
        nlp.update(examples)


@pytest.mark.parametrize("mix_type", ["scalar", "linear"])
def test_cached_layers_mixed_equal_the_live_listener(tiny_bert, tiny_corpus, tmp_path, mix_type):  # noqa: F811
    config = load_config(ROOT / "configs" / "posattn_tiny.cfg", interpolate=False)
    config["paths"].update(train=str(tiny_corpus / "train.spacy"), dev=str(tiny_corpus / "dev.spacy"), encoder=tiny_bert)
    config["components"]["transformer"]["model"]["transformer_config"] = {"output_hidden_states": True}
    for name in ("tagger", "posattn_ner"):
        config["components"][name]["model"]["tok2vec"] = {**MIX_LISTENER, "mix": mix_type}
    config["training"]["batcher"]["size"] = 30
    config["training"]["optimizer"]["learn_rate"]["initial_rate"] = 0.01
    config.to_disk(tmp_path / "mix.cfg")
    feature_cache.train_cached(tmp_path / "mix.cfg", tmp_path / "out", epochs=2, cache_dir=tmp_path / "cache")
    nlp = spacy.load(tmp_path / "out" / "model-best")
    mix = mixes(nlp)["posattn_ner"]
    assert mix.get_dim("nL") == 2
    if mix_type == "scalar":
        assert numpy.abs(mix.get_param("weights")).sum() > 0  # trained on the cache
    else:
        width = mix.get_dim("nI")
        assert not numpy.allclose(mix.get_param("W"), numpy.stack([numpy.eye(width) / 2] * 2))

    docs = [unannotated_copy(d) for d in DocBin().from_disk(tiny_corpus / "train.spacy").get_docs(nlp.vocab)]
    n_pieces = [len(nlp.get_pipe("transformer").model.tokenizer(d.text)["input_ids"]) for d in docs]
    assert max(n_pieces) > 32  # longer than the transformer's window
    meta_path = next(p for p in (tmp_path / "cache").glob("*.json") if json.loads(p.read_text())["docs"] == len(docs))
    cached = numpy.load(meta_path.with_suffix(".npy"))
    width = nlp.get_pipe("transformer").model.get_dim("nO")
    assert cached.shape == (sum(len(d) for d in docs), 2 * width) and cached.dtype == numpy.float16
    per_doc = numpy.split(cached.astype("f"), numpy.cumsum([len(d) for d in docs])[:-1])
    mixed_from_cache, _ = mix([X.reshape(-1, 2, width) for X in per_doc], is_train=False)
    transformer = nlp.get_pipe("transformer")
    transformer.set_annotations(docs, transformer.predict(docs))
    live = nlp.get_pipe("posattn_ner").model.get_ref("tok2vec").predict(docs)
    assert_allclose(numpy.concatenate(mixed_from_cache), numpy.concatenate(live), atol=3e-2, rtol=1e-2)


def test_prediction_mixes_word_pieces_first_with_the_same_result(tiny_bert, monkeypatch):
    """At prediction the listener mixes the word-piece states and pools once;
    that equals pooling every layer and mixing (the training path), on docs
    longer than the transformer's window, with trained (non-uniform) weights."""
    from spacy_posattn.layers import scalar_mix as module

    fix_random_seed(0)
    nlp = make_mix_nlp(tiny_bert)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    texts = [" ".join(eg.reference.text for eg in examples) * 3, "Alice went home ."]
    docs = [nlp.make_doc(text) for text in texts]
    transformer = nlp.get_pipe("transformer")
    transformer.set_annotations(docs, transformer.predict(docs))
    listener = nlp.get_pipe("posattn_ner").model.get_ref("tok2vec")
    features, mix = listener.layers
    mix(features.predict(docs), is_train=False)  # sets the mix's size
    mix.set_param("weights", mix.ops.asarray1f(numpy.linspace(-1, 2, mix.get_dim("nL"))))
    mix.set_param("scale", mix.ops.asarray1f([1.7]))
    calls, original = [], module._mix_word_pieces

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(module, "_mix_word_pieces", counting)
    fast = listener.predict(docs)
    assert len(calls) == len(docs)
    slow = mix.predict(features.predict(docs))
    for a, b in zip(fast, slow):
        assert a.shape == b.shape
        assert_allclose(a, b, rtol=1e-4, atol=1e-5)
