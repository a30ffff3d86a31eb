"""The compare workflow: frozen-encoder feature cache, system runner, report."""
import json
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.util import load_config

from spacy_posattn import feature_cache
from spacy_posattn.compare.report import efficiency_claim, load_rows, markdown_table
from spacy_posattn.compare.runner import set_dotted, training_config
from spacy_posattn.compare.systems import SYSTEMS, get_systems
from spacy_posattn.convert import convert

from .test_workflow import ROOT, run, write_tiny_gmb


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    source = write_tiny_gmb(root / "tiny.zip", n_sentences=40)
    convert(source, root, n_sents=2)
    convert(source, root / "n10", n_sents=10)
    return root


def tiny_cached_config(tmp_path: Path, corpus: Path, encoder: str, depth: int = 1) -> Path:
    config = load_config(ROOT / "configs" / "posattn_tiny.cfg", interpolate=False)
    config["paths"].update(train=str(corpus / "train.spacy"), dev=str(corpus / "dev.spacy"), encoder=encoder)
    config["components"]["posattn_ner"]["model"]["depth"] = depth
    config["training"]["batcher"]["size"] = 30  # several steps per epoch
    config["training"]["optimizer"]["learn_rate"]["initial_rate"] = 0.01  # still warmup_linear
    path = tmp_path / "config.cfg"
    config.to_disk(path)
    return path


def test_feature_cache_trains_and_matches_the_listener(tiny_bert, tiny_corpus, tmp_path, monkeypatch):
    config = tiny_cached_config(tmp_path, tiny_corpus, tiny_bert)
    best = feature_cache.train_cached(config, tmp_path / "out", epochs=4, cache_dir=tmp_path / "cache")
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in log] == [1, 2, 3, 4]
    losses = [line["train_loss_per_token"]["posattn_ner"] for line in log]
    # The config's warmup_linear schedule is stepped: with the rate stuck at step 0 (= 0) nothing learns.
    assert losses[-1] < 0.7 * losses[0]
    assert best == max(line["score"] for line in log) and best > 0
    assert all(line["seconds"] >= line["feature_seconds"] > 0 for line in log)

    # The saved pipeline runs on raw text with its listeners back in place, and the
    # vectors cached on disk are what its listener computes at inference, also for
    # docs longer than the transformer's window (32 word pieces here, stride 24).
    nlp = spacy.load(tmp_path / "out" / "model-best")
    doc = nlp("Alice went to China .")
    assert doc.has_annotation("TAG")
    chains = feature_cache.listener_chains(nlp)
    assert set(chains) == {"tagger", "posattn_ner"}
    from spacy.tokens import DocBin

    from spacy_posattn.readers import unannotated_copy

    docs = [unannotated_copy(d) for d in DocBin().from_disk(tiny_corpus / "train.spacy").get_docs(nlp.vocab)]
    n_pieces = [len(nlp.get_pipe("transformer").model.tokenizer(d.text)["input_ids"]) for d in docs]
    assert max(n_pieces) > 32
    train_cache = [p for p in (tmp_path / "cache").glob("*.json") if json.loads(p.read_text())["docs"] == len(docs)]
    flat = numpy.load(train_cache[0].with_suffix(".npy"))
    transformer = nlp.get_pipe("transformer")
    transformer.set_annotations(docs, transformer.predict(docs))
    # (per-layer vectors for the scalar-mix listener of posattn_tiny.cfg, side by side)
    direct = numpy.concatenate([X.reshape((len(X), -1)) for X in chains["posattn_ner"].predict(docs)])
    assert flat.shape == direct.shape and flat.dtype == numpy.float16
    numpy.testing.assert_allclose(flat.astype("float32"), direct, atol=2e-2, rtol=1e-2)

    # A second head on the same encoder and corpus reads the cache instead of encoding again.
    def no_encoding(*args, **kwargs):
        raise AssertionError("the feature cache was not used")

    monkeypatch.setattr(feature_cache, "encode_docs", no_encoding)
    feature_cache.train_cached(
        tiny_cached_config(tmp_path, tiny_corpus, tiny_bert, depth=0), tmp_path / "out0", epochs=1,
        cache_dir=tmp_path / "cache",
    )
    first = json.loads((tmp_path / "out0" / "train_log.jsonl").read_text().splitlines()[0])
    assert first["feature_seconds"] == pytest.approx(log[0]["feature_seconds"])


