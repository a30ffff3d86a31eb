"""Issue 8's training mechanisms: the encoder's learning-rate scale, the
case-aware tagger, and the warm start of a fine-tune from heads trained on
cached frozen features."""
import copy
import json

import numpy
import pytest
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as train_loop
from spacy.util import load_config, load_model_from_path, make_tempdir
from thinc.api import Adam, PyTorchShim, fix_random_seed, torch2xp

from spacy_posattn import feature_cache
from spacy_posattn.evaluate import score_docs
from spacy_posattn.readers import create_gold_tokens_corpus_v1
from spacy_posattn.layers import ScaledRateHFShim

from .conftest import LEXICAL, LISTENER, make_examples, make_nlp
from .test_compare import tiny_cached_config, tiny_corpus  # noqa: F401  (fixture)
from .test_workflow import ROOT


class RecordingOptimizer:
    """Records each (key, lr_scale) the layers pass; leaves the weights alone."""

    learn_rate = 0.001

    def __init__(self):
        self.calls = []

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.calls.append((key, lr_scale))
        return weights, gradient


def encoder_shim(nlp):
    shims = [shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    assert len(shims) == 1
    return shims[0]


def test_encoder_gets_exactly_the_configured_step_scale(tiny_bert):
    nlp = make_nlp(tiny_bert, transformer_model={"lr_scale": 0.25})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    # As spaCy's training loop: backprop through every listener, then update each component.
    nlp.update(examples, sgd=False)
    shim = encoder_shim(nlp)
    with_grad = [name for name, p in shim._model.named_parameters() if p.grad is not None]  # not the unused pooler
    optimizer = RecordingOptimizer()
    for _, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    encoder = [scale for key, scale in optimizer.calls if key[0] == shim.id]
    heads = [scale for key, scale in optimizer.calls if key[0] != shim.id]
    assert len(encoder) == len(with_grad) > 10 and set(encoder) == {0.25}
    assert heads and set(heads) == {1.0}


def test_encoder_step_scale_survives_save_load_and_copy(tiny_bert):
    nlp = make_nlp(tiny_bert, transformer_model={"lr_scale": 0.1})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    shim = encoder_shim(nlp)
    assert isinstance(shim, ScaledRateHFShim) and shim.lr_scale == 0.1
    copied = [s for node in copy.deepcopy(nlp.get_pipe("transformer").model).walk() for s in node.shims]
    assert isinstance(copied[0], ScaledRateHFShim) and copied[0].lr_scale == 0.1
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        nlp2 = load_model_from_path(tmp)
    shim2 = encoder_shim(nlp2)
    assert isinstance(shim2, ScaledRateHFShim) and shim2.lr_scale == 0.1
    # Default: the full rate.
    assert encoder_shim(make_nlp(tiny_bert)).lr_scale == 1.0


def test_encoder_step_scale_really_scales_adams_step(tiny_bert):
    """Unlike a gradient scale, which Adam divides out, lr_scale shrinks the step."""
    steps = {}
    for scale in (1.0, 0.1):
        fix_random_seed(0)
        nlp = make_nlp(tiny_bert, transformer_model={"lr_scale": scale})
        examples = make_examples(nlp)
        optimizer = nlp.initialize(lambda: examples)
        nlp.update(examples, sgd=optimizer)  # output layers start at zero: the encoder gets no gradient yet
        shim = encoder_shim(nlp)
        before = {k: v.detach().clone() for k, v in shim._model.named_parameters()}
        nlp.update(examples, sgd=optimizer)
        after = dict(shim._model.named_parameters())
        steps[scale] = {k: (after[k].detach() - before[k]).abs().max().item() for k in before}
    ratios = [steps[0.1][k] / steps[1.0][k] for k in steps[1.0] if steps[1.0][k] > 1e-9]
    # float32 rounding of tiny steps blurs each ratio a little; a gradient scale would give about 1.0.
    assert len(ratios) > 10 and numpy.median(ratios) == pytest.approx(0.1, rel=0.03)
    assert all(0.07 < r < 0.13 for r in ratios)


def test_use_params_applies_the_averages_to_every_pytorch_weight(tiny_bert):
    """`use_averages = true`: thinc's PyTorchShim looks averages up under keys
    nothing writes, so the encoder and the attention blocks kept their current
    weights in every evaluation and saved model; ours apply them, then restore."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01, use_averages=True)
    for _ in range(4):
        nlp.update(examples, sgd=optimizer)
    shims = [shim for _, proc in nlp.pipeline for node in proc.model.walk() for shim in node.shims]
    assert len(shims) == 2 and all(isinstance(shim, PyTorchShim) for shim in shims)  # encoder, attention blocks

    def weights():
        return {(shim.id, name): torch2xp(p.detach()).copy() for shim in shims for name, p in shim._model.named_parameters()}

    current = weights()
    averaged = [key for key in current if key in optimizer.averages]
    assert len(averaged) > 20
    with nlp.use_params(optimizer.averages):
        inside = weights()
        for key in averaged:
            numpy.testing.assert_allclose(inside[key], optimizer.averages[key], rtol=1e-6, atol=1e-7)
        assert any(not numpy.allclose(inside[key], current[key]) for key in averaged)
        averaged_ents = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(eg.text for eg in examples)]
    after = weights()
    assert all(numpy.array_equal(after[key], current[key]) for key in current)
    assert isinstance(averaged_ents, list)


CASED = [  # only the case tells the tag: "WHO" the organisation, "who" the pronoun
    ("they saw WHO today .", ["PRP", "VBD", "NNP", "NN", "."]),
    ("they saw who today .", ["PRP", "VBD", "WP", "NN", "."]),
    ("we met WHO there .", ["PRP", "VBD", "NNP", "RB", "."]),
    ("we met who there .", ["PRP", "VBD", "WP", "RB", "."]),
]


def tagger_accuracy_on_case(tiny_bert, lexical, nlp_out=None, **tagger_args) -> float:
    fix_random_seed(0)
    tagger = {"@architectures": "spacy-posattn.PositionalAttentionTagger.v2", "depth": 0, "dropout": 0.0,
              "tok2vec": LISTENER, "lexical": lexical, **tagger_args}
    # The tagger listens first, the NER last: the tagger's listener backprop returns None.
    nlp = make_nlp(tiny_bert, tagger_model=tagger)
    examples = [Example.from_dict(nlp.make_doc(text), {"tags": tags, "entities": []}) for text, tags in CASED]
    examples += make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    docs = list(nlp.pipe(text for text, _ in CASED))
    if nlp_out is not None:
        nlp_out.append(nlp)
    return numpy.mean([doc[2].tag_ == tags[2] for doc, (_, tags) in zip(docs, CASED)])


def test_lexical_features_let_the_tagger_see_case(tiny_bert):
    # The uncased encoder gives "WHO" and "who" the same word pieces in the same
    # context: without lexical features the tagger can get at most half right.
    assert tagger_accuracy_on_case(tiny_bert, lexical=None) <= 0.5
    assert tagger_accuracy_on_case(tiny_bert, lexical=LEXICAL) == 1.0


def test_tagger_with_an_attention_block_learns_case_and_round_trips(tiny_bert, tmp_path):
    # `--vars.tagger_depth 1`: the encoder's vectors and the case features meet in
    # a positional-attention block before the softmax.
    trained = []
    accuracy = tagger_accuracy_on_case(
        tiny_bert, lexical=LEXICAL, nlp_out=trained, depth=1, width=32, heads=2, window=8
    )
    assert accuracy == 1.0
    nlp = trained[0]
    assert nlp.get_pipe("tagger").model.attrs["depth"] == 1
    nlp.to_disk(tmp_path / "nlp")
    loaded = load_model_from_path(tmp_path / "nlp")
    texts = [text for text, _ in CASED]
    assert [[t.tag_ for t in doc] for doc in loaded.pipe(texts)] == [[t.tag_ for t in doc] for doc in nlp.pipe(texts)]


def test_warm_start_from_cached_heads_links_listeners_and_trains(tiny_bert, tiny_corpus, tmp_path):  # noqa: F811
    heads_dir = tmp_path / "heads"
    feature_cache.train_cached(
        tiny_cached_config(tmp_path, tiny_corpus, tiny_bert), heads_dir, epochs=1, cache_dir=tmp_path / "cache",
        overrides={"training.optimizer.learn_rate.initial_rate": 0.005},
    )
    source = load_model_from_path(heads_dir / "model-best")
    config = load_config(ROOT / "configs" / "posattn_minilm_warm.cfg", interpolate=False)
    config["paths"].update(
        train=str(tiny_corpus / "train.spacy"), dev=str(tiny_corpus / "dev.spacy"), heads=str(heads_dir / "model-best")
    )
    config["training"].update(max_steps=4, eval_frequency=2)
    config["training"]["batcher"]["size"] = 30
    config["training"]["optimizer"]["learn_rate"].update(warmup_steps=1)
    config["training"]["logger"] = {"@loggers": "spacy.ConsoleLogger.v1", "progress_bar": False}
    nlp = init_nlp(config)
    assert nlp.get_pipe("transformer").listening_components == ["tagger", "posattn_ner"]
    (tmp_path / "warm").mkdir()
    train_loop(nlp, tmp_path / "warm")
    trained = load_model_from_path(tmp_path / "warm" / "model-last")
    assert trained.get_pipe("transformer").listening_components == ["tagger", "posattn_ner"]
    # Both the encoder and the heads moved away from the stage-1 pipeline.
    for name in ("transformer", "tagger", "posattn_ner"):
        old = source.get_pipe(name).model.to_bytes()
        assert trained.get_pipe(name).model.to_bytes() != old, name
    doc = trained("Alice went to China .")
    assert doc.has_annotation("TAG")


def test_cached_training_scores_and_saves_the_averages(tiny_bert, tiny_corpus, tmp_path):  # noqa: F811
    """With `use_averages = true`, stage 1 logs the dev scores with and without
    the averages, and score_heads annotates exactly as each head's predict."""
    out = tmp_path / "heads"
    feature_cache.train_cached(
        tiny_cached_config(tmp_path, tiny_corpus, tiny_bert), out, epochs=2, cache_dir=tmp_path / "cache",
        overrides={"training.optimizer.use_averages": True}, score_without_averages=True,
    )
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [line["averaged"] for line in log] == [True, True]
    assert all(set(line["current_scores"]) == {"ents_f", "tag_acc"} for line in log)

    nlp = load_model_from_path(out / "model-best")
    examples = list(create_gold_tokens_corpus_v1(tiny_corpus / "dev.spacy")(nlp))
    transformer = nlp.get_pipe("transformer")
    docs = [eg.predicted for eg in examples]
    transformer.set_annotations(docs, transformer.predict(docs))
    chains = feature_cache.listener_chains(nlp)
    for eg, X in zip(examples, next(iter(chains.values())).predict(docs)):
        eg.predicted.tensor = X.reshape((len(X), -1))
    width = transformer.model.get_dim("nO")
    feature_cache.swap(nlp, chains, feature_cache.cached_vectors(width, X.shape[1]), to_cache=True)
    _, scores = feature_cache.score_heads(nlp, list(chains), examples)
    expected = [feature_cache.unannotated_copy(eg.reference) for eg in examples]
    for doc, eg in zip(expected, examples):
        doc.tensor = eg.predicted.tensor
    for name in chains:
        proc = nlp.get_pipe(name)
        proc.set_annotations(expected, proc.predict(expected))
    assert scores == score_docs([eg.reference for eg in examples], expected)
