"""The paired bootstrap of entity F1 (`significance`)."""
import json

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_posattn.cli import app
from spacy_posattn.evaluate import score_docs
from spacy_posattn.readers import unannotated_copy
from spacy_posattn.significance import entity_counts, f1_from_counts, paired_bootstrap

from .test_crf import TEST_GEO, TEST_PER, TRAIN_GEO, TRAIN_PER, make_docs

LABELS = ["geo", "per"]


def ruler(patterns):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    return nlp


def predict(nlp, gold):
    return list(nlp.pipe([unannotated_copy(doc) for doc in gold]))


@pytest.fixture(scope="module")
def gold():
    vocab = spacy.blank("en").vocab
    return make_docs(vocab, TRAIN_PER, TRAIN_GEO, 30) + make_docs(vocab, TEST_PER, TEST_GEO, 10)


# Finds the one-word training names, calls two of the places people (wrong label) and one
# two-word name partly (wrong span); the better system also finds the test names.
WEAK = [{"label": "per", "pattern": n} for n in ("John", "Mary", "Ahmed", "Olga", "Anna", "Paris", "Lagos")]
WEAK += [{"label": "geo", "pattern": n} for n in ("London", "Berlin", "Tokyo")] + [{"label": "geo", "pattern": "Hong"}]
BETTER = WEAK + [{"label": "per", "pattern": n} for n in ("Laura", "Omar")] + [{"label": "geo", "pattern": n} for n in ("Madrid", "Cairo", "Oslo")]


def test_counts_give_evaluates_f1(gold):
    predicted = predict(ruler(WEAK), gold)
    counts = entity_counts(gold, predicted, LABELS)
    assert counts.shape == (len(gold), 2, 3)
    assert counts[..., 1].sum() > 0 and counts[..., 2].sum() > 0  # false positives and negatives both occur
    assert f1_from_counts(counts.sum(axis=(0, 1))) == pytest.approx(score_docs(gold, predicted)["ents_f"])
    for i, label in enumerate(LABELS):
        expected = score_docs(gold, predicted)["ents_per_type"][label]["f"]
        assert f1_from_counts(counts[:, i].sum(axis=0)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="'per' is not one of geo"):
        entity_counts(gold, predicted, ["geo"])


def test_paired_bootstrap_intervals_and_differences(gold):
    weak = entity_counts(gold, predict(ruler(WEAK), gold), LABELS)
    better = entity_counts(gold, predict(ruler(BETTER), gold), LABELS)
    result = paired_bootstrap({"weak": weak, "same": weak.copy(), "better": better}, LABELS, n_samples=300, seed=1)
    systems = result["systems"]
    assert result["reference"] == "weak" and "vs_reference" not in systems["weak"]
    for entry in systems.values():
        assert entry["f1"]["low"] <= entry["f1"]["value"] <= entry["f1"]["high"]
        assert entry["f1"]["low"] < entry["f1"]["high"]
    # The same predictions: the paired difference is 0 in every sample.
    assert systems["same"]["vs_reference"] == {"value": 0.0, "low": 0.0, "high": 0.0, "not_better": 1.0}
    # Finding more names and nothing wrong more: better in every sample.
    diff = systems["better"]["vs_reference"]
    assert diff["value"] > 0 and diff["low"] > 0 and diff["not_better"] == 0.0
    assert systems["better"]["per_type"]["per"]["support"] == int(weak[:, 1, 0].sum() + weak[:, 1, 2].sum())
    assert systems["better"]["per_type"]["geo"]["support"] == int(weak[:, 0, 0].sum() + weak[:, 0, 2].sum())
    again = paired_bootstrap({"weak": weak, "same": weak, "better": better}, LABELS, n_samples=300, seed=1)
    assert again["systems"]["better"] == systems["better"]


def test_significance_cli(gold, tmp_path):
    DocBin(docs=gold).to_disk(tmp_path / "gold.spacy")
    ruler(WEAK).to_disk(tmp_path / "weak")
    ruler(BETTER).to_disk(tmp_path / "better")
    out = tmp_path / "sig.md"
    args = ["significance", f"weak={tmp_path / 'weak'},better={tmp_path / 'better'}", str(tmp_path / "gold.spacy"),
            "--output", str(out), "--samples", "200"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["docs"] == len(gold) and data["samples"] == 200
    expected = 100 * score_docs(gold, predict(ruler(BETTER), gold))["ents_f"]
    assert data["systems"]["better"]["f1"]["value"] == pytest.approx(expected)
    report = out.read_text()
    assert "| better |" in report and "Δ vs weak" in report and "geo (" in report
    for bad, message in (
        (f"a={tmp_path / 'weak'},a={tmp_path / 'better'}", "must differ"),
        (f"a={tmp_path / 'nothing'}", "not a trained pipeline folder"),
    ):
        result = CliRunner().invoke(app, ["significance", bad, str(tmp_path / "gold.spacy"), "--output", str(out)])
        assert result.exit_code == 1 and message in result.output, result.output