def test_systems_cover_the_issue():
    names = {s.name for s in SYSTEMS}
    assert {"crf", "bilstm", "transformer_scratch", "spacy_cnn", "spacy_trf_ner", "posattn", "posattn_linear",
            "posattn_nolex", "posattn_n10", "posattn_frozen"} <= names
    for system in SYSTEMS:
        assert set(system.budgets) == {"quick", "full", "smoke"}, system.name
    with pytest.raises(ValueError, match="Unknown system.*nope"):
        get_systems(["posattn", "nope"])


def test_training_config_applies_ablation_and_budget(tmp_path):
    nolex = get_systems(["posattn_nolex"])[0]
    config = training_config(nolex, nolex.budgets["quick"], Path("corpus"), tmp_path / "log.jsonl", "my-bert")
    assert config["components"]["posattn_ner"]["model"]["lexical"] is None
    assert config["training"]["max_steps"] == nolex.budgets["quick"]["max_steps"] > 0
    assert config["corpora"]["dev"]["limit"] == 100
    assert config["paths"]["encoder"] == "my-bert"
    assert config["training"]["logger"]["@loggers"] == "spacy-posattn.JSONLLogger.v1"
    # Written and read back, the nulled section stays null.
    config.to_disk(tmp_path / "c.cfg")
    assert load_config(tmp_path / "c.cfg")["components"]["posattn_ner"]["model"]["lexical"] is None
    with pytest.raises(KeyError, match="no section 'nope'"):
        set_dotted(config, "nope.x", 1)


def row(system, f, seconds, **extra):
    fields = {"system": system, "label": system, "ents_f": f, "ents_p": f, "ents_r": f, "train_seconds": seconds, "docs": 480}
    return {**fields, **extra}


def test_table_states_each_rows_test_docs():
    table = markdown_table([row("crf", 0.83, 10.0, docs=4796), row("posattn", 0.84, 99.0)], None, None)
    crf, ours = [line for line in table.splitlines() if line.startswith(("| crf", "| posattn"))][:2]
    assert crf.split(" | ")[4] == "4,796" and ours.split(" | ")[4] == "480"


def test_table_names_the_command_that_made_it():
    rows = [row("crf", 0.83, 10.0)]
    assert "Generated by `spacy project run compare`" in markdown_table(rows, None, None)
    full = markdown_table(rows, None, None, command="spacy project run compare-full")
    assert "Generated by `spacy project run compare-full`" in full and "run compare`" not in full


@pytest.mark.parametrize(
    "frozen_f,frozen_s,holds",
    [(0.835, 100.0, True), (0.820, 100.0, False), (0.835, 300.0, False)],
)
def test_efficiency_claim_verdict(frozen_f, frozen_s, holds):
    machine = {"machine": "CPU: 2 cores"}
    rows = [row("posattn_default_full", 0.84, 1000.0, budget="full", **machine),
            row("posattn_frozen", frozen_f, frozen_s, budget="quick", **machine)]
    claim = efficiency_claim(rows)
    assert claim["holds"] is holds
    assert claim["time_ratio"] == pytest.approx(frozen_s / 1000.0)
    assert ("**holds**" in markdown_table(rows, claim, None)) is holds


def test_efficiency_claim_says_above_when_the_frozen_side_wins():
    machine = {"machine": "CPU: 2 cores"}
    rows = [row("posattn_default_full", 0.8431, 2734.0, budget="full", **machine),
            row("posattn_stage1_full", 0.8454, 1564.0, budget="full", **machine)]
    table = markdown_table(rows, efficiency_claim(rows), None)
    assert "0.23 F1 points above `posattn_default_full`" in table and "-0.23" not in table


