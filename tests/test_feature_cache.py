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


def test_feature_pass_batches_by_words_in_order():
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    from spacy_posattn.feature_cache import batches_of_words

    vocab = Vocab()
    lengths = [3, 4, 2, 9, 1, 1, 0, 5]
    docs = [Doc(vocab, words=["w"] * n) for n in lengths]
    batches = list(batches_of_words(docs, 6))
    # Order kept, nothing dropped or repeated: the vectors are written one Doc after the other.
    assert [doc for batch in batches for doc in batch] == docs
    assert [[len(d) for d in b] for b in batches] == [[3, 4], [2, 9], [1, 1, 0, 5]]
    # Every batch but the last reaches the size; a long Doc closes its batch at once.
    assert all(sum(len(d) for d in b) >= 6 for b in batches[:-1])
    assert [[len(d) for d in b] for b in batches_of_words(docs[:4], 1)] == [[3], [4], [2], [9]]
    assert list(batches_of_words([], 6)) == []
