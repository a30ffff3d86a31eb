"""project.yml end to end on tiny data: assets, convert, train, evaluate, package, demo;
then the packaged wheel installs and gives the same entities as the trained folder."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SENTENCES = [
    [("Alice", "NNP", "B-per"), ("went", "VBD", "O"), ("to", "TO", "O"), ("China", "NNP", "B-geo"), (".", ".", "O")],
    [("The", "DT", "O"), ("WHO", "NNP", "B-org"), ("met", "VBD", "O"), ("on", "IN", "O"), ("Monday", "NNP", "B-tim"), (".", ".", "O")],
    [("Bob", "NNP", "B-per"), ("Smith", "NNP", "I-per"), ("visited", "VBD", "O"), ("Paris", "NNP", "B-geo"), (".", ".", "O")],
    [("Iranian", "JJ", "B-gpe"), ("officials", "NNS", "O"), ("said", "VBD", "O"), ("so", "RB", "O"), ("\u2019", "POS", "O"), (".", ".", "O")],
]


def write_tiny_gmb(path: Path, n_sentences: int = 40) -> Path:
    rows = ["Sentence #,Word,POS,Tag"]
    for i in range(n_sentences):
        for j, (word, pos, tag) in enumerate(SENTENCES[i % len(SENTENCES)]):
            rows.append(f"{f'Sentence: {i + 1}' if j == 0 else ''},{word},{pos},{tag}")
    csv_bytes = ("\r\n".join(rows) + "\r\n").encode("cp1252")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ner_dataset.csv", csv_bytes)
    return path


def run(args, cwd, env=None):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}\nSTDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def tiny_project(tiny_bert, tmp_path_factory):
    """`spacy project run all` on tiny data in a copy of the project: (folder, stdout)."""
    tmp_path = tmp_path_factory.mktemp("workflow")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "scripts", project / "scripts")
    # `package` builds spacy-posattn's wheel from the project folder: give it the package's files.
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project)
    shutil.copytree(ROOT / "spacy_posattn", project / "spacy_posattn", ignore=shutil.ignore_patterns("__pycache__"))
    source = write_tiny_gmb(tmp_path / "tiny_gmb.zip")
    overrides = [
        f"--vars.gmb_source={source}",
        "--vars.config=posattn_tiny",
        f"--vars.encoder={tiny_bert}",
        "--vars.max_steps=20",
        "--vars.eval_frequency=10",
        "--vars.n_sents=2",
        "--vars.name=gmb_posattn_tiny",
    ]
    out = run([sys.executable, "-m", "spacy", "project", "run", "all", str(project), *overrides], cwd=project)
    return project, out


def test_project_all_tiny(tiny_project, tmp_path):
    project, out = tiny_project
    summary = json.loads((project / "corpus" / "summary.json").read_text())
    assert [summary["splits"][s]["sentences"] for s in ("train", "dev", "test")] == [32, 4, 4]
    metrics = json.loads((project / "metrics" / "posattn_tiny.json").read_text())
    for key in ("ents_f", "ents_p", "ents_r", "token_flat_f1", "tag_acc", "words_per_second"):
        assert isinstance(metrics[key], float), key
    assert metrics["ents_f"] == pytest.approx(metrics["spacy_ents_f"])
    assert (project / "metrics" / "posattn_tiny.md").read_text().count("|") > 20
    assert "Alice" in out and "displacy" in (project / "metrics" / "demo.html").read_text().lower()
    # `calibrate` fitted the confidences' temperature on dev; the evaluated copy carries it.
    fit = json.loads((project / "metrics" / "posattn_tiny.calibration.json").read_text())
    final = (project / "training" / "posattn_tiny" / "model-final" / "config.cfg").read_text()
    assert f"confidence_temperature = {fit['temperature']}" in final
    assert metrics["model"].endswith("model-final")
    # `train-crf` trained the feature CRFs and chose their weights on dev; `refit-crf` trained them
    # again on train + dev; the evaluated copy has both weights and the refit CRFs.
    crf = json.loads((project / "metrics" / "posattn_tiny.crf.json").read_text())
    assert f"crf_weight = {crf['weight']}" in final and crf["sequences"] == 32
    assert f"crf_weight = {crf['pos']['weight']}" in final and 'factory = "posattn_tagger"' in final
    refit = json.loads((project / "metrics" / "posattn_tiny.crf_refit.json").read_text())
    assert refit["sequences"] == 36
    model_final = project / "training" / "posattn_tiny" / "model-final"
    calibrated = project / "training" / "posattn_tiny" / "model-calibrated"
    for part in ("posattn_ner", "tagger"):
        assert (model_final / part / "crf.crfsuite").exists()
        assert (model_final / part / "crf.crfsuite").read_bytes() != (calibrated / part / "crf.crfsuite").read_bytes()
    # Training time comes from the `timed` records of both stages and the CRFs, not from a typed figure.
    records = (
        ("posattn_tiny_heads", "train_time.json"), ("posattn_tiny", "train_time.json"), ("posattn_tiny", "crf_time.json"),
        ("posattn_tiny", "crf_refit_time.json"),
    )
    stages = [json.loads((project / "training" / d / f).read_text()) for d, f in records]
    assert [t["label"].split(":")[0] for t in metrics["train_time"]] == [
        "stage 1", "stage 2", "feature CRF", "feature CRFs refit on train + dev"
    ]
    assert metrics["train_time"][1]["label"] == "stage 2: 20 steps"
    assert metrics["train_seconds"] == pytest.approx(sum(t["seconds"] for t in stages)) and metrics["train_seconds"] > 0
    assert "training wall time" in (project / "metrics" / "posattn_tiny.md").read_text()
    # `publish` right after `all` (which does not score stage 1 alone) copies the default's reports.
    (project / "results").mkdir(exist_ok=True)
    run([sys.executable, "-m", "spacy", "project", "run", "publish", str(project), "--vars.config=posattn_tiny"], cwd=project)
    assert json.loads((project / "results" / "posattn_tiny_test.json").read_text())["ents_f"] == metrics["ents_f"]
    assert (project / "results" / "posattn_tiny_crf_refit.json").exists()

    # The packaged wheel declares spacy-posattn and loads offline, like the trained folder.
    wheel = next((project / "packages").glob("*/dist/en_gmb_posattn_tiny-0.1.0-py3-none-any.whl"))
    # spacy-posattn's own wheel is built beside it, for installing both where this repo isn't.
    plugin = next((project / "packages" / "dist").glob("spacy_posattn-0.1.0-*.whl"))
    with zipfile.ZipFile(plugin) as zf:
        assert "spacy_posattn/layers/scalar_mix.py" in zf.namelist()
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith("METADATA"))
        assert "Requires-Dist: spacy-posattn" in zf.read(meta).decode()
    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], cwd=tmp_path)
    check = (
        "import spacy, sys; text = 'Alice went to China on Monday .'; "
        "a = spacy.load('en_gmb_posattn_tiny'); b = spacy.load(sys.argv[1]); "
        "print([(e.text, e.label_) for e in a(text).ents] == [(e.text, e.label_) for e in b(text).ents], a.meta['name'])"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    final_dir = project / "training" / "posattn_tiny" / "model-final"
    assert run([sys.executable, "-c", check, str(final_dir)], cwd=tmp_path, env=env).split() == ["True", "gmb_posattn_tiny"]


@pytest.mark.slow
def test_packaged_pipeline_installs_in_clean_venv(tiny_project, tmp_path):
    """Both wheels install into a new virtual environment (the rest from the
    package index) and the pipeline loads there by name, offline."""
    project, _ = tiny_project
    script = ROOT / "scripts" / "install_check.sh"
    out = run(["bash", str(script), str(project / "packages"), "en_gmb_posattn_tiny", str(tmp_path / "venv")], cwd=tmp_path)
    assert "gmb_posattn_tiny ['transformer', 'tagger', 'posattn_ner']" in out
    assert (tmp_path / "venv" / "bin" / "python").exists()
    site = run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import spacy_posattn; print(spacy_posattn.__file__)"], cwd=tmp_path)
    assert str(tmp_path / "venv") in site  # the wheel's copy, not this checkout
