"""scripts/time_to_f1.py: minutes to a dev F1 from gpu_session.sh's timestamped logs."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("time_to_f1", ROOT / "scripts" / "time_to_f1.py")
time_to_f1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(time_to_f1)

STAGE1 = """\
3 [features] 7 layer(s) x 384 per token
40 [epoch 1/3] 84,663/839,237 words (10%), 2,806 words/s, 30 s elapsed, ETA 269 s
129 epoch 1: step 944, dev 81.17 F1, score 0.8448, 129 s
202 epoch 2: step 1893, dev 83.46 F1, score 0.8560, 202 s
"""
# spaCy's table: ENTS_P (85.10) sits beside ENTS_F and is higher: reading the wrong
# column would report step 100 as the first to reach 84.
STAGE2 = """\
250 E    #       LOSS TRANS...  LOSS TAGGER  LOSS POSAT...  TAG_ACC  POS_ACC  ENTS_F  ENTS_P  ENTS_R  SCORE
251 ---  ------  -------------  -----------  -------------  -------  -------  ------  ------  ------  ------
260   0       0           0.00         0.00           0.00    98.00    98.00   83.46   83.50   83.40    0.86
290   0     100          12.00        40.00         300.00    98.10    98.10   83.99   85.10   82.90    0.86
300 [step-time] step 150 epoch 0: 0.267 s/step, 58 s since step 0, peak RSS 2,908 MiB
330   0     200          11.00        38.00         280.00    98.20    98.20   84.07   84.00   84.14    0.87
360   0     300          11.00        38.00         280.00    98.20    98.20   84.30   84.00   84.60    0.87
"""


def test_reads_both_stages_and_the_ents_f_column():
    evals = time_to_f1.stage1_evaluations(STAGE1.splitlines())
    evals += time_to_f1.stage2_evaluations(STAGE2.splitlines())
    assert [(e[0], e[1], e[2]) for e in evals] == [
        ("stage 1", 129, "epoch 1"), ("stage 1", 202, "epoch 2"),
        ("stage 2", 260, "step 0"), ("stage 2", 290, "step 100"),
        ("stage 2", 330, "step 200"), ("stage 2", 360, "step 300")]
    assert [e[3] for e in evals] == [81.17, 83.46, 83.46, 83.99, 84.07, 84.30]
    assert time_to_f1.first_reaching(evals, 84.0) == ("stage 2", 330, "step 200", 84.07)
    assert time_to_f1.first_reaching(evals, 83.0)[:3] == ("stage 1", 202, "epoch 2")
    assert time_to_f1.first_reaching(evals, 90.0) is None


def test_main_writes_the_table(tmp_path):
    (tmp_path / "stage1.log").write_text(STAGE1)
    (tmp_path / "stage2.log").write_text(STAGE2)
    time_to_f1.main(str(tmp_path), 84.0)
    text = (tmp_path / "time_to_f1.md").read_text()
    assert "| stage 2 | step 200 | 330 | 84.07 |" in text
    assert "84.07 at stage 2 step 200, 330 s = 5.5 min" in text
