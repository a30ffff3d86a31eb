"""scripts/stage1_variants.py: the report's rows (reference runs, variants,
retired variants with their commit) and a clear refusal to train a retired one."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("stage1_variants", ROOT / "scripts" / "stage1_variants.py")
stage1_variants = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stage1_variants)


def write_run(log_path: Path, metrics_path: Path, dev_f: list, test_f: float) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("".join(json.dumps({"scores": {"ents_f": f}, "seconds": 100.0 * (i + 1)}) + "\n"
                                for i, f in enumerate(dev_f)), encoding="utf8")
    per_type = {t: {"f": 0.5} for t in ("org", "art", "eve", "nat")}
    metrics_path.write_text(json.dumps({"ents_f": test_f, "tag_acc": 0.98, "raw_ents_f": test_f - 0.01,
                                        "ents_per_type": per_type}), encoding="utf8")


def test_report_lists_reference_variant_and_retired_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [(reference_log, reference_metrics)] = stage1_variants.REFERENCES.values()
    write_run(reference_log, reference_metrics, [0.80, 0.85], 0.84)
    variant, retired = next(iter(stage1_variants.VARIANTS)), next(iter(stage1_variants.RETIRED))
    for name, f in ((variant, 0.83), (retired, 0.82)):
        write_run(Path(f"training/variants/{name}/train_log.jsonl"), Path(f"metrics/variants/{name}.json"), [f], f)
    stage1_variants.report("out.md")
    rows = [row for row in Path("out.md").read_text(encoding="utf8").splitlines() if row.startswith("| ") and "---" not in row][1:]
    assert len(rows) == 3
    assert "| 80.00, 85.00 | 84.00 | 98.00 | 83.00 | 50.00 | 50.00 | 50.00 | 50.00 | 200 |" in rows[0]
    assert rows[1].startswith(f"| `{variant}`:") and "| 83.00 |" in rows[1]
    assert rows[2].startswith(f"| `{retired}`:") and f"(code at commit {stage1_variants.RETIRED[retired][1]})" in rows[2]


def test_training_a_retired_variant_names_the_commit():
    name, (_, commit) = next(iter(stage1_variants.RETIRED.items()))
    with pytest.raises(SystemExit, match=f"check out commit {commit}"):
        stage1_variants.train(name)
