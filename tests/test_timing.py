"""Training time from measured records (`timed`), and the report rows built from them."""
import json
import sys

import pytest
from typer.testing import CliRunner

from spacy_posattn.cli import app
from spacy_posattn.compare.report import budget_text, efficiency_claim, load_rows
from spacy_posattn.timing import read_train_time, run_timed


def test_run_timed_records_wall_time_and_skips_failures(tmp_path):
    record = tmp_path / "stage" / "train_time.json"
    code = run_timed([sys.executable, "-c", "import time; time.sleep(0.3)"], record, label="stage 1: 2 epochs")
    data = json.loads(record.read_text())
    assert code == 0 and data["seconds"] >= 0.3 and data["label"] == "stage 1: 2 epochs"
    assert "time.sleep(0.3)" in data["command"] and data["machine"].startswith(("CPU", "GPU"))
    failed = tmp_path / "failed.json"
    assert run_timed([sys.executable, "-c", "import sys; sys.exit(3)"], failed) == 3
    assert not failed.exists()


def test_run_timed_runs_python_as_this_interpreter(tmp_path, monkeypatch):
    out = tmp_path / "exe.txt"
    monkeypatch.setenv("PATH", str(tmp_path))  # no other python to find
    assert run_timed(["python", "-c", f"import sys; open(r'{out}', 'w').write(sys.executable)"], tmp_path / "t.json") == 0
    assert out.read_text() == sys.executable


def test_timed_cli_passes_the_command_options_through(tmp_path):
    record, out = tmp_path / "t.json", tmp_path / "out.txt"
    child = f"import sys; open(r'{out}', 'w').write(' '.join(sys.argv[1:]))"
    result = CliRunner().invoke(app, ["timed", str(record), "--label", "x", "--", sys.executable, "-c", child, "--gpu-id", "-1"])
    assert result.exit_code == 0, result.output
    assert out.read_text() == "--gpu-id -1" and json.loads(record.read_text())["label"] == "x"
    failing = CliRunner().invoke(app, ["timed", str(tmp_path / "f.json"), "--", sys.executable, "-c", "raise SystemExit(2)"])
    assert failing.exit_code == 2 and not (tmp_path / "f.json").exists()


def test_read_train_time_sums_stages_and_names_a_missing_record(tmp_path):
    paths = []
    for name, seconds in (("a", 10.5), ("b", 20.0)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps({"seconds": seconds, "label": name, "command": "c", "machine": "m"}))
    timing = read_train_time(paths)
    assert timing["train_seconds"] == 30.5 and [t["label"] for t in timing["train_time"]] == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_train_time([paths[0], tmp_path / "missing.json"])


def test_reference_rows_need_measured_time(tmp_path):
    """Scores without measured training time make no row (with a warning)."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    scores = {"ents_f": 0.8, "ents_p": 0.8, "ents_r": 0.8, "machine": "m"}
    reference = tmp_path / "default.json"
    reference.write_text(json.dumps(scores))
    with pytest.warns(UserWarning, match="--train-time"):
        assert load_rows(metrics, {"default": reference}) == []
    with pytest.raises(ValueError, match="Unknown reference 'best'"):
        load_rows(metrics, {"best": reference})
    timing = {"train_seconds": 30.0, "train_time": [{"seconds": 10.0, "label": "stage 1: 6 epochs"}, {"seconds": 20.0, "label": "stage 2: 500 steps"}]}
    reference.write_text(json.dumps({**scores, **timing}))
    rows = load_rows(metrics, {"default": reference, "fast": tmp_path / "not_trained_yet.json"})
    assert [r["system"] for r in rows] == ["posattn_default_full"] and rows[0]["train_seconds"] == 30.0
    assert budget_text(rows[0]) == "full: stage 1: 6 epochs, stage 2: 500 steps"


def test_efficiency_claim_prefers_stage1_at_full_budget():
    rows = [
        {"system": "posattn_frozen", "ents_f": 0.81, "train_seconds": 700.0, "budget": "quick", "machine": "m"},
        {"system": "posattn_default_full", "ents_f": 0.84, "train_seconds": 4000.0, "budget": "full", "machine": "m"},
        {"system": "posattn_stage1_full", "ents_f": 0.838, "train_seconds": 3000.0, "budget": "full", "machine": "m"},
    ]
    claim = efficiency_claim(rows)
    assert claim["frozen"] == "posattn_stage1_full" and claim["time_ratio"] == pytest.approx(0.75)
    assert claim["f1_gap_points"] == pytest.approx(0.2) and claim["holds"] is False
    # A stage-1 row from another machine than every full fine-tune: the frozen row that has one is used.
    rows[2]["machine"] = "GPU: H200"
    assert efficiency_claim(rows)["frozen"] == "posattn_frozen"


def test_efficiency_claim_sets_the_fast_path_against_the_default():
    """Both sides with the same feature CRFs: the fast path, not stage 1's network alone."""
    rows = [
        {"system": "posattn_default_full", "ents_f": 0.852, "train_seconds": 2900.0, "budget": "full", "machine": "m"},
        {"system": "posattn_stage1_full", "ents_f": 0.840, "train_seconds": 1200.0, "budget": "full", "machine": "m"},
        {"system": "posattn_fast_full", "ents_f": 0.851, "train_seconds": 1450.0, "budget": "full", "machine": "m"},
    ]
    claim = efficiency_claim(rows)
    assert claim["frozen"] == "posattn_fast_full" and claim["time_ratio"] == pytest.approx(0.5)
    assert claim["f1_gap_points"] == pytest.approx(0.1) and claim["holds"] is False
    rows[2]["train_seconds"] = 500.0
    assert efficiency_claim(rows)["holds"] is True


