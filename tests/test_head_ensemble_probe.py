"""scripts/head_ensemble_probe.py: stage-1 heads of two seeds on one shared
encoder score as each pipeline does alone, and averaging a pipeline with
itself changes nothing."""
import importlib.util
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_posattn import feature_cache
from spacy_posattn.evaluate import score_docs
from spacy_posattn.layers import encoder_shim
from spacy_posattn.readers import unannotated_copy

from .test_compare import tiny_cached_config, tiny_corpus  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("head_ensemble_probe", ROOT / "scripts" / "head_ensemble_probe.py")
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


def table_rows(path: Path):
    rows = [r for r in path.read_text(encoding="utf8").splitlines() if r.startswith("| ") and "---" not in r][1:]
    return {r.split(" | ")[0][2:]: " | ".join(r.split(" | ")[1:3]) for r in rows}


@pytest.fixture(scope="module")
def two_seeds(tiny_bert, tiny_corpus, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("seeds")
    config = tiny_cached_config(root, tiny_corpus, tiny_bert)
    for seed in (0, 1):
        feature_cache.train_cached(config, root / f"seed{seed}", epochs=1, cache_dir=root / "cache",
                                   overrides={"system.seed": seed})
    return [str(root / f"seed{seed}" / "model-best") for seed in (0, 1)]


def test_each_pipeline_scores_as_alone_and_self_ensemble_is_unchanged(two_seeds, tiny_corpus, tmp_path):  # noqa: F811
    data = str(tiny_corpus / "test.spacy")
    probe.main(str(tmp_path / "two.md"), data, *two_seeds)
    rows = table_rows(tmp_path / "two.md")
    assert set(rows) == {*two_seeds, "ensemble (mean probabilities)"}
    for model in two_seeds:
        nlp = spacy.load(model)
        gold = list(DocBin().from_disk(data).get_docs(nlp.vocab))
        scores = score_docs(gold, list(nlp.pipe(unannotated_copy(doc) for doc in gold)))
        expected = (f"{scores['ents_f'] * 100:.2f} ({scores['ents_p'] * 100:.2f} / {scores['ents_r'] * 100:.2f}) | "
                    f"{scores['tag_acc'] * 100:.2f}")
        assert rows[model] == expected, model
    probe.main(str(tmp_path / "self.md"), data, two_seeds[0], two_seeds[0])
    rows = table_rows(tmp_path / "self.md")
    assert set(rows) == {f"{two_seeds[0]} (#1)", f"{two_seeds[0]} (#2)", "ensemble (mean probabilities)"}
    assert rows["ensemble (mean probabilities)"] == rows[f"{two_seeds[0]} (#1)"]


def test_pipelines_with_different_encoders_are_refused(two_seeds, tiny_corpus, tmp_path, monkeypatch):  # noqa: F811
    other = spacy.load(two_seeds[1])
    next(encoder_shim(other.get_pipe("transformer").model)._model.parameters()).data.add_(1.0)
    other.to_disk(tmp_path / "changed")
    with pytest.raises(SystemExit, match="transformers differ"):
        probe.main(str(tmp_path / "out.md"), str(tiny_corpus / "test.spacy"), two_seeds[0], str(tmp_path / "changed"))
