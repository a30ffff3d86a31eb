"""spacy-posattn.GoldTokensCorpus.v1: gold tokens, and Docs read from disk once."""
import pytest
import spacy
from spacy.tokens import Doc, DocBin

from spacy_posattn.readers import create_gold_tokens_corpus_v1


@pytest.fixture
def docbin_path(tmp_path):
    nlp = spacy.blank("en")
    docs = [
        Doc(nlp.vocab, words=["The", "WHO", "met", "in", "20-year-old", "Geneva"],
            tags=["DT", "NNP", "VBD", "IN", "JJ", "NNP"], ents=["O", "B-org", "O", "O", "O", "B-geo"]),
        Doc(nlp.vocab, words=["who", "knows", "?"], tags=["WP", "VBZ", "."], ents=["O", "O", "O"]),
    ]
    for number, doc in enumerate(docs):
        doc.user_data["gmb_sentences"] = [number, number]
    path = tmp_path / "train.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path


def summary(examples):
    return [([t.text for t in eg.predicted], [t.tag_ for t in eg.reference],
             [(e.text, e.label_) for e in eg.reference.ents], len(eg.predicted.ents))
            for eg in examples]


def test_keeps_the_gold_tokens_without_annotation(docbin_path):
    examples = list(create_gold_tokens_corpus_v1(docbin_path)(spacy.blank("en")))
    assert summary(examples)[0] == (
        ["The", "WHO", "met", "in", "20-year-old", "Geneva"], ["DT", "NNP", "VBD", "IN", "JJ", "NNP"],
        [("WHO", "org"), ("Geneva", "geo")], 0)
    assert not examples[0].predicted.has_annotation("TAG")
    assert list(examples[1].reference.user_data["gmb_sentences"]) == [1, 1]


def test_later_passes_come_from_memory(docbin_path):
    nlp = spacy.blank("en")
    read = create_gold_tokens_corpus_v1(docbin_path)
    first = list(read(nlp))
    first[0].predicted.ents = [first[0].predicted.char_span(4, 7, label="org")]
    docbin_path.unlink()  # a second read from disk would fail
    second = list(read(nlp))
    assert summary(second) == [(w, t, e, 0) for w, t, e, _ in summary(first)]
    assert second[0].predicted is not first[0].predicted  # fresh, unannotated predicted Docs


def test_another_vocab_reads_again(docbin_path):
    read = create_gold_tokens_corpus_v1(docbin_path)
    list(read(spacy.blank("en")))
    other = spacy.blank("en")
    examples = list(read(other))
    assert all(eg.reference.vocab is other.vocab for eg in examples)


def test_cache_off_reads_the_file_each_pass(docbin_path):
    nlp = spacy.blank("en")
    read = create_gold_tokens_corpus_v1(docbin_path, cache=False)
    assert len(list(read(nlp))) == 2
    docbin_path.unlink()
    with pytest.raises(OSError):
        list(read(nlp))
