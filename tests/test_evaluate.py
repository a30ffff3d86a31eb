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
