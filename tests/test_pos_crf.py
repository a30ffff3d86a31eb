"""The POS feature CRF that `posattn_tagger` averages with spaCy's tagger model (`train-crf`),
and the refit of both CRFs on train + dev (`refit-crf`)."""
import json

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.pipeline import Tagger
from spacy.tokens import Doc, DocBin
from spacy.training import iob_to_biluo
from thinc.api import to_numpy
from typer.testing import CliRunner

from spacy_posattn.cli import app
from spacy_posattn.crf_training import pos_sequences, refit_pipeline_crfs, train_pipeline_crf
from spacy_posattn.evaluate import iob_tags
from spacy_posattn.pipeline.feature_crf import FeatureCRF, reads_pos_tags, sentence_features
from spacy_posattn.pipeline.tagger import PosAttnTagger
from spacy_posattn.readers import unannotated_copy

from .conftest import TRAIN_DATA, make_examples, make_nlp, train_tiny

STEMS = ["walk", "jump", "paint", "clean", "fix", "open", "park", "rock", "kick", "mark"]
UNSEEN = ["pour", "lift", "cook", "burn"]


def suffix_sequences(stems):
    """'They STEMed .', 'They are STEMing .', 'The STEMs .': only the suffix tells the tag."""
    out = []
    for stem in stems:
        for words, tags in (
            (["They", stem + "ed", "."], ["PRP", "VBD", "."]),
            (["They", "are", stem + "ing", "."], ["PRP", "VBP", "VBG", "."]),
            (["The", stem + "s", "."], ["DT", "NNS", "."]),
        ):
            out.append((words, [""] * len(words), tags))
    return out


def test_word_only_features_read_no_pos_tags():
    words = ["The", "F-16", "flew", "over", "Baghdad", "."]
    assert not reads_pos_tags("words") and reads_pos_tags("paper") and reads_pos_tags("extended")
    with_tags = sentence_features(words, ["DT", "NNP", "VBD", "IN", "NNP", "."], "words")
    without = sentence_features(words, [""] * len(words), "words")
    assert with_tags == without
    first, second = without[0], without[1]
    assert first["-1:edge"] and first["-2:edge"] and "1:edge" not in first
    assert second["word[-2:]"] == "16" and second["word[:1]"] == "f" and second["shape"] == "X-d"
    assert second["bigram-1"] == "the|f-16" and second["2:word.lower()"] == "over"


def test_pos_crf_tags_unseen_words_by_their_suffix():
    crf = FeatureCRF.train(suffix_sequences(STEMS), max_iterations=50, features="words")
    labels = ["PRP", "VBD", "VBP", "VBG", "DT", "NNS", "."]
    right = []
    for words, _, gold in suffix_sequences(UNSEEN):
        marginals = crf.marginals(words, [""] * len(words), labels)
        assert_allclose(marginals.sum(axis=1), 1.0, atol=1e-4)
        right.extend(labels[i] == g for i, g in zip(marginals.argmax(axis=1), gold))
    assert all(right)


def test_pos_sequences_refuse_untagged_tokens():
    vocab = spacy.blank("en").vocab
    doc = Doc(vocab, words=["Bob", "ran"], tags=["NNP", "VBD"])
    assert list(pos_sequences([doc])) == [(["Bob", "ran"], ["", ""], ["NNP", "VBD"])]
    partial = Doc(vocab, words=["Bob", "ran"], tags=["NNP", ""])
    with pytest.raises(ValueError, match="Doc 0 of train.spacy .* without a POS tag"):
        list(pos_sequences([partial], "train.spacy"))


@pytest.fixture(scope="module")
def tagged(tiny_bert, tmp_path_factory):
    """A tiny trained pipeline reloaded with its tagger as a posattn_tagger, and its gold docs."""
    nlp = train_tiny(make_nlp(tiny_bert), 30)
    path = tmp_path_factory.mktemp("tagged") / "model"
    nlp.to_disk(path)
    plain = spacy.load(path)
    swapped = spacy.load(path, config={"components.tagger.factory": "posattn_tagger"})
    return plain, swapped, [eg.reference for eg in make_examples(nlp)]


