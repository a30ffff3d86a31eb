"""The feature CRF that posattn_ner averages with its network (`crf_weight`, `train-crf`)."""
import json
import pickle

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc, DocBin
from thinc.api import to_numpy
from typer.testing import CliRunner

from spacy_posattn.cli import app
from spacy_posattn.crf_training import gold_sequences, train_pipeline_crf
from spacy_posattn.pipeline.decoding import biluo_tags
from spacy_posattn.pipeline.feature_crf import FeatureCRF, crf_sequences, sentence_features, word_shape
from spacy_posattn.pipeline.tagger import PosAttnTagger
from spacy_posattn.readers import unannotated_copy

from .conftest import TRAIN_DATA, make_examples, make_nlp, train_tiny
from .test_crf import TEST_GEO, TEST_PER, TRAIN_GEO, TRAIN_PER, make_docs

TAGS = biluo_tags(["geo", "per"])


@pytest.fixture(scope="module")
def toy_crf():
    """A CRF trained on two-sentence toy docs (names in the test docs are unseen)."""
    vocab = spacy.blank("en").vocab
    train, test = make_docs(vocab, TRAIN_PER, TRAIN_GEO, 40), make_docs(vocab, TEST_PER, TEST_GEO, 8)
    return FeatureCRF.train(gold_sequences(train), max_iterations=50), test


def test_sequences_are_sentences_or_the_whole_doc():
    vocab = spacy.blank("en").vocab
    doc = make_docs(vocab, TRAIN_PER, TRAIN_GEO, 1)[0]
    assert [(s.start, s.stop) for s in crf_sequences(doc)] == [(sent.start, sent.end) for sent in doc.sents]
    assert len(crf_sequences(doc)) == 2
    plain = unannotated_copy(doc)
    assert [(s.start, s.stop) for s in crf_sequences(plain)] == [(0, len(doc))]


def test_crf_learns_and_its_marginals_are_distributions(toy_crf):
    crf, test = toy_crf
    assert set(crf.labels) <= set(TAGS)
    gold, predicted = [], []
    for doc in test:
        marginals = crf.doc_marginals(doc, TAGS)
        assert marginals.shape == (len(doc), len(TAGS))
        assert_allclose(marginals.sum(axis=1), 1.0, atol=1e-4)
        gold.extend(t.ent_type_ or "O" for t in doc)
        predicted.extend(TAGS[i].split("-")[-1] for i in marginals.argmax(axis=1))
    # The most likely tag has the gold entity type almost everywhere (unseen names, known contexts);
    # an untrained or mis-ordered CRF would be right on the "O" tokens only (about 60 %).
    assert numpy.mean([g == p for g, p in zip(gold, predicted)]) > 0.9
    assert sum(g == p != "O" for g, p in zip(gold, predicted)) > 0.8 * sum(g != "O" for g in gold)


def test_tags_the_crf_never_saw_get_zero(toy_crf):
    crf, test = toy_crf
    marginals = crf.doc_marginals(test[0], [*TAGS, "U-org"])
    assert (marginals[:, -1] == 0).all()
    assert_allclose(marginals[:, :-1].sum(axis=1), 1.0, atol=1e-4)


def test_crf_pickles_and_reloads_from_its_bytes(toy_crf):
    crf, test = toy_crf
    expected = crf.doc_marginals(test[0], TAGS)
    for copy in (pickle.loads(pickle.dumps(crf)), FeatureCRF(crf.model_bytes)):
        assert_allclose(copy.doc_marginals(test[0], TAGS), expected)


def test_gold_sequences_refuse_docs_without_tags_or_with_missing_entities():
    vocab = spacy.blank("en").vocab
    untagged = Doc(vocab, words=["Bob", "ran"], ents=["B-per", "O"])
    with pytest.raises(ValueError, match="train.spacy.*no POS tags"):
        list(gold_sequences([untagged], "train.spacy"))
    partial = Doc(vocab, words=["Bob", "ran"], tags=["NNP", "VBD"], ents=["B-per", ""])
    with pytest.raises(ValueError, match="missing entity annotation"):
        list(gold_sequences([partial]))
    with pytest.raises(ValueError, match="3 words, 2 POS tags"):
        FeatureCRF.train([(["a", "b", "c"], ["DT", "NN"], ["O", "O", "O"])])


def two_away_sequences(names, n):
    """'We flew to the NAME .' (geo) and 'We spoke with the NAME .' (per): only the word two
    before the name tells its type; the word before it is 'the' in both, labelled O."""
    out = []
    for i in range(n):
        name = names[i % len(names)]
        verb, prep, label = ("flew", "to", "geo") if i % 2 == 0 else ("spoke", "with", "per")
        words = ["We", verb, prep, "the", name, "."]
        out.append((words, ["PRP", "VBD", "IN", "DT", "NNP", "."], ["O", "O", "O", "O", "U-" + label, "O"]))
    return out


