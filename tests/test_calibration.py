"""Temperature for the entity confidences (issue 9 §5)."""
import json

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from spacy_posattn.calibration import fit_temperature
from spacy_posattn.cli import app
from spacy_posattn.evaluate import expected_calibration_error
from spacy_posattn.pipeline.decoding import span_confidences

from .conftest import TRAIN_DATA, make_examples, make_nlp, train_tiny


class Span:
    def __init__(self, start, end):
        self.start, self.end = start, end


def test_span_confidences_temper_the_tag_distribution():
    probs = numpy.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25]], dtype="f")
    path = numpy.array([0, 1, 0])
    spans = [Span(0, 2), Span(2, 3)]
    log_probs = numpy.log(probs)
    assert_allclose(span_confidences(log_probs, path, spans), [0.75, 0.5], rtol=1e-5)
    hot, cold = span_confidences(log_probs, path, spans, 4.0), span_confidences(log_probs, path, spans, 0.5)
    assert all(1 / 3 < h < c < 1 for h, c in zip(hot, cold))
    tempered = numpy.exp(log_probs[2] / 0.5) / numpy.exp(log_probs[2] / 0.5).sum()
    assert_allclose(cold[1], tempered[0], rtol=1e-5)
    assert span_confidences(log_probs, path, []) == []


def test_expected_calibration_error():
    assert expected_calibration_error(numpy.array([0.95, 0.95]), numpy.array([1, 1])) == pytest.approx(0.05)
    assert expected_calibration_error(numpy.array([0.25, 0.75]), numpy.array([0, 1])) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def overfit_pipeline(tiny_bert, tmp_path_factory):
    nlp = train_tiny(make_nlp(tiny_bert, tagger=False), 30, tags=False, learn_rate=0.01)
    path = tmp_path_factory.mktemp("calib") / "pipeline"
    nlp.to_disk(path)
    return path


def gold_docs(nlp):
    return [eg.reference for eg in make_examples(nlp, TRAIN_DATA, tags=False)]


def test_fit_temperature_lowers_the_log_loss(overfit_pipeline):
    nlp = spacy.load(overfit_pipeline)
    fit = fit_temperature(nlp, gold_docs(nlp), grid=(0.5, 1.0, 2.0, 4.0))
    assert fit["temperature"] in (0.5, 1.0, 2.0, 4.0)
    assert fit["after"]["log_loss"] <= fit["before"]["log_loss"]
    assert fit["before"]["temperature"] == 1.0 and fit["entities"] > 0
    assert fit["after"]["log_loss"] == min(fit["grid"].values())


def test_calibrate_command_writes_a_copy_with_the_same_entities(overfit_pipeline, tmp_path):
    nlp = spacy.load(overfit_pipeline)
    from spacy.tokens import DocBin

    DocBin(docs=gold_docs(nlp)).to_disk(tmp_path / "dev.spacy")
    result = CliRunner().invoke(app, [
        "calibrate", str(overfit_pipeline), str(tmp_path / "dev.spacy"), str(tmp_path / "out"),
        "--report", str(tmp_path / "fit.json"),
    ])
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "fit.json").read_text())
    calibrated = spacy.load(tmp_path / "out")
    ner = calibrated.get_pipe("posattn_ner")
    assert ner.confidence_temperature == fit["temperature"]
    assert calibrated.config["components"]["posattn_ner"]["confidence_temperature"] == fit["temperature"]
    for text, _ in TRAIN_DATA:
        a, b = nlp(text), calibrated(text)
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        if fit["temperature"] != 1.0 and len(a.ents):
            assert a.spans["ents"].attrs["scores"] != b.spans["ents"].attrs["scores"]


def test_bad_temperature_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="confidence_temperature"):
        nlp = make_nlp(tiny_bert, ner=False)
        nlp.add_pipe("posattn_ner", config={"confidence_temperature": 0.0})