def test_posattn_tagger_is_spacys_tagger_until_it_has_a_crf(tagged):
    plain, swapped, _ = tagged
    tagger = swapped.get_pipe("tagger")
    assert isinstance(tagger, PosAttnTagger) and isinstance(tagger, Tagger)
    assert tagger.crf is None and tagger.crf_weight == 0.0
    texts = [text for text, _ in TRAIN_DATA]
    assert [[t.tag_ for t in d] for d in swapped.pipe(texts)] == [[t.tag_ for t in d] for d in plain.pipe(texts)]
    tagger.crf_weight = 0.5
    try:
        with pytest.raises(ValueError, match=r"\[tagger\] has crf_weight = 0.5 but no CRF"):
            swapped("Alice went to China .")
    finally:
        tagger.crf_weight = 0.0
    with pytest.raises(ValueError, match="crf_weight must be between 0 and 1"):
        spacy.blank("en").add_pipe("posattn_tagger", config={"crf_weight": -0.1})


def test_tagger_mix_is_the_weighted_average(tagged):
    _, nlp, gold = tagged
    tagger = nlp.get_pipe("tagger")
    # A CRF that learned the opposite of the gold docs' tags (NN for capitalised words, NNP else).
    swap = {"NN": "NNP", "NNP": "NN"}
    relabelled = [(words, pos, [swap[t] for t in tags]) for words, pos, tags in pos_sequences(gold)]
    crf = FeatureCRF.train(relabelled, max_iterations=30, features="words")
    texts = [text for text, _ in TRAIN_DATA]
    with nlp.select_pipes(enable=["transformer"]):
        docs = list(nlp.pipe(texts))
    labels = list(tagger.labels)
    network = [to_numpy(p) for p in tagger.model.predict(docs)]
    tagger.crf = crf
    try:
        marginals = tagger.crf_marginals(docs)
        assert [m.shape for m in marginals] == [n.shape for n in network]
        for w in (0.0, 0.3, 1.0):
            tagger.crf_weight = w
            got = tagger.predict(docs)
            for g, n, m in zip(got, network, marginals):
                assert (g == ((1 - w) * n + w * m).argmax(axis=1)).all()
        # At weight 1 the tags are the CRF's, which learned the swapped tags of these docs.
        tagger.crf_weight = 1.0
        for doc, (words, _, tags) in zip(nlp.pipe(texts), relabelled):
            assert [t.tag_ for t in doc] == tags
    finally:
        tagger.crf, tagger.crf_weight = None, 0.0
    assert sorted(labels) == ["NN", "NNP"]


def test_train_pipeline_crf_fits_the_pos_weight_on_dev(tagged):
    plain, nlp, gold = tagged
    fit = train_pipeline_crf(
        nlp, gold, gold, weights=(0.0, 1.0), max_iterations=20, pos_weights=(0.0, 0.5, 1.0), pos_iterations=20,
        log=lambda _: None,
    )
    tagger = nlp.get_pipe("tagger")
    try:
        pos = fit["pos"]
        assert tagger.crf is not None and tagger.crf.features == "words"
        assert set(pos["dev_tag_acc"]) == {"0", "0.5", "1"} and pos["sequences"] == len(TRAIN_DATA)
        assert pos["weight"] == tagger.crf_weight
        assert pos["dev_tag_acc"][f"{pos['weight']:g}"] == max(pos["dev_tag_acc"].values())
        # The CRF learned its own training docs: alone it tags them all right.
        assert pos["dev_tag_acc"]["1"] == 100.0
    finally:
        tagger.crf, tagger.crf_weight = None, 0.0
        nlp.get_pipe("posattn_ner").crf, nlp.get_pipe("posattn_ner").crf_weight = None, 0.0
    with pytest.raises(ValueError, match="'tagger' is a Tagger: a POS CRF needs a posattn_tagger"):
        train_pipeline_crf(plain, gold, gold, pos_iterations=5, log=lambda _: None)


def test_pos_crf_bad_weights_are_refused(tagged):
    _, nlp, gold = tagged
    with pytest.raises(ValueError, match=r"POS CRF weights to try must be in \[0, 1\]"):
        train_pipeline_crf(nlp, gold, gold, pos_weights=(1.5,), pos_iterations=5, log=lambda _: None)