def test_extended_features_see_two_words_away_and_the_paper_features_do_not():
    train = two_away_sequences(["Zorvek", "Quillan", "Brastow", "Fenmir", "Ostrava"], 60)
    test = two_away_sequences(["Kalmoth", "Vireny", "Tuskar"], 12)
    right = {}
    for features in ("paper", "extended"):
        crf = FeatureCRF.train(train, max_iterations=50, features=features)
        assert crf.features == features
        tags = ["O", "U-geo", "U-per"]
        got = [tags[int(crf.marginals(w, p, tags)[4].argmax())] for w, p, _ in test]
        right[features] = numpy.mean([g == gold[4] for g, (_, _, gold) in zip(got, test)])
    assert right["extended"] == 1.0
    # The paper's window is one word: "the" before every name, so the type is a coin toss.
    assert right["paper"] <= 0.75


def test_extended_features_add_to_the_papers():
    words, tags = ["The", "F-16", "flew", "over", "Baghdad", "."], ["DT", "NNP", "VBD", "IN", "NNP", "."]
    paper, extended = sentence_features(words, tags), sentence_features(words, tags, "extended")
    for p, e in zip(paper, extended):
        assert p.items() <= e.items()
    assert extended[1]["shape"] == "X-d" and extended[1]["hyphen"] and extended[1]["hasdigit"]
    assert extended[2]["-2:word.lower()"] == "the" and extended[2]["2:word.lower()"] == "baghdad"
    assert extended[2]["bigram-1"] == "f-16|flew" and extended[2]["posbigram1"] == "VBD|IN"
    assert "-2:word.lower()" not in extended[1] and "2:word.lower()" not in extended[4]
    assert [word_shape(w) for w in ("London", "3.5", "USA", "e-mail")] == ["Xx", "d.d", "X", "x-x"]
    with pytest.raises(ValueError, match="Unknown CRF feature set 'rich': use one of 'paper', 'extended'"):
        sentence_features(words, tags, "rich")
    with pytest.raises(ValueError, match="Unknown CRF feature set"):
        FeatureCRF(b"x", features="rich")


@pytest.fixture(scope="module")
def trained(tiny_bert):
    nlp = train_tiny(make_nlp(tiny_bert), 30)
    gold = [eg.reference for eg in make_examples(nlp)]
    return nlp, gold


def network_probs(nlp, texts):
    """posattn_ner's own probabilities, with the CRF mixed out."""
    ner = nlp.get_pipe("posattn_ner")
    saved, ner.crf_weight = ner.crf_weight, 0.0
    try:
        with nlp.select_pipes(disable=["posattn_ner"]):
            docs = list(nlp.pipe(texts))
        return [to_numpy(p) for p in ner.predict(docs)], docs
    finally:
        ner.crf_weight = saved


def test_train_pipeline_crf_sets_crf_and_the_best_dev_weight(trained):
    nlp, gold = trained
    fit = train_pipeline_crf(nlp, gold, gold, weights=(0.0, 0.5, 1.0), max_iterations=30, log=lambda _: None)
    ner = nlp.get_pipe("posattn_ner")
    assert ner.crf is not None and fit["sequences"] == len(TRAIN_DATA)
    assert set(fit["dev_f1"]) == {"0", "0.5", "1"}
    assert fit["weight"] == ner.crf_weight
    assert fit["dev_f1"][f"{fit['weight']:g}"] == max(fit["dev_f1"].values())
    # The CRF learned its own training docs: alone it gets them all.
    assert fit["dev_f1"]["1"] == 100.0


def test_mix_is_the_weighted_average(trained):
    nlp, gold = trained
    ner = nlp.get_pipe("posattn_ner")
    if ner.crf is None:
        ner.crf = FeatureCRF.train(gold_sequences(gold), max_iterations=30)
    texts = [text for text, _ in TRAIN_DATA]
    network, docs = network_probs(nlp, texts)
    crf = ner.crf_marginals(docs)
    saved = ner.crf_weight
    try:
        for w in (0.0, 0.3, 1.0):
            ner.crf_weight = w
            mixed = [to_numpy(p) for p in ner.predict(docs)]
            for m, n, c in zip(mixed, network, crf):
                assert_allclose(m, (1 - w) * n + w * c, rtol=1e-5, atol=1e-6)
        # At weight 1 the entities are the CRF's, which learned these docs.
        ner.crf_weight = 1.0
        for doc, (text, ents) in zip(nlp.pipe(texts), TRAIN_DATA):
            assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == ents
    finally:
        ner.crf_weight = saved


