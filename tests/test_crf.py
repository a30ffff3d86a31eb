"""The CRF baseline: features, IOB repair (by spaCy's iob_to_biluo), and learning a simple pattern end to end."""
import re

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_posattn.baselines.crf import (
    doc_with_entities,
    featurize,
    sentence_labels,
    sentence_spans,
    load_tagger,
    train_and_evaluate,
    word_features,
)
from spacy_posattn.evaluate import iob_tags
from spacy_posattn.readers import unannotated_copy

TRAIN_PER = ["John", "Mary", "Ahmed", "Olga", "Peter Brown", "Mary Smith", "Li Wei", "Anna"]
TRAIN_GEO = ["Paris", "London", "Berlin", "Tokyo", "New York", "Lagos", "Hong Kong"]
TEST_PER = ["Laura", "Kenji Sato", "Omar", "Ines Garcia"]
TEST_GEO = ["Madrid", "Cairo", "Buenos Aires", "Oslo"]


def make_doc(vocab, per: str, geo: str, per2: str, geo2: str) -> Doc:
    """Two sentences: '<per> lives in <geo> .' and 'She visited <geo2> with <per2> .'"""
    words, tags, ents, sent_starts = [], [], [], []

    def add(text: str, tag: str, label: str = "") -> None:
        for i, word in enumerate(text.split()):
            words.append(word)
            tags.append(tag)
            ents.append(f"{'B' if i == 0 else 'I'}-{label}" if label else "O")
            sent_starts.append(False)

    for sentence in (
        [(per, "NNP", "per"), ("lives", "VBZ"), ("in", "IN"), (geo, "NNP", "geo"), (".", ".")],
        [("She", "PRP"), ("visited", "VBD"), (geo2, "NNP", "geo"), ("with", "IN"), (per2, "NNP", "per"), (".", ".")],
    ):
        start = len(words)
        for part in sentence:
            add(*part)
        sent_starts[start] = True
    return Doc(vocab, words=words, tags=tags, ents=ents, sent_starts=sent_starts)


