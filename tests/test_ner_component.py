"""The posattn_ner component with a tiny BERT and spaCy's tagger on the same transformer."""
import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.training import Example
from spacy.util import load_model_from_path, make_tempdir
from thinc.api import fix_random_seed

from spacy_posattn.architectures import BUNDLED_ENCODER, resolve_encoder

from .conftest import TRAIN_DATA, make_examples, make_nlp


def ents_of(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


@pytest.fixture(scope="module")
def trained(tiny_bert):
    """Overfit three sentences (spaCy's test_overfitting_IO recipe)."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    history = []
    for _ in range(80):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses)
    return nlp, history


def test_overfitting_ents_and_tags(trained):
    nlp, history = trained
    assert history[-1]["posattn_ner"] < history[0]["posattn_ner"] / 20
    assert history[-1]["tagger"] < history[0]["tagger"] / 20
    for text, ents in TRAIN_DATA:
        doc = nlp(text)
        assert ents_of(doc) == ents
        assert [t.tag_ for t in doc] == ["NNP" if t.text[0].isupper() else "NN" for t in doc]
        scores = doc.spans["ents"].attrs["scores"]
        assert len(scores) == len(doc.ents) and all(0.5 < s <= 1.0 for s in scores)
    assert nlp.get_pipe("posattn_ner").labels == ("geo", "org", "per", "tim")


def test_save_load_identical(trained):
    nlp, _ = trained
    texts = [text for text, _ in TRAIN_DATA] + ["Alice and Bob visited China ."]
    before = [nlp(text) for text in texts]
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        nlp2 = load_model_from_path(tmp)
    for text, doc in zip(texts, before):
        doc2 = nlp2(text)
        assert ents_of(doc2) == ents_of(doc)
        assert_allclose(doc2.spans["ents"].attrs["scores"], doc.spans["ents"].attrs["scores"], rtol=1e-5)
        assert [t.tag_ for t in doc2] == [t.tag_ for t in doc]


def test_pipe_equals_one_by_one(trained):
    nlp, _ = trained
    long_text = " ".join(["Alice went to China ."] * 150)  # > 512 word pieces, > window
    texts = [text for text, _ in TRAIN_DATA] + ["", "WHO", long_text]
    singles = [nlp(text) for text in texts]
    for doc, single in zip(nlp.pipe(texts, batch_size=3), singles):
        assert ents_of(doc) == ents_of(single)
        assert_allclose(doc.spans["ents"].attrs["scores"], single.spans["ents"].attrs["scores"], rtol=1e-4)
    long_doc = singles[-1]
    assert len(long_doc) == 750 and len(long_doc.ents) > 100


def test_preset_entities_are_kept(trained):
    nlp, _ = trained
    doc = nlp.make_doc("Alice will go to China this Saturday .")
    doc.set_ents([doc.char_span(0, 5, label="org")])
    for name, proc in nlp.pipeline:
        doc = proc(doc)
    assert ents_of(doc)[0] == (0, 5, "org")
    assert (17, 22, "geo") in ents_of(doc)
    assert [(e.start, e.end) for e in doc.spans["ents"]] == [(e.start, e.end) for e in doc.ents[1:]]


def test_loss_only_on_annotated_tokens(tiny_bert):
    nlp = make_nlp(tiny_bert, tagger=False)
    examples = make_examples(nlp, tags=False)
    nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("posattn_ner")
    doc = nlp.make_doc("Alice will go to China .")
    eg = Example.from_dict(doc, {"entities": ["U-per", "-", "-", "O", "U-geo", "-"]})
    scores = ner.model.predict([eg.predicted])
    loss, d_scores = ner.get_loss([eg], scores)
    rows_with_grad = [i for i, row in enumerate(d_scores[0]) if numpy.abs(row).sum() > 0]
    assert rows_with_grad == [0, 3, 4]
    expected = -sum(numpy.log(scores[0][i, ner.tags.index(t)]) for i, t in [(0, "U-per"), (3, "O"), (4, "U-geo")])
    assert loss == pytest.approx(expected, rel=1e-4)


def test_unseen_label_is_a_clear_error(tiny_bert):
    nlp = make_nlp(tiny_bert, tagger=False)
    nlp.initialize(lambda: make_examples(nlp, tags=False))
    eg = Example.from_dict(nlp.make_doc("Mars is red ."), {"entities": [(0, 4, "nat")]})
    with pytest.raises(ValueError, match="'nat'.*not seen at initialization"):
        nlp.update([eg])
    with pytest.raises(ValueError, match="after it was initialized"):
        nlp.get_pipe("posattn_ner").add_label("nat")


def test_initialize_without_entities_is_a_clear_error(tiny_bert):
    nlp = make_nlp(tiny_bert, tagger=False)
    eg = Example.from_dict(nlp.make_doc("no entities here"), {"entities": []})
    with pytest.raises(ValueError, match="no entity labels"):
        nlp.initialize(lambda: [eg])


def test_init_labels_are_used(tiny_bert):
    nlp = make_nlp(tiny_bert, tagger=False)
    nlp.config["initialize"]["components"]["posattn_ner"] = {"labels": ["per", "art"]}
    nlp.initialize(lambda: make_examples(nlp, data=TRAIN_DATA[:1], tags=False))
    assert nlp.get_pipe("posattn_ner").labels == ("art", "per")
    assert nlp.get_pipe("posattn_ner").label_data == ("art", "per")


def test_bundled_minilm_encoder_loads():
    """The real bundled MiniLM-L6 BERT is found offline and runs in the pipeline."""
    path = resolve_encoder(BUNDLED_ENCODER)
    assert path.endswith("model")
    nlp = make_nlp(BUNDLED_ENCODER, tagger=False)
    nlp.initialize(lambda: make_examples(nlp, tags=False))
    doc = nlp("Alice will go to China this Saturday! Her father works in WHO.")
    assert doc._.trf_data.model_output.last_hidden_state.shape[-1] == 384
    assert all(e.label_ in {"geo", "org", "per", "tim"} for e in doc.ents)
    assert resolve_encoder("bert-base-uncased") == "bert-base-uncased"


def test_demo_pairs_scores_with_predicted_spans(trained, tmp_path, monkeypatch):
    """Regression: the demo printed doc.ents zipped with scores of doc.spans only."""
    from typer.testing import CliRunner

    import spacy_posattn.demo as demo
    from spacy_posattn.cli import app

    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    monkeypatch.setattr(demo, "DEMO_TEXTS", [TRAIN_DATA[0][0]])
    monkeypatch.setattr(demo.run_demo, "__defaults__", ([TRAIN_DATA[0][0]],))
    result = CliRunner().invoke(app, ["demo", str(tmp_path / "model"), "--output", str(tmp_path / "d.html")])
    assert result.exit_code == 0, result.output
    assert "per  'Alice'  confidence" in result.output and "geo  'China'  confidence" in result.output
    assert "Alice" in (tmp_path / "d.html").read_text()