def test_crf_weight_without_a_crf_or_tags_is_a_clear_error(tiny_bert):
    nlp = train_tiny(make_nlp(tiny_bert), 2)
    ner = nlp.get_pipe("posattn_ner")
    ner.crf_weight = 0.5
    with pytest.raises(ValueError, match="no CRF: train one with `python -m spacy_posattn train-crf`"):
        nlp("Alice went to China .")
    ner.crf = FeatureCRF.train(gold_sequences([eg.reference for eg in make_examples(nlp)]), max_iterations=5)
    with nlp.select_pipes(disable=["tagger"]):
        with pytest.raises(ValueError, match="put a `tagger` before 'posattn_ner'"):
            nlp("Alice went to China .")
    with pytest.raises(ValueError, match="crf_weight must be between 0 and 1"):
        make_nlp(tiny_bert, ner=False).add_pipe("posattn_ner", config={"crf_weight": 1.5})


def test_pipeline_without_tagger_before_the_ner_is_refused(tiny_bert):
    nlp = train_tiny(make_nlp(tiny_bert, tagger=False), 2, tags=False)
    with pytest.raises(ValueError, match="no 'tagger' before 'posattn_ner'"):
        train_pipeline_crf(nlp, [], [], log=lambda _: None)


def test_train_crf_command_saves_a_pipeline_that_reloads_the_same(trained, tmp_path):
    nlp, gold = trained
    model = tmp_path / "model"
    nlp.get_pipe("posattn_ner").crf, nlp.get_pipe("posattn_ner").crf_weight = None, 0.0
    nlp.to_disk(model)
    DocBin(docs=gold).to_disk(tmp_path / "gold.spacy")
    result = CliRunner().invoke(app, [
        "train-crf", str(model), str(tmp_path / "gold.spacy"), str(tmp_path / "gold.spacy"), str(tmp_path / "out"),
        "--report", str(tmp_path / "fit.json"), "--weights", "0.6", "--max-iterations", "30",
        "--features", "extended", "--pos-iterations", "20", "--pos-weights", "0.4",
    ])
    assert result.exit_code == 0, result.output
    assert "tagger crf_weight = 0.4" in result.output
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["weight"] == 0.6 and (tmp_path / "out" / "posattn_ner" / "crf.crfsuite").exists()
    assert fit["features"] == "extended"
    loaded = spacy.load(tmp_path / "out")
    ner = loaded.get_pipe("posattn_ner")
    assert ner.crf_weight == 0.6 and loaded.config["components"]["posattn_ner"]["crf_weight"] == 0.6
    # The tagger became a posattn_tagger with its POS CRF and the chosen weight, in its config.
    tagger = loaded.get_pipe("tagger")
    assert isinstance(tagger, PosAttnTagger) and loaded.config["components"]["tagger"]["factory"] == "posattn_tagger"
    assert fit["pos"]["weight"] == tagger.crf_weight == loaded.config["components"]["tagger"]["crf_weight"] == 0.4
    assert tagger.crf.features == "words" and (tmp_path / "out" / "tagger" / "crf.crfsuite").exists()
    # The CRF reloads with the feature set it was trained on (read as "paper", it would
    # see none of its extended features' weights and predict otherwise).
    assert ner.crf.features == "extended" and pickle.loads(pickle.dumps(ner.crf)).features == "extended"
    texts = [text for text, _ in TRAIN_DATA]
    expected = [(d.ents, d.spans["ents"].attrs["scores"]) for d in loaded.pipe(texts)]
    expected = [([(e.start, e.end, e.label_) for e in ents], scores) for ents, scores in expected]
    # The pipeline trained in memory, given the same CRFs and weights, predicts the same.
    fresh = spacy.load(model, config={"components.tagger.factory": "posattn_tagger"})
    fresh.get_pipe("posattn_ner").crf, fresh.get_pipe("posattn_ner").crf_weight = ner.crf, 0.6
    fresh.get_pipe("tagger").crf, fresh.get_pipe("tagger").crf_weight = tagger.crf, 0.4
    same = [([(e.start, e.end, e.label_) for e in d.ents], d.spans["ents"].attrs["scores"]) for d in fresh.pipe(texts)]
    assert [[t.tag_ for t in d] for d in fresh.pipe(texts)] == [[t.tag_ for t in d] for d in loaded.pipe(texts)]
    for (e1, s1), (e2, s2) in zip(expected, same):
        assert e1 == e2
        assert_allclose(s1, s2, rtol=1e-5)
    # to_bytes / from_bytes keep the CRF too.
    again = spacy.blank("en").from_config(loaded.config)
    again.from_bytes(loaded.to_bytes())
    assert again.get_pipe("posattn_ner").crf.model_bytes == ner.crf.model_bytes
    assert again.get_pipe("posattn_ner").crf.features == "extended"
    got = [([(e.start, e.end, e.label_) for e in d.ents], d.spans["ents"].attrs["scores"]) for d in again.pipe(texts)]
    for (e1, s1), (e2, s2) in zip(expected, got):
        assert e1 == e2
        assert_allclose(s1, s2, rtol=1e-5)
    assert numpy.isclose(again.get_pipe("posattn_ner").crf_weight, 0.6)
    # evaluate reports the tagger's weight, and can turn its CRF off.
    result = CliRunner().invoke(app, [
        "evaluate", str(tmp_path / "out"), str(tmp_path / "gold.spacy"), "--output", str(tmp_path / "off.json"), "--pos-crf-weight", "0",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "off.json").read_text())["pos_crf_weight"] == 0.0
    assert "the tagger's POS CRF weight (`crf_weight`; 0: the network alone) | 0 |" in (tmp_path / "off.md").read_text()


