"""The profile and benchmark commands (issue 10), on a tiny pipeline."""
import json

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_posattn.benchmark import describe_options, load_units, parse_system, run_benchmark
from spacy_posattn.cli import app
from spacy_posattn.profiling import load_texts, profile_pipeline

from .conftest import make_examples, make_nlp
from .test_compare import tiny_corpus  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_bert, tmp_path_factory):
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    path = tmp_path_factory.mktemp("pipeline") / "tiny"
    nlp.to_disk(path)
    return path


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("a=x", ("a", "x", {})),
        ("a=dir/m@int8:attention", ("a", "dir/m", {"int8": "attention"})),
        ("a=m@group_rows:16@int8:all", ("a", "m", {"group_rows": 16, "int8": "all"})),
        ("a=m@bf16:true@group_rows:16", ("a", "m", {"bf16": True, "group_rows": 16})),
        ("a=m@crf_weight:0", ("a", "m", {"crf_weight": 0.0})),
        ("a=m@crf_weight:0@pos_crf_weight:0.5", ("a", "m", {"crf_weight": 0.0, "pos_crf_weight": 0.5})),
    ],
)
def test_parse_system(spec, expected):
    assert parse_system(spec) == expected
    assert describe_options(expected[2]) in (
        "", " int8 attention", " group_rows 16, int8 all", " bf16, group_rows 16", " crf_weight 0.0",
        " crf_weight 0.0, pos_crf_weight 0.5",
    )


@pytest.mark.parametrize("spec", ["nameonly", "=x", "a=", "a=x@fp16:all", "a=x@int8:", "a=x@group_rows:many", "a=x@bf16:yes", "a=x@crf_weight:off", "a=x@pos_crf_weight:"])
def test_parse_system_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="NAME=|option"):
        parse_system(spec)


def test_units_are_the_same_words_as_docs_and_as_sentences(tiny_corpus):  # noqa: F811
    units = load_units(tiny_corpus / "test.spacy")
    docs = list(DocBin().from_disk(tiny_corpus / "test.spacy").get_docs(spacy.blank("en").vocab))
    assert len(units["docs"]) == len(docs)
    assert len(units["sentences"]) == sum(len(list(doc.sents)) for doc in docs) > len(docs)
    assert sum(len(t.split()) for t in units["sentences"]) == sum(len(t.split()) for t in units["docs"])


def test_benchmark_times_every_system_on_every_unit(tiny_pipeline, tiny_corpus):  # noqa: F811

    systems = {"fp32": spacy.load(tiny_pipeline), "int8": spacy.load(tiny_pipeline, config={"components.transformer.model.int8": "all"})}
    results = run_benchmark(systems, load_units(tiny_corpus / "test.spacy"), rounds=2, batch_size=4)
    for name in systems:
        for unit in ("sentences", "docs"):
            r = results[name][unit]
            assert len(r["rounds"]) == 2 and r["words_per_second"] > 0
            assert r["words"] == results["fp32"][unit]["words"] > 0


def test_benchmark_command_writes_table_with_ratios(tiny_pipeline, tiny_corpus, tmp_path):  # noqa: F811
    output = tmp_path / "bench.md"
    result = CliRunner().invoke(app, [
        "benchmark", f"a={tiny_pipeline},b={tiny_pipeline}@int8:attention", str(tiny_corpus / "test.spacy"),
        "--anchor", "a", "--rounds", "1", "--output", str(output),
    ])
    assert result.exit_code == 0, result.output
    table = output.read_text()
    assert "| a |" in table and "int8 attention" in table and "× a" in table
    data = json.loads(output.with_suffix(".json").read_text())
    assert set(data) == {"a", "b"} and set(data["a"]) == {"sentences", "docs"}


def test_benchmark_command_names_a_bad_anchor(tiny_pipeline, tiny_corpus, tmp_path):  # noqa: F811
    result = CliRunner().invoke(app, [
        "benchmark", f"a={tiny_pipeline}", str(tiny_corpus / "test.spacy"), "--anchor", "zzz",
        "--output", str(tmp_path / "b.md"),
    ])
    assert result.exit_code == 1 and "zzz" in result.output


def test_profile_reports_every_component(tiny_pipeline, tiny_corpus):  # noqa: F811

    nlp = spacy.load(tiny_pipeline)
    texts = load_texts(tiny_corpus / "test.spacy", sentences=True)
    result = profile_pipeline(nlp, texts, batch_size=4, top=10)
    assert list(result["components"]) == ["tokenizer", *nlp.pipe_names]
    assert result["words"] == sum(len(nlp.make_doc(t)) for t in texts)
    assert "pipe" in result["by_cumtime"] and "ncalls" in result["by_tottime"]
