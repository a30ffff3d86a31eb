"""scripts/train_log_table.py: stage 1's dev scores and losses per epoch."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train_log_table", ROOT / "scripts" / "train_log_table.py")
train_log_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_log_table)


def test_table_has_one_row_per_epoch_with_scores_and_losses(tmp_path):
    lines = [
        {"epoch": 1, "step": 850, "seconds": 650.4, "averaged": True, "scores": {"ents_f": 0.8354, "tag_acc": 0.9785},
         "train_loss_per_token": {"posattn_ner": 0.3701}, "dev_loss_per_token": {"posattn_ner": 0.1223}},
        {"epoch": 2, "step": 1700, "seconds": 1923.0, "averaged": True, "scores": {"ents_f": 0.8497, "tag_acc": 0.9804},
         "current_scores": {"ents_f": 0.8411}},
    ]
    log = tmp_path / "train_log.jsonl"
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf8")
    out = tmp_path / "table.md"
    train_log_table.main(str(log), str(out), "spacy project run train-heads")
    rows = [row for row in out.read_text(encoding="utf8").splitlines() if row.startswith("| ") and row[2].isdigit()]
    assert rows == [
        "| 1 | 850 | 83.54 | – | 97.85 | 0.3701 / 0.1223 | 650 |",
        "| 2 | 1700 | 84.97 | 84.11 | 98.04 | – | 1,923 |",
    ]