def test_bad_weights_or_features_option_is_a_clear_error(tmp_path):
    (tmp_path / "x.spacy").write_bytes(b"")
    result = CliRunner().invoke(app, ["train-crf", "m", str(tmp_path / "x.spacy"), str(tmp_path / "x.spacy"), "o", "--weights", "a,b"])
    assert result.exit_code == 1 and "--weights must be comma-separated numbers" in result.output
    result = CliRunner().invoke(app, ["train-crf", "m", str(tmp_path / "x.spacy"), str(tmp_path / "x.spacy"), "o", "--features", "rich"])
    assert result.exit_code == 1 and "--features must be one of paper, extended, got 'rich'" in result.output
    result = CliRunner().invoke(app, ["train-crf", "m", str(tmp_path / "x.spacy"), str(tmp_path / "x.spacy"), "o", "--pos-weights", "0,x"])
    assert result.exit_code == 1 and "--pos-weights must be comma-separated numbers, got '0,x'" in result.output


def test_evaluate_reports_the_crf_weight_and_can_turn_the_crf_off(trained, tmp_path):
    nlp, gold = trained
    ner = nlp.get_pipe("posattn_ner")
    saved = ner.crf, ner.crf_weight
    ner.crf, ner.crf_weight = FeatureCRF.train(gold_sequences(gold), max_iterations=30), 0.0
    try:
        nlp.to_disk(tmp_path / "model")
    finally:
        ner.crf, ner.crf_weight = saved
    config = (tmp_path / "model" / "config.cfg").read_text().replace("crf_weight = 0.0", "crf_weight = 1.0")
    (tmp_path / "model" / "config.cfg").write_text(config)
    DocBin(docs=gold).to_disk(tmp_path / "gold.spacy")
    scores = {}
    for name, extra in (("saved", []), ("off", ["--crf-weight", "0"])):
        result = CliRunner().invoke(app, [
            "evaluate", str(tmp_path / "model"), str(tmp_path / "gold.spacy"), "--output", str(tmp_path / f"{name}.json"), *extra,
        ])
        assert result.exit_code == 0, result.output
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert scores["saved"]["crf_weight"] == 1.0 and scores["off"]["crf_weight"] == 0.0
    assert "feature CRF weight (`crf_weight`; 0: the network alone) | 1 |" in (tmp_path / "saved.md").read_text()
    # The CRF alone learned these docs; the network after 30 tiny steps did not, entirely.
    assert scores["saved"]["ents_f"] == 1.0
    # This pipeline's tagger is spaCy's own: it has no POS CRF weight to set.
    assert "pos_crf_weight" not in scores["saved"]
    result = CliRunner().invoke(app, [
        "evaluate", str(tmp_path / "model"), str(tmp_path / "gold.spacy"), "--output", str(tmp_path / "x.json"), "--pos-crf-weight", "0",
    ])
    assert result.exit_code == 1 and "is not a posattn_tagger" in result.output


def crfsuite_marginals(crf, words, pos, tags):
    """The marginals as CRFsuite's own Tagger.marginal gives them, one call per tag and position."""
    tagger = crf.tagger
    tagger.set(sentence_features(words, pos, crf.features))
    return numpy.array([[tagger.marginal(t, i) if t in crf.labels else 0.0 for t in tags] for i in range(len(words))])