def test_efficiency_claim_needs_a_full_fine_tune_on_the_same_machine():
    frozen = row("posattn_frozen", 0.835, 100.0, budget="quick", machine="CPU: 2 cores")
    quick_tune = row("posattn", 0.80, 300.0, budget="quick", machine="CPU: 2 cores")
    other_machine = row("posattn_default_full", 0.84, 1000.0, budget="full", machine="GPU: H200")
    claim = efficiency_claim([quick_tune, frozen, other_machine])
    assert claim["holds"] is None and "full-budget" in claim["reason"]
    assert "not tested" in markdown_table([quick_tune, frozen], claim, None)


def test_compare_workflow_smoke(tiny_bert, tmp_path):
    """`spacy project run compare` on tiny data, a few steps per system, one system per kind and ablation mechanism."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("project.yml",):
        (project / name).write_text((ROOT / name).read_text())
    import shutil

    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "scripts", project / "scripts")
    source = write_tiny_gmb(tmp_path / "tiny_gmb.zip")
    systems = "spacy_cnn,crf,posattn_nolex,posattn_n10,linear_frozen"
    out = run(
        [sys.executable, "-m", "spacy", "project", "run", "compare", str(project), f"--vars.gmb_source={source}",
         f"--vars.encoder={tiny_bert}", "--vars.n_sents=2", "--vars.compare_budget=smoke",
         f"--vars.compare_systems={systems}"],
        cwd=project,
    )
    assert "compare-report" in out
    rows = json.loads((project / "results" / "compare.json").read_text())["rows"]
    assert [r["system"] for r in rows] == systems.split(",")
    for r in rows:
        assert r["budget"] == "smoke" and r["train_seconds"] > 0 and 0.0 <= r["ents_f"] <= 1.0, r["system"]
    assert rows[0]["tag_acc"] is not None and rows[1]["tag_acc"] is None  # the CRF tags no POS
    table = (project / "results" / "compare.md").read_text()
    assert table.count("\n| ") >= 2 * len(rows)
    for png in ("compare_f1_vs_time.png", "loss_curves.png"):
        assert (project / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert load_rows(project / "metrics" / "compare")[3]["system"] == "posattn_n10"
    # compare-speed times what this run trained and leaves out (with a warning) what it did not.
    speed = (project / "results" / "speed.md").read_text()
    assert "| spacy_cnn |" in speed and "| posattn |" not in speed


def test_confusion_matrix_plot(tmp_path):
    from spacy_posattn.compare.plots import confusion_matrix

    confusion = {"geo": {"geo": 90, "gpe": 10}, "gpe": {"gpe": 50}, "O": {"O": 900, "geo": 3}}
    path = confusion_matrix({"label": "x", "type_confusion": confusion}, tmp_path / "c.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000


def test_update_readme_fills_only_the_block(tmp_path):
    from spacy_posattn.compare.report import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    update_readme(readme, "# Title\n\n| a | b |\n")
    text = readme.read_text()
    assert text == f"intro\n{README_START}\n| a | b |\n{README_END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="compare-table"):
        update_readme(readme, "# T\n| a |\n")


def test_ablation_rows_change_one_thing_each(tiny_bert, tmp_path):
    from spacy.util import load_model_from_config

    from spacy_posattn.compare.systems import ABLATION

    names = [s.name for s in get_systems([s.name for s in ABLATION])]
    assert names == ["frozen_baseline", "frozen_case_pos", "frozen_layer_mix", "frozen_tagger_block"]
    assert not set(names) & {s.name for s in get_systems([])}  # not in a plain `compare` run
    archs = {}
    for system in ABLATION:
        config = training_config(system, system.budgets["quick"], tmp_path, tmp_path / "log.jsonl", tiny_bert)
        nlp = load_model_from_config(config, auto_fill=True, validate=True)
        comp = nlp.config["components"]
        archs[system.name] = (
            comp["tagger"]["model"]["@architectures"],
            comp["tagger"]["model"]["tok2vec"]["@architectures"],
            comp["posattn_ner"]["model"]["tok2vec"]["@architectures"],
            comp["transformer"]["model"]["transformer_config"].get("output_hidden_states", False),
            comp["tagger"]["model"].get("depth"),
        )
        assert config["training"]["optimizer"]["learn_rate"]["initial_rate"] == 1e-3
    stock, mix = "spacy-transformers.TransformerListener.v1", "spacy-posattn.ScalarMixListener.v1"
    ours = "spacy-posattn.PositionalAttentionTagger.v2"
    assert archs["frozen_baseline"] == ("spacy.Tagger.v2", stock, stock, False, None)
    assert archs["frozen_case_pos"] == (ours, stock, stock, False, 0)
    assert archs["frozen_layer_mix"] == (ours, mix, mix, True, 0)
    # The last row is the default config's stage 1: its tagger has an attention block.
    assert archs["frozen_tagger_block"] == (ours, mix, mix, True, 1)


def test_crf_brings_its_tagger_and_missing_extras_fail_up_front(monkeypatch):
    import importlib.util

    from spacy_posattn.compare.runner import check_extras

    assert [s.name for s in get_systems(["posattn", "crf"])] == ["spacy_cnn", "crf", "posattn"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn_crfsuite" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'spacy-posattn\[compare\]'"):
        check_extras(get_systems(["crf"]))
    check_extras(get_systems(["posattn"]))  # no CRF: nothing missing


def test_finetune_ablation_rows_take_one_mechanism_away(tiny_bert, tmp_path):
    """The cold start trains the default config from random heads; the rate-scale
    row sources stage 1 from a copy whose encoder has lr_scale 0.2 (a sourced
    component keeps its own config), with stage 2's own steps and warm-up."""
    from spacy.util import load_model_from_config

    from spacy_posattn.compare.runner import sourced_copy
    from spacy_posattn.compare.systems import FINETUNE_ABLATION, STAGE1, WARM
    from spacy_posattn.layers import encoder_shim

    from .conftest import make_examples, make_nlp

    cold, scaled = get_systems([s.name for s in FINETUNE_ABLATION])
    assert (cold.name, scaled.name) == ("finetune_cold_start", "finetune_encoder_rate_scale")
    assert not {cold.name, scaled.name} & {s.name for s in get_systems([])}
    default = load_config(ROOT / "configs" / "posattn_minilm.cfg", interpolate=False)
    warm = load_config(ROOT / WARM, interpolate=False)
    config = training_config(cold, cold.budgets["full"], Path("corpus"), tmp_path / "log.jsonl", "my-bert")
    assert config["components"] == {**default["components"], "transformer": config["components"]["transformer"]}
    assert config["components"]["transformer"]["model"]["lr_scale"] == 1.0  # the default since session 19
    assert "source" not in config["components"]["transformer"]
    schedule = config["training"]["optimizer"]["learn_rate"]
    assert (config["training"]["max_steps"], schedule["warmup_steps"]) == (1500, default["training"]["optimizer"]["learn_rate"]["warmup_steps"])
    config = training_config(scaled, scaled.budgets["full"], Path("corpus"), tmp_path / "log.jsonl", "my-bert")
    assert config["paths"]["heads"] == STAGE1 and config["components"]["tagger"] == {"source": "${paths.heads}"}
    schedule = config["training"]["optimizer"]["learn_rate"]
    assert (config["training"]["max_steps"], schedule["warmup_steps"]) == (750, warm["training"]["optimizer"]["learn_rate"]["warmup_steps"])

    stage1 = make_nlp(tiny_bert, transformer_model={"lr_scale": 1.0})
    stage1.initialize(lambda: make_examples(stage1))
    stage1.to_disk(tmp_path / "stage1")
    copy = sourced_copy(str(tmp_path / "stage1"), scaled, tmp_path / "run" / "sourced")
    assert load_config(copy / "config.cfg")["components"]["transformer"]["model"]["lr_scale"] == 0.2
    assert load_config(tmp_path / "stage1" / "config.cfg")["components"]["transformer"]["model"]["lr_scale"] == 1.0
    warm["paths"].update(heads=str(copy), train="x.spacy", dev="x.spacy")
    sourced = load_model_from_config(warm, auto_fill=True)
    assert encoder_shim(sourced.get_pipe("transformer").model).lr_scale == 0.2
    with pytest.raises(FileNotFoundError, match="train-heads"):
        sourced_copy(str(tmp_path / "nothing"), scaled, tmp_path / "run2")