def make_docs(vocab, pers, geos, n: int):
    return [
        make_doc(vocab, pers[i % len(pers)], geos[i % len(geos)], pers[(i + 3) % len(pers)], geos[(i + 2) % len(geos)])
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny train / test corpus (test names unseen in training) and a tiny tagger pipeline."""
    path = tmp_path_factory.mktemp("crf")
    nlp = spacy.blank("en")
    train = make_docs(nlp.vocab, TRAIN_PER, TRAIN_GEO, 40)
    test = make_docs(nlp.vocab, TEST_PER, TEST_GEO, 12)
    DocBin(docs=train).to_disk(path / "train.spacy")
    DocBin(docs=test).to_disk(path / "test.spacy")
    nlp.add_pipe("tagger")
    examples = [Example(unannotated_copy(doc), doc) for doc in train]
    optimizer = nlp.initialize(lambda: examples)
    for step in range(20):
        nlp.update(examples[(step * 8) % 40 :][:8], sgd=optimizer)
    nlp.to_disk(path / "tagger_model")
    return path


def test_word_features_three_words():
    words, tags = ["Bob", "visited", "PARIS"], ["NNP", "VBD", "NNP"]
    first, middle, last = (word_features(words, tags, i) for i in range(3))
    assert middle == {
        "word.lower()": "visited",
        "word[-3:]": "ted",
        "word[-2:]": "ed",
        "word.isupper()": False,
        "word.isdigit()": False,
        "word.istitle()": False,
        "postag": "VBD",
        "-1:word.lower()": "bob",
        "-1:word.istitle()": True,
        "-1:word.isupper()": False,
        "-1:word.isdigit()": False,
        "-1:postag": "NNP",
        "+1:word.lower()": "paris",
        "+1:word.istitle()": False,
        "+1:word.isupper()": True,
        "+1:word.isdigit()": False,
        "+1:postag": "NNP",
    }
    assert first["BOS"] is True and "EOS" not in first
    assert not any(key.startswith("-1:") for key in first)
    assert first["+1:word.lower()"] == "visited" and first["word[-3:]"] == "Bob" and first["word[-2:]"] == "ob"
    assert last["EOS"] is True and "BOS" not in last
    assert not any(key.startswith("+1:") for key in last)
    assert last["-1:postag"] == "VBD" and last["word.isupper()"] is True
    single = word_features(["42"], ["CD"], 0)
    assert single["BOS"] is True and single["EOS"] is True and single["word.isdigit()"] is True


def test_sequences_are_sentences():
    doc = make_doc(spacy.blank("en").vocab, "Bob", "Paris", "Mary Smith", "New York")
    spans = sentence_spans(doc)
    assert [(s.start, s.stop) for s in spans] == [(0, 5), (5, 13)]
    features = featurize(doc, spans)
    assert [len(f) for f in features] == [5, 8]
    assert features[1][0]["BOS"] is True and "-1:word.lower()" not in features[1][0]
    assert features[0][-1]["EOS"] is True and features[0][-2]["postag"] == "NNP"
    assert sentence_labels(doc) == [
        ["B-per", "O", "O", "B-geo", "O"],
        ["O", "O", "B-geo", "I-geo", "O", "B-per", "I-per", "O"],
    ]
    no_sents = Doc(doc.vocab, words=["a", "b"])
    with pytest.raises(ValueError, match="sentence boundaries"):
        sentence_spans(no_sents)


def test_repair_iob_without_b():
    tags = ["I-geo", "I-geo", "O", "I-per", "B-per", "I-per", "I-geo"]
    words = Doc(spacy.blank("en").vocab, words=["a", "b", "c", "d", "e", "f", "g"])
    assert iob_tags(doc_with_entities(words, tags)) == ["B-geo", "I-geo", "O", "B-per", "B-per", "I-per", "B-geo"]
    gold = Doc(spacy.blank("en").vocab, words=["in", "New", "York", "Bob", "Smith", "ran"])
    predicted = doc_with_entities(gold, ["O", "I-geo", "I-geo", "I-per", "I-geo", "O"])
    assert [(e.text, e.label_) for e in predicted.ents] == [("New York", "geo"), ("Bob", "per"), ("Smith", "geo")]
    assert iob_tags(predicted) == ["O", "B-geo", "I-geo", "B-per", "B-geo", "O"]
    assert not predicted.has_annotation("TAG")


def test_pipeline_without_tagger(tmp_path, corpus):
    spacy.blank("en").to_disk(tmp_path / "no_tagger")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "no_tagger")) + ".*tagger"):
        train_and_evaluate(corpus / "train.spacy", corpus / "test.spacy", tmp_path / "no_tagger", tmp_path / "out")


def test_load_tagger_runs_only_up_to_the_tagger(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("tagger").add_label("NNP")
    nlp.add_pipe("ner").add_label("geo")
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    loaded = load_tagger(tmp_path / "pipeline")
    assert loaded.pipe_names == ["tagger"] and loaded.disabled == ["ner"]
    doc = loaded(Doc(loaded.vocab, words=["Paris"]))
    assert doc[0].tag_ == "NNP" and not doc.has_annotation("ENT_IOB")


def test_crf_learns_pattern(corpus, tmp_path):
    scores = train_and_evaluate(
        corpus / "train.spacy", corpus / "test.spacy", corpus / "tagger_model", tmp_path / "out", max_iterations=30
    )
    assert scores["ents_f"] > 0.8, scores["ents_per_type"]
    assert set(scores["ents_per_type"]) == {"geo", "per"}
    test_docs = list(DocBin().from_disk(corpus / "test.spacy").get_docs(spacy.blank("en").vocab))
    assert scores["docs"] == 12 and scores["words"] == sum(len(doc) for doc in test_docs)
    assert scores["train_seconds"] > 0 and scores["words_per_second"] > 0
    assert 1 <= scores["epochs"] <= 30 and scores["max_iterations"] == 30
    assert scores["tag_acc"] is None
    assert (tmp_path / "out" / "model.crfsuite").stat().st_size > 0
