"""The head benchmark runs and reports every length (timings themselves are not asserted)."""
from spacy_posattn.bench import bench


def test_bench_reports_each_length():
    rows = bench([16, 200], tokens_per_batch=400, repeats=1, with_encoder=False)
    assert [r["doc_length"] for r in rows] == [16, 200]
    assert [r["tokens"] for r in rows] == [400, 400]
    assert all(r["posattn_ms_per_1k"] > 0 and r["linear_ms_per_1k"] > 0 for r in rows)