def test_tagger_with_a_crf_saves_and_loads(tagged, tmp_path):
    _, nlp, gold = tagged
    tagger = nlp.get_pipe("tagger")
    tagger.crf = FeatureCRF.train(pos_sequences(gold), max_iterations=20, features="words")
    tagger.crf_weight = 0.7
    tagger_crf_bytes = tagger.crf.model_bytes
    texts = [text for text, _ in TRAIN_DATA]
    try:
        expected = [[t.tag_ for t in d] for d in nlp.pipe(texts)]
        nlp.to_disk(tmp_path / "model")
        config = nlp.config
        data = nlp.to_bytes()
    finally:
        tagger.crf, tagger.crf_weight = None, 0.0
    assert (tmp_path / "model" / "tagger" / "crf.crfsuite").exists()
    assert config["components"]["tagger"]["factory"] == "posattn_tagger"
    # The weight is a config setting, as spaCy's component settings are (train-crf writes it there).
    loaded_from_disk = spacy.load(tmp_path / "model", config={"components.tagger.crf_weight": 0.7})
    config["components"]["tagger"]["crf_weight"] = 0.7
    for loaded in (loaded_from_disk, spacy.blank("en").from_config(config).from_bytes(data)):
        again = loaded.get_pipe("tagger")
        assert again.crf.features == "words" and numpy.isclose(again.crf_weight, 0.7)
        assert again.crf.model_bytes == tagger_crf_bytes
        assert [[t.tag_ for t in d] for d in loaded.pipe(texts)] == expected


def test_refit_trains_both_crfs_again_on_train_and_dev_keeping_the_weights(tagged, tmp_path):
    _, nlp, gold = tagged
    train, dev = gold[:-1], gold[-1:]
    tagger, ner = nlp.get_pipe("tagger"), nlp.get_pipe("posattn_ner")
    unannotated_dev = unannotated_copy(dev[0])
    for token, gold_token in zip(unannotated_dev, dev[0]):
        token.tag_ = gold_token.tag_
    gold_tags, gold_ents = [t.tag_ for t in dev[0]], iob_to_biluo(iob_tags(dev[0]))

    def gold_probability(crf, labels, gold_labels):
        """Mean CRF marginal of the dev doc's gold labels."""
        marginals = crf.doc_marginals(unannotated_dev, labels)
        return float(numpy.mean([marginals[i, labels.index(g)] for i, g in enumerate(gold_labels)]))

    def probabilities():
        return gold_probability(ner.crf, list(ner.tags), gold_ents), gold_probability(tagger.crf, list(tagger.labels), gold_tags)

    try:
        fit = train_pipeline_crf(
            nlp, train, dev, weights=(0.5,), max_iterations=30, pos_weights=(0.5,), pos_iterations=30, log=lambda _: None,
        )
        assert fit["sequences"] == len(train)
        before = probabilities()
        refit = refit_pipeline_crfs(nlp, gold, max_iterations=30, pos_iterations=30, log=lambda _: None)
        after = probabilities()
        assert refit["sequences"] == len(gold)
        assert refit["entity_settings"]["features"] == "paper" and refit["pos_settings"]["features"] == "words"
        assert ner.crf_weight == tagger.crf_weight == 0.5
        # The refit CRFs have seen the dev doc: they give its gold labels more probability.
        assert after[0] > before[0] + 0.01 and after[1] > before[1] + 0.01
        # The command does the same from a saved pipeline, and keeps the weights in the config.
        nlp.to_disk(tmp_path / "model")
        config = (tmp_path / "model" / "config.cfg").read_text().replace("crf_weight = 0.0", "crf_weight = 0.5")
        (tmp_path / "model" / "config.cfg").write_text(config)
        DocBin(docs=train).to_disk(tmp_path / "train.spacy")
        DocBin(docs=dev).to_disk(tmp_path / "dev.spacy")
        result = CliRunner().invoke(app, [
            "refit-crf", str(tmp_path / "model"), str(tmp_path / "train.spacy"), str(tmp_path / "dev.spacy"),
            "--output", str(tmp_path / "out"), "--report", str(tmp_path / "refit.json"),
            "--max-iterations", "30", "--pos-iterations", "30",
        ])
        assert result.exit_code == 0, result.output
        out = spacy.load(tmp_path / "out")
        assert out.get_pipe("posattn_ner").crf_weight == out.get_pipe("tagger").crf_weight == 0.5
        assert json.loads((tmp_path / "refit.json").read_text())["sequences"] == len(gold)
        # Same data, same settings: CRFsuite's L-BFGS gives the same models.
        assert out.get_pipe("posattn_ner").crf.model_bytes == ner.crf.model_bytes
        assert out.get_pipe("tagger").crf.model_bytes == tagger.crf.model_bytes
    finally:
        tagger.crf, tagger.crf_weight = None, 0.0
        ner.crf, ner.crf_weight = None, 0.0


def test_refit_without_a_crf_is_a_clear_error(tagged):
    plain, _, gold = tagged
    with pytest.raises(ValueError, match="'posattn_ner' has no CRF to refit: run `python -m spacy_posattn train-crf`"):
        refit_pipeline_crfs(plain, gold, log=lambda _: None)