def test_read_train_time_adds_the_feature_pass_a_stage_read_from_cache(tmp_path):
    record = tmp_path / "heads" / "train_time.json"
    assert run_timed([sys.executable, "-c", "pass"], record, label="stage 1") == 0
    log = [{"epoch": 1, "feature_seconds": 400.0, "feature_seconds_reused": 0.0},
           {"epoch": 2, "feature_seconds": 400.0, "feature_seconds_reused": 400.0}]
    (record.parent / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    timing = read_train_time([record])
    seconds = timing["train_time"][0]["seconds"]
    assert timing["train_time"][0]["feature_seconds_reused"] == 400.0
    assert timing["train_seconds"] == pytest.approx(seconds + 400.0)


def test_compare_report_cli_names_a_malformed_reference(tmp_path):
    result = CliRunner().invoke(app, ["compare-report", "--metrics", str(tmp_path), "--output", str(tmp_path / "out"),
                                      "--reference", "metrics/posattn_minilm.json"])
    assert result.exit_code == 1 and "NAME=PATH" in result.output


def test_rows_from_several_metrics_folders(tmp_path):
    """Full-budget systems scored one run at a time share one table; a system in two folders is refused."""
    scores = {"ents_f": 0.8, "ents_p": 0.8, "ents_r": 0.8, "machine": "m", "train_seconds": 1.0}
    cnn, trf = tmp_path / "full", tmp_path / "full_trf"
    for folder, system in ((cnn, "spacy_cnn"), (trf, "spacy_trf_ner")):
        folder.mkdir()
        (folder / f"{system}.json").write_text(json.dumps({**scores, "system": system}))
    assert [r["system"] for r in load_rows([trf, cnn])] == ["spacy_cnn", "spacy_trf_ner"]  # table order
    assert [r["system"] for r in load_rows(cnn)] == ["spacy_cnn"]
    (trf / "spacy_cnn.json").write_text(json.dumps({**scores, "system": "spacy_cnn"}))
    with pytest.raises(ValueError, match="spacy_cnn.*more than one folder"):
        load_rows([cnn, trf])


def test_compare_report_cli_leaves_out_a_missing_metrics_folder(tmp_path):
    folder = tmp_path / "full"
    folder.mkdir()
    scores = {"system": "spacy_cnn", "ents_f": 0.8, "ents_p": 0.8, "ents_r": 0.8, "machine": "m", "train_seconds": 1.0,
              "docs": 2, "budget": "full"}
    (folder / "spacy_cnn.json").write_text(json.dumps(scores))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compare-report", "--metrics", str(folder), "--metrics", str(tmp_path / "not_run"),
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "not_run" in result.output and "| spaCy CNN" in (out / "compare.md").read_text()
