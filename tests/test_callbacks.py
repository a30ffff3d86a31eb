"""Training callbacks: malloc_trim every N steps, chained to another callback; train-cached calls them."""
from typing import Dict, List

import pytest
from spacy.util import registry
from thinc.api import Config

from spacy_posattn import callbacks, feature_cache

from .test_compare import tiny_cached_config, tiny_corpus  # noqa: F401  (fixture)

STEPS: List[Dict] = []


@registry.callbacks("test-posattn.record_steps.v1")
def record_steps():
    def record(nlp, args):
        STEPS.append(dict(args))

    return record


def test_malloc_trim_every_n_steps_then_the_chained_callback(monkeypatch):
    trims = []
    monkeypatch.setattr(callbacks, "malloc_trim", lambda: trims.append(True) or True)
    chained = []
    callback = callbacks.create_malloc_trim_v1(every=3, then=lambda nlp, args: chained.append(args["step"]))
    for step in range(8):
        callback(None, {"step": step, "epoch": 0})
    assert len(trims) == 2  # steps 3 and 6: not at step 0, nothing is freed yet
    assert chained == list(range(8))
    with pytest.raises(ValueError, match="every"):
        callbacks.create_malloc_trim_v1(every=-1)


def test_malloc_trim_runs_here():
    """On this (glibc) machine the real call goes through; elsewhere it says it did nothing."""
    import sys

    assert callbacks.malloc_trim() is sys.platform.startswith("linux")


def test_train_cached_calls_before_update_every_step(tiny_bert, tiny_corpus, tmp_path):  # noqa: F811
    path = tiny_cached_config(tmp_path, tiny_corpus, tiny_bert)
    config = Config().from_disk(path, interpolate=False)
    config["training"]["before_update"] = {"@callbacks": "test-posattn.record_steps.v1"}
    config.to_disk(path)
    STEPS.clear()
    feature_cache.train_cached(path, tmp_path / "out", epochs=2, cache_dir=tmp_path / "cache")
    assert [s["step"] for s in STEPS] == list(range(len(STEPS))) and len(STEPS) >= 4
    assert {s["epoch"] for s in STEPS} == {0, 1}


def test_train_cached_shuffles_with_the_configs_seed(tiny_bert, tiny_corpus, tmp_path, monkeypatch):  # noqa: F811
    """`--system.seed N` changes the order of the train Docs too, not only the initial weights."""
    path = tiny_cached_config(tmp_path, tiny_corpus, tiny_bert)
    seeds = []
    real_seed = feature_cache.random.seed
    monkeypatch.setattr(feature_cache.random, "seed", lambda s: seeds.append(s) or real_seed(s))
    feature_cache.train_cached(path, tmp_path / "out", epochs=1, cache_dir=tmp_path / "cache",
                               overrides={"system.seed": 3})
    assert seeds[-1] == 3


def test_train_cached_names_a_dev_tag_the_training_data_lacks(tiny_bert, tiny_corpus, tmp_path):  # noqa: F811
    """Not thinc's bare KeyError from deep inside the tagger's loss (seen with a train limit)."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    docs = list(DocBin().from_disk(tiny_corpus / "dev.spacy").get_docs(Vocab()))
    docs[0][0].tag_ = "XYZ"
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "dev.spacy")
    path = tiny_cached_config(tmp_path, tiny_corpus, tiny_bert)
    with pytest.raises(ValueError, match=r"\[tagger\] The dev data has the label 'XYZ'.*corpora.train.limit"):
        feature_cache.train_cached(path, tmp_path / "out", epochs=1, cache_dir=tmp_path / "cache",
                                   overrides={"paths.dev": str(tmp_path / "dev.spacy")})
