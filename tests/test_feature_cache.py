"""The feature cache's file: written as the vectors come, read back memory-mapped."""

import numpy
import pytest

from spacy_posattn.feature_cache import write_features


def test_write_features_streams_into_one_file_read_back_mapped(tmp_path):
    docs = [numpy.full((n, 6), i, dtype=numpy.float16) for i, n in enumerate([3, 0, 5, 2])]
    path = tmp_path / "f.npy"
    write_features(iter(docs), 10, path)
    flat = numpy.load(path, mmap_mode="r")
    assert flat.shape == (10, 6) and flat.dtype == numpy.float16
    numpy.testing.assert_array_equal(numpy.asarray(flat), numpy.concatenate(docs))
    assert isinstance(numpy.asarray(flat).base, numpy.memmap)  # a view of the file, not a copy


def test_write_features_checks_the_token_count(tmp_path):
    with pytest.raises(ValueError, match="expected vectors for 9 tokens, got 8"):
        write_features(iter([numpy.zeros((8, 2), numpy.float16)]), 9, tmp_path / "f.npy")
    write_features(iter([]), 0, tmp_path / "empty.npy")
    assert numpy.load(tmp_path / "empty.npy").shape == (0, 0)


def test_cache_key_follows_what_changes_the_vectors(tmp_path):
    from spacy_posattn.feature_cache import cache_key

    corpus = tmp_path / "train.spacy"
    corpus.write_bytes(b"x")

    def key(tok2vec=None, **trf):
        model = {"name": "some/bert", "get_spans": {"window": 128}, "lr_scale": 0.2, "group_rows": 16, **trf}
        tok2vec = tok2vec or {"pooling": "mean"}
        config = {"components": {"transformer": {"model": model}, "ner": {"model": {"tok2vec": tok2vec}}}}
        return cache_key(config, {"ner": None}, str(corpus))

    assert key() == key(lr_scale=1.0) == key(group_rows=0)  # the same vectors
    # The cache holds the pooled layers; the mix is trained on top of them.
    assert key() == key(tok2vec={"pooling": "mean", "mix": "linear"})
    assert key() != key(tok2vec={"pooling": "max"})
    assert key() != key(name="other/bert")
    assert key() != key(get_spans={"window": 64})
    assert key() != key(int8="all")