def test_numpy_marginals_equal_crfsuites(toy_crf):
    crf, test = toy_crf
    train = two_away_sequences(["Zorvek", "Quillan", "Brastow"], 30)
    # Words that look like the model dump's syntax ("-->", ": ", "}") must not confuse its reader.
    train += [(["A", "-->", "b:", "}", "x --> y"], ["DT", "SYM", "NN", ")", "NN"], ["O", "O", "U-geo", "O", "U-per"])] * 5
    extended = FeatureCRF.train(train, max_iterations=30, features="extended")
    tags = ["O", "U-geo", "U-per", "B-org"]  # B-org: never seen, gets 0
    sequences = [(w, p) for w, p, _ in train[-6:]] + [([t.text for t in d], [t.tag_ for t in d]) for d in test[:3]]
    batch = extended.batch_marginals(sequences, tags)
    for (words, pos), got in zip(sequences, batch):
        assert_allclose(got, crfsuite_marginals(extended, words, pos, tags), atol=1e-4)
        assert (got[:, 3] == 0).all()
    for doc, got in zip(test, crf.docs_marginals(test, TAGS)):
        words, pos = [t.text for t in doc], [t.tag_ for t in doc]
        for span in crf_sequences(doc):
            assert_allclose(got[span], crfsuite_marginals(crf, words[span], pos[span], TAGS), atol=1e-4)
    assert crf.marginals([], [], TAGS).shape == (0, len(TAGS))


def crfsuite_attributes(features):
    """The attributes pycrfsuite makes of a feature dict, the ones whose value counts."""
    out = []
    for key, value in features.items():
        if isinstance(value, str):
            out.append(f"{key}:{value}")
        elif value:
            assert float(value) == 1.0  # AttributeRows sums weight rows: every value must be 1
            out.append(key)
    return sorted(out)


@pytest.mark.parametrize("features", ["paper", "extended", "words"])
def test_attribute_rows_are_sentence_features_as_crfsuite_reads_them(features):
    """The fast path (each word's attributes built and looked up once) gives each
    position exactly the attributes of `sentence_features`, for every feature set."""
    import random

    from spacy_posattn.pipeline.crf_attributes import AttributeRows, attribute_strings

    rng = random.Random(0)
    vocab = ["London", "WHO", "the", "3.5", "F-16", "a", "Mr.", "x", "co-op", "1999", "naïve", "|", ":", "B-2s"]
    pos = ["NNP", "DT", "CD", "NN", ".", "JJ", ":"]
    sentences = [([rng.choice(vocab) for _ in range(n)], [rng.choice(pos) for _ in range(n)]) for n in [1, 2, 3, 5, 8] * 40]
    known = {}
    for words, tags in sentences:
        expected = [crfsuite_attributes(f) for f in sentence_features(words, tags, features)]
        assert [sorted(a) for a in attribute_strings(words, tags, features)] == expected
        for position in expected:
            for attribute in position:
                if rng.random() < 0.8:  # the rest are attributes the CRF never kept
                    known.setdefault(attribute, len(known))
    rows = AttributeRows(known, features)
    for _ in range(2):  # the second pass reads every word from the cache
        for words, tags in sentences:
            expected = [sorted(known[a] for a in p if a in known) for p in attribute_strings(words, tags, features)]
            assert [sorted(p) for p in rows.sentence_rows(words, tags)] == expected
    assert len(rows._cache) == len(vocab)


def test_marginals_of_mixed_lengths_in_one_pass_equal_each_alone(toy_crf):
    """Sequences of lengths 1 to 40 share padded forward-backward passes
    (GROUP_SIZE each): each gets the marginals it gets alone, and CRFsuite's."""
    from spacy_posattn.pipeline import feature_crf

    crf, test = toy_crf
    words = [t.text for d in test for t in d]
    pos = [t.tag_ for d in test for t in d]
    lengths = [1, 40, 2, 7, 1, 13, 3, 40, 5] * 5
    starts = [(7 * i) % (len(words) - 40) for i in range(len(lengths))]
    sequences = [(words[s : s + n], pos[s : s + n]) for s, n in zip(starts, lengths)]
    assert len(sequences) > feature_crf.GROUP_SIZE
    batch = crf.batch_marginals(sequences, TAGS)
    for (w, p), got in zip(sequences, batch):
        assert got.shape == (len(w), len(TAGS))
        assert_allclose(got, crf.marginals(w, p, TAGS), rtol=1e-5, atol=1e-6)
    for (w, p), got in list(zip(sequences, batch))[:3]:
        assert_allclose(got, crfsuite_marginals(crf, w, p, TAGS), atol=1e-4)
