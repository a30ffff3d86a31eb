"""Evaluation metrics: the paper's token-level flat F1 and the IOB view of docs."""
import pytest
from spacy.tokens import Doc
from spacy.vocab import Vocab

from spacy_posattn.evaluate import flat_f1, iob_tags


def test_flat_f1_by_hand():
    gold = [["B-per", "I-per", "O", "B-geo"], ["B-geo", "O"]]
    pred = [["B-per", "O", "O", "B-geo"], ["B-org", "O"]]
    # B-per: P 1, R 1 (support 1); I-per: P 0 (support 1); B-geo: P 1, R 1/2 -> F1 2/3 (support 2);
    # B-org: support 0. Weighted by gold support over tags other than O: (1 + 0 + 2 * 2/3) / 4.
    assert flat_f1(gold, pred) == pytest.approx((1 + 0 + 2 * 2 / 3) / 4)
    assert flat_f1(gold, gold) == 1.0
    assert flat_f1([["O"]], [["O"]]) == 0.0


def test_iob_tags():
    doc = Doc(Vocab(), words=["Bob", "Smith", "in", "Paris"], ents=["B-per", "I-per", "O", "B-geo"])
    assert iob_tags(doc) == ["B-per", "I-per", "O", "B-geo"]


def test_evaluate_without_any_entities():
    """Regression: spaCy's scorer gives ents_f None with no entities at all; no crash."""
    import spacy

    from spacy_posattn.evaluate import evaluate, markdown_report

    nlp = spacy.blank("en")
    gold = [Doc(nlp.vocab, words=["no", "entities"], ents=["O", "O"])]
    scores = evaluate(nlp, gold)
    assert scores["ents_f"] == 0.0 and scores["spacy_ents_f"] is None
    assert "entity P / R / F1" in markdown_report(scores, "empty")


def test_raw_text_scores_align_the_pipelines_own_tokens():
    """The pipeline reads the text with its own tokenizer ("20-year-old" becomes
    several tokens); entities are matched to the gold ones through the alignment."""
    import spacy

    from spacy_posattn.evaluate import evaluate

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [{"label": "per", "pattern": "Bob"}, {"label": "geo", "pattern": "Paris"}, {"label": "geo", "pattern": "year"}]
    )
    gold = [Doc(nlp.vocab, words=["A", "20-year-old", "Bob", "visited", "Paris", "."],
                ents=["O", "O", "B-per", "O", "B-geo", "O"])]
    scores = evaluate(nlp, gold)
    assert scores["ents_f"] == 1.0  # gold tokens: "20-year-old" is one token, "year" never matches
    # Raw text: "year" is a token of its own and a false positive that covers part of a gold token.
    assert scores["raw_ents_r"] == 1.0 and scores["raw_ents_p"] == pytest.approx(2 / 3)
    assert scores["raw_token_mismatch"] == pytest.approx(1 / 6)


def test_confidence_calibration_by_hand(tmp_path):
    from spacy.tokens import SpanGroup

    from spacy_posattn.evaluate import confidence_calibration, markdown_report, write_reports

    vocab = Vocab()
    gold = Doc(vocab, words=["Bob", "met", "Ann", "in", "Rome", "."], ents=["B-per", "O", "B-per", "O", "B-geo", "O"])
    pred = Doc(vocab, words=["Bob", "met", "Ann", "in", "Rome", "."], ents=["B-per", "O", "B-geo", "O", "B-geo", "O"])
    pred.spans["ents"] = SpanGroup(pred, name="ents", spans=list(pred.ents), attrs={"scores": [0.95, 0.65, 0.55]})
    cal = confidence_calibration([gold], [pred])
    # Bins: 0.9-1.0 holds Bob (correct, 0.95); 0.6-0.7 Ann as geo (wrong, 0.65); 0.5-0.6 Rome (correct, 0.55).
    assert cal["ece"] == pytest.approx((0.05 + 0.65 + 0.45) / 3)
    by_t = {t["threshold"]: t for t in cal["thresholds"]}
    assert by_t[0.5]["precision"] == pytest.approx(2 / 3) and by_t[0.5]["recall"] == pytest.approx(2 / 3)
    assert by_t[0.9]["kept"] == 1 and by_t[0.9]["precision"] == 1.0 and by_t[0.9]["recall"] == pytest.approx(1 / 3)
    assert confidence_calibration([gold], [gold]) is None  # no confidences
    scores = {"ents_p": 0.5, "ents_r": 0.5, "ents_f": 0.5, "token_flat_f1": 0.5, "tag_acc": None,
              "words_per_second": 1.0, "words": 6, "seconds": 6.0, "ents_per_type": {}, "calibration": cal}
    assert "expected calibration error **0.383**" in markdown_report(scores, "t")
    write_reports(scores, tmp_path / "s.json", "t")
    assert (tmp_path / "s.reliability.png").read_bytes()[:4] == b"\x89PNG"
