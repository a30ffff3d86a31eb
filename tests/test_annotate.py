"""`annotate` on Ray Data (issue 11): local Ray with 2 CPUs, a tiny pipeline."""
import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_posattn.annotate import iter_output, split_records
from spacy_posattn.cli import app

from .conftest import make_nlp, train_tiny

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")

TEXTS = [
    "Alice will go to China this Saturday .",
    "Her father works in WHO .",
    "Bob met Carol Smith in Paris on Monday .",
    "Nothing to see here .",
    "China and Paris .",
]


@pytest.fixture(scope="module")
def local_ray():
    """The first annotate call starts a local Ray (workers + 1 logical CPUs on
    this machine's cores); later ones reuse it."""
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pipeline(tiny_bert, tmp_path_factory):
    nlp = train_tiny(make_nlp(tiny_bert), 20, learn_rate=0.01)
    path = tmp_path_factory.mktemp("annotate") / "pipeline"
    nlp.to_disk(path)
    return path


def expected(pipeline, texts):
    nlp = spacy.load(pipeline)
    out = []
    for doc in nlp.pipe(texts):
        scores = doc.spans["ents"].attrs["scores"]
        out.append([(e.start_char, e.end_char, e.label_, e.text, pytest.approx(s, abs=1e-5))
                    for e, s in zip(doc.spans["ents"], scores)])
    return out


def entities(row):
    return [(e["start_char"], e["end_char"], e["label"], e["text"], e["confidence"]) for e in row["entities"]]


def run_annotate(*args):
    result = CliRunner().invoke(app, ["annotate", *map(str, args)])
    return result


def test_jsonl_parquet_and_text_inputs_match_nlp_pipe(local_ray, pipeline, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text("".join(json.dumps({"text": t, "doc": i}) + "\n" for i, t in enumerate(TEXTS)))
    pq.write_table(pa.table({"text": TEXTS[::-1]}), inputs / "b.parquet")
    (inputs / "c.txt").write_text("\n".join(TEXTS[1:3]) + "\n")
    for fmt in ("jsonl", "parquet"):
        out = tmp_path / f"out_{fmt}"
        result = run_annotate(pipeline, inputs, out, "--workers", 2, "--format", fmt, "--batch-size", 2, "--with-tokens")
        assert result.exit_code == 0, result.output
        for name, texts in (("a.jsonl", TEXTS), ("b.parquet", TEXTS[::-1]), ("c.txt", TEXTS[1:3])):
            rows = list(iter_output(out / f"{name}.{fmt}"))
            assert [row["line"] for row in rows] == list(range(1, len(texts) + 1))  # input order
            assert [row["id"] for row in rows] == [f"{name}:{i}" for i in range(1, len(texts) + 1)]
            assert [entities(row) for row in rows] == expected(pipeline, texts)
            assert [t["text"] for t in rows[0]["tokens"]] == texts[0].split()
            assert all(t["tag"] for t in rows[0]["tokens"])
        summary = json.loads((out / "summary.json").read_text())
        assert summary["read"] == summary["annotated"] == 2 * len(TEXTS) + 2 and summary["rejected"] == 0
        assert summary["words"] == sum(len(t.split()) for t in TEXTS * 2 + TEXTS[1:3])


def test_bad_records_go_to_rejects_with_reasons(local_ray, pipeline, tmp_path):
    lines = [
        json.dumps({"text": TEXTS[0], "id": "first"}).encode(),
        b'{"text": "unclosed',
        json.dumps({"body": "no text key"}).encode(),
        json.dumps({"text": None}).encode(),
        json.dumps({"text": 42}).encode(),
        json.dumps({"text": "   "}).encode(),
        b'{"text": "caf\xe9 latin-1"}',
        b"[1, 2]",
        json.dumps({"text": TEXTS[1], "id": 7}).encode(),
    ]
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = run_annotate(pipeline, source, tmp_path / "out", "--workers", 1, "--id-key", "id")
    assert result.exit_code == 0, result.output
    rows = list(iter_output(tmp_path / "out" / "bad.jsonl.jsonl"))
    assert [(r["id"], r["line"]) for r in rows] == [("first", 1), ("7", 9)]
    rejects = [json.loads(line) for line in (tmp_path / "out" / "bad.jsonl.rejects.jsonl").read_text().splitlines()]
    reasons = {r["line"]: r["reason"] for r in rejects}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert "malformed JSON" in reasons[2] and "no key 'text'" in reasons[3] and "null" in reasons[4]
    assert "not a string (int)" in reasons[5] and reasons[6] == "empty text" and "not UTF-8" in reasons[7]
    assert "not an object" in reasons[8]
    assert all(r["source"] == "bad.jsonl" for r in rejects)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["read"], summary["annotated"], summary["rejected"]) == (9, 2, 7)
    assert "rejected" in result.output and "9 records read" in result.output


def test_rerun_skips_complete_files_and_redoes_changed_ones(local_ray, pipeline, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        (inputs / f"{name}.txt").write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "out"
    assert run_annotate(pipeline, inputs, out, "--workers", 1).exit_code == 0
    first = (out / "a.txt.jsonl").read_text()
    (inputs / "b.txt").write_text(TEXTS[0] + "\n")  # changed since: redone
    result = run_annotate(pipeline, f"{inputs}/*.txt", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "a.txt: complete in an earlier run, skipped" in result.output
    assert (out / "a.txt.jsonl").read_text() == first
    assert len((out / "b.txt.jsonl").read_text().splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_files"] == ["a.txt"] and summary["read"] == 1


@pytest.mark.parametrize("case", ["model", "input", "format"])
def test_bad_arguments_fail_in_one_line(pipeline, tmp_path, case):
    source = tmp_path / "in.txt"
    source.write_text("Alice .\n")
    args = {
        "model": (tmp_path / "no_model", source, tmp_path / "out"),
        "input": (pipeline, tmp_path / "missing.jsonl", tmp_path / "out"),
        "format": (pipeline, source, tmp_path / "out", "--format", "xml"),
    }[case]
    result = run_annotate(*args)
    assert result.exit_code == 1 and result.exception is not None and "Traceback" not in result.output
    message = " ".join(result.output.split())  # one message, wrapped to the terminal's width
    assert message.count("✘") == 1
    assert {"model": "No pipeline at", "input": "No input at", "format": "--format"}[case] in message


def test_without_ray_it_says_what_to_install(pipeline, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    source = tmp_path / "in.txt"
    source.write_text("Alice .\n")
    result = run_annotate(pipeline, source, tmp_path / "out")
    assert result.exit_code == 1 and "pip install 'spacy-posattn[ray]'" in result.output


def test_split_records_numbers_parquet_rows_and_rejects_a_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["x", "y"]}), tmp_path / "p.parquet")
    records = split_records({"path": str(tmp_path / "p.parquet"), "bytes": (tmp_path / "p.parquet").read_bytes()})
    assert [(r["line"], r["text"]) for r in records] == [(1, ""), (2, "")]
    assert all("no column 'text'" in r["reject"] for r in records)
