"""Command-line interface: `python -m spacy_posattn COMMAND`."""

from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from .convert import DEFAULT_N_SENTS, ConversionError, convert
from .machine import describe_machine

app = typer.Typer(
    name="spacy-posattn",
    help="spacy-posattn command-line tools.",
    add_completion=False,
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """spacy-posattn command-line tools."""


def write_report(output: Path, markdown: str, data: Any) -> None:
    """Write a Markdown report and its data as JSON beside it, and print the report."""
    import json

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown, encoding="utf8")
    output.with_suffix(".json").write_text(json.dumps(data, indent=2), encoding="utf8")
    print(markdown)
    msg.good(f"Wrote {output}")


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="GMB ner_dataset.csv or its .zip"),
    output_dir: Path = typer.Argument(..., help="Directory for train/dev/test.spacy"),
    n_sents: int = typer.Option(
        DEFAULT_N_SENTS, "--n-sents", "-n", min=1, help="Sentences per Doc"
    ),
) -> None:
    """Convert the GMB corpus to train/dev/test.spacy and summary.json.

    Sentences in file order: the first 80% train, the next 10% dev, the last 10% test.
    """
    try:
        summary = convert(input_path, output_dir, n_sents=n_sents)
    except ConversionError as err:
        msg.fail(str(err))
        raise typer.Exit(1)
    print_summary(summary)
    msg.good(f"Wrote train/dev/test.spacy and summary.json to {output_dir}")


def print_summary(summary: Dict[str, Any]) -> None:
    """Print the per-split counts, repairs and warnings of a conversion.

    summary (Dict[str, Any]): The summary returned by `convert`.
    """
    splits = summary["splits"]
    types = sorted({t for s in splits.values() for t in s["entities_per_type"]})
    keys = ["sentences", "tokens", "docs", "entities"]
    header = ["", *keys, *types, "I- starts", "empty words"]
    rows = [
        [
            name,
            *(s[key] for key in keys),
            *(s["entities_per_type"].get(t, 0) for t in types),
            s["repairs"]["i_start"],
            s["repairs"]["empty_word"],
        ]
        for name, s in splits.items()
    ]
    n_sents = summary["n_sents"]
    msg.info(f"{summary['input']}: {summary['rows']:,} rows, {n_sents} sentence(s)/Doc")
    msg.table(rows, header=header, aligns=["l"] + ["r"] * (len(header) - 1))
    for warning in summary["warnings"]:
        msg.warn(warning)


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder, e.g. training/posattn_minilm/model-best"),
    data_path: Path = typer.Argument(..., help="A .spacy file with gold docs, e.g. corpus/test.spacy"),
    output: Path = typer.Option(..., "--output", "-o", help="Scores as JSON; a Markdown report goes beside it"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="Docs per nlp.pipe batch"),
    machine: str = typer.Option("", "--machine", help="Where this ran, for the report (default: CPU count or GPU name)"),
    int8: str = typer.Option("", "--int8", help="Load with components.transformer.model.int8 set to this (attention, ffn, ffn_in, ffn_out, all; several joined by +)"),
    bf16: bool = typer.Option(False, "--bf16", help="Load with components.transformer.model.bf16 = true (CPU inference in bfloat16)"),
    crf_weight: Optional[float] = typer.Option(None, "--crf-weight", min=0.0, max=1.0, help="Load with components.posattn_ner.crf_weight set to this (0: the network without its feature CRF)"),
    pos_crf_weight: Optional[float] = typer.Option(None, "--pos-crf-weight", min=0.0, max=1.0, help="Load with components.tagger.crf_weight set to this (0: the tagger without its POS CRF; a posattn_tagger only)"),
    train_time: List[Path] = typer.Option(
        [], "--train-time", help="A training stage's time record written by `timed` (repeat per stage): their total is reported as train_seconds",
    ),
) -> None:
    """Score entities (strict, seqeval = spaCy), the paper's token-level flat F1,
    POS accuracy and words/s, and write JSON plus a Markdown report."""
    import spacy
    from thinc.api import require_gpu

    from .evaluate import evaluate_path, write_reports
    from .timing import read_train_time

    if not data_path.exists():
        msg.fail(f"No such data file: {data_path}. Run `python -m spacy_posattn convert` first.", exits=1)
    try:
        timing = read_train_time(train_time) if train_time else {}
    except FileNotFoundError as err:
        msg.fail(str(err), exits=1)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    config = {"components.transformer.model.int8": int8} if int8 else {}
    if bf16:
        config["components.transformer.model.bf16"] = True
    if crf_weight is not None:
        config["components.posattn_ner.crf_weight"] = crf_weight
    if pos_crf_weight is not None:
        config["components.tagger.crf_weight"] = pos_crf_weight
    try:
        nlp = spacy.load(model, config=config)
    except Exception as err:  # confection's error for a setting the tagger doesn't have
        if pos_crf_weight is not None and "crf_weight" in str(err):
            msg.fail(f"--pos-crf-weight: the tagger of {model} has no crf_weight (it is not a posattn_tagger; `train-crf` makes one)", exits=1)
        raise
    scores = evaluate_path(nlp, data_path, batch_size=batch_size)
    scores.update(model=str(model), data=str(data_path), machine=machine or describe_machine(gpu_id), int8=int8 or "none", bf16=bf16)
    if "posattn_ner" in nlp.pipe_names:
        scores.update(crf_weight=nlp.get_pipe("posattn_ner").crf_weight)
    if "tagger" in nlp.pipe_names and hasattr(nlp.get_pipe("tagger"), "crf_weight"):
        scores.update(pos_crf_weight=nlp.get_pipe("tagger").crf_weight)
    scores.update(timing)
    md_path = write_reports(scores, output, title=f"{Path(model).name} on {data_path.name}")
    print(md_path.read_text(encoding="utf8"))
    msg.good(f"Wrote {output} and {md_path}")


@app.command("timed", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def timed_cli(
    ctx: typer.Context,
    record: Path = typer.Argument(..., help="JSON file for the wall time, e.g. training/posattn_minilm/train_time.json"),
    label: str = typer.Option("", "--label", help="What the command trains, for reports (e.g. 'stage 2: 1000 steps')"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="The GPU the command trains on (-1: CPU), for the record's machine"),
) -> None:
    """Run a training command given after `--` and record its wall time, so that
    reports take training time from a measurement:
    `python -m spacy_posattn timed training/x/train_time.json -- python -m spacy train ...`.
    Exits with the command's exit code; a failed command writes no record."""
    from .timing import run_timed

    try:
        code = run_timed(ctx.args, record, label=label, gpu_id=gpu_id)
    except ValueError as err:  # no command given
        msg.fail(str(err), exits=1)
    if code != 0:
        msg.fail(f"`{' '.join(ctx.args)}` failed with exit code {code}; no time recorded", exits=code)
    msg.good(f"Wrote {record}")


@app.command("demo")
def demo_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder"),
    output: Path = typer.Option(Path("metrics/demo.html"), "--output", "-o", help="displaCy HTML page to write"),
) -> None:
    """Run the paper's example and a few more sentences: print each token with
    its entity and POS tag, and write the entities as a displaCy page."""
    import spacy

    from .demo import render_page, run_demo, token_rows
    from .pipeline import PosAttnEntityRecognizer

    nlp = spacy.load(model)
    keys = [pipe.cfg["spans_key"] for _, pipe in nlp.pipeline if isinstance(pipe, PosAttnEntityRecognizer)]
    docs = run_demo(nlp)
    for doc in docs:
        msg.divider(doc.text)
        msg.table(token_rows(doc), header=["token", "entity", "POS"])
        for key in keys:
            for ent, score in zip(doc.spans[key], doc.spans[key].attrs["scores"]):
                print(f"  {ent.label_:>4}  {ent.text!r}  confidence {score:.3f}")
    msg.good(f"Wrote {render_page(docs, output)}")


@app.command(
    "train-cached", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def train_cached_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Pipeline config (transformer + tagger + posattn_ner)"),
    output_dir: Path = typer.Argument(..., help="Folder for model-best and train_log.jsonl"),
    epochs: int = typer.Option(6, "--epochs", "-e", min=1, help="Head epochs over the cached features"),
    cache_dir: Path = typer.Option(Path("corpus/features"), "--cache-dir", help="Where the encoder outputs are cached"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
    score_without_averages: bool = typer.Option(
        False, "--score-without-averages",
        help="With use_averages, also score each epoch's current parameters on dev (the averages' ablation; about 35 s an epoch for GMB)",
    ),
) -> None:
    """Train the heads on a frozen encoder: compute the encoder's word vectors
    for train and dev once (cached on disk), then train every other component
    on them for `--epochs` epochs, keeping the epoch with the best dev score.
    Config values can be overridden as with `spacy train`, e.g.
    `--training.optimizer.learn_rate.initial_rate 1e-3`."""
    from spacy.cli._util import parse_config_overrides
    from thinc.api import require_gpu

    from .feature_cache import train_cached

    if not config_path.exists():
        msg.fail(f"No such config file: {config_path}", exits=1)
    overrides = parse_config_overrides(ctx.args)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    best = train_cached(config_path, output_dir, epochs=epochs, cache_dir=cache_dir, overrides=overrides,
                        score_without_averages=score_without_averages)
    msg.good(f"Best dev score {best:.4f}; saved {output_dir / 'model-best'}")


@app.command("compare")
def compare_cli(
    budget: str = typer.Option("quick", "--budget", "-b", help="quick (minutes per system; 53 min in all on 2 cores), full, or smoke (a few steps, to check the workflow)"),
    systems: str = typer.Option("", "--systems", "-s", help="Comma-separated system names (default: all)"),
    corpus: Path = typer.Option(Path("corpus"), "--corpus", help="Corpus root: train/dev/test.spacy, n10/ for 10 sentences per Doc"),
    train_root: Path = typer.Option(Path("training/compare"), "--training", help="Where each system is trained"),
    metrics_root: Path = typer.Option(Path("metrics/compare"), "--metrics", help="Where each system's scores go"),
    encoder: str = typer.Option("bundled:all-minilm-l6-v2", "--encoder", help="BERT for the transformer systems"),
    force: bool = typer.Option(False, "--force", help="Retrain systems that already have scores for this budget"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
) -> None:
    """Train and score the baselines and ablations, one after another; a system
    already scored with the same budget, config and encoder is skipped unless --force."""
    import json

    from .compare.runner import check_extras, fingerprint, run_system
    from .compare.systems import BUDGETS, get_systems

    if budget not in BUDGETS:
        msg.fail(f"Unknown budget '{budget}': use one of {', '.join(BUDGETS)}", exits=1)
    names = [n.strip() for n in systems.split(",") if n.strip()]
    try:
        chosen = get_systems(names)
        check_extras(chosen)
    except (ValueError, ImportError) as err:
        msg.fail(str(err), exits=1)
    added = [s.name for s in chosen if names and s.name not in names]
    if added:
        msg.info(f"Also running {', '.join(added)}: needed by the systems asked for")
    failed = []
    for system in chosen:
        metrics_path = metrics_root / f"{system.name}.json"
        if metrics_path.exists() and not force:
            stored = json.loads(metrics_path.read_text(encoding="utf8")).get("fingerprint")
            if stored == fingerprint(system, budget, encoder, metrics_root):
                msg.info(f"{system.name}: scored with this budget and config already, skipped ({metrics_path})")
                continue
        msg.divider(f"{system.name}: {system.label} ({budget} budget)")
        try:
            path = run_system(system, budget, corpus, train_root, metrics_root, encoder, gpu_id)
        except (RuntimeError, FileNotFoundError, ValueError) as err:
            msg.fail(f"{system.name} failed: {err}")
            failed.append(system.name)
            continue
        msg.good(f"{system.name}: wrote {path}")
    if failed:
        msg.fail(f"Failed: {', '.join(failed)} (the others are scored; rerun to retry only these)", exits=1)


@app.command("compare-report")
def compare_report_cli(
    metrics_roots: List[Path] = typer.Option(
        [Path("metrics/compare")], "--metrics",
        help="Folder of scores written by `compare`; repeatable (e.g. full-budget runs of one system each), a folder that does not exist is left out with a warning",
    ),
    output_dir: Path = typer.Option(Path("results"), "--output", "-o", help="Where compare.md/.json and the plots go"),
    reference: List[str] = typer.Option(
        [], "--reference",
        help="NAME=PATH: scores of one of the project's own pipelines (default, stage1, fast), written by `evaluate --train-time`, added as a row; repeatable",
    ),
    readme: Optional[Path] = typer.Option(None, "--readme", help="Also fill this README's compare-table block"),
    command: str = typer.Option(
        "spacy project run compare", "--command", help="The command the table names as its source"
    ),  # = compare.report.DEFAULT_COMMAND (the module is imported lazily)
) -> None:
    """Write results/compare.md and .json and the PNG plots from the scores."""
    from .compare.report import write_report
    from .compare.runner import check_extras

    try:
        check_extras([], report=True)
    except ImportError as err:
        msg.fail(str(err), exits=1)
    if readme is not None and not readme.exists():
        msg.warn(f"No {readme} here: its compare table is not updated")
        readme = None
    references = {}
    for item in reference:
        name, sep, path = item.partition("=")
        if not sep:
            msg.fail(f"--reference {item}: give NAME=PATH, e.g. default=metrics/posattn_minilm.json", exits=1)
        references[name] = Path(path)
        if not references[name].exists():
            msg.warn(f"No {path} yet (its workflow writes it): the table has no '{name}' row")
    for root in metrics_roots:
        if not root.exists():
            msg.warn(f"No {root} yet (`python -m spacy_posattn compare --metrics {root}` writes it): its systems have no rows")
    try:
        written = write_report(metrics_roots, output_dir, references, readme, command)
    except (FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    for path in written:
        msg.good(f"Wrote {path}")


@app.command("compare-speed")
def compare_speed_cli(
    models: str = typer.Argument(..., help="NAME=FOLDER pairs, comma-separated; the first is the anchor"),
    data_path: Path = typer.Argument(..., help="A .spacy file, e.g. corpus/test.spacy"),
    output: Path = typer.Option(Path("results/speed.md"), "--output", "-o", help="Markdown table; JSON goes beside it"),
    repeats: int = typer.Option(3, "--repeats", "-r", min=1, help="Rounds over the data"),
    limit: int = typer.Option(0, "--limit", min=0, help="Use the first N docs (0: all)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
) -> None:
    """Words/s of several pipelines, measured in one process in interleaved rounds."""

    from thinc.api import require_gpu

    from .compare.speed import measure_speed, speed_markdown

    pairs = [item.split("=", 1) for item in models.split(",") if item.strip()]
    if not pairs or any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        msg.fail(f"Give models as NAME=FOLDER,NAME=FOLDER; got '{models}'", exits=1)
    for name, folder in pairs:
        if not Path(folder).exists():
            msg.warn(f"{name}: no pipeline at {folder} (not trained by this compare run), left out")
    pairs = [(name, folder) for name, folder in pairs if Path(folder).exists()]
    if not pairs:
        msg.fail("None of the pipelines exists: run `spacy project run compare` first", exits=1)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    speeds = measure_speed({name: Path(folder) for name, folder in pairs}, data_path, repeats=repeats, limit=limit)
    write_report(output, speed_markdown(speeds, pairs[0][0], describe_machine(gpu_id)), speeds)


@app.command("profile")
def profile_cli(
    model: str = typer.Argument(..., help="Pipeline folder or installed package"),
    data_path: Path = typer.Argument(..., help="A .spacy file, e.g. corpus/test.spacy"),
    output: Path = typer.Option(Path("results/profile_cpu.md"), "--output", "-o", help="Markdown report; JSON beside it"),
    limit: int = typer.Option(200, "--limit", min=0, help="Use the first N docs (0: all)"),
    sentences: bool = typer.Option(False, "--sentences", help="One text per sentence instead of per doc"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1),
    int8: str = typer.Option("", "--int8", help="Load with components.transformer.model.int8 set to this"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
) -> None:
    """Profile `nlp.pipe` on a .spacy file's texts: seconds per component and
    the top functions by own and cumulative time (cProfile)."""

    import spacy
    from thinc.api import require_gpu

    from .profiling import load_texts, profile_markdown, profile_pipeline

    if not data_path.exists():
        msg.fail(f"No such data file: {data_path}", exits=1)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    config = {"components.transformer.model.int8": int8} if int8 else {}
    try:
        nlp = spacy.load(model, config=config)
        texts = load_texts(data_path, limit=limit, sentences=sentences)
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    result = profile_pipeline(nlp, texts, batch_size=batch_size)
    label = f"{model}{' (int8 ' + int8 + ')' if int8 else ''}"
    data = f"{data_path}, first {limit or 'all'} docs{', one text per sentence' if sentences else ''}, batch {batch_size}"
    write_report(output, profile_markdown(result, label, data, describe_machine(gpu_id)), result)


@app.command("benchmark")
def benchmark_cli(
    systems: str = typer.Argument(..., help="NAME=FOLDER_OR_CONFIG[@int8:PARTS][@group_rows:N][@bf16:true] pairs, comma-separated"),
    data_path: Path = typer.Argument(..., help="A .spacy file, e.g. corpus/test.spacy"),
    anchor: str = typer.Option("", "--anchor", "-a", help="The system the ratios are against (default: the last)"),
    train_path: Optional[Path] = typer.Option(None, "--train", help="A .spacy file to initialise config systems on"),
    output: Path = typer.Option(Path("results/benchmark_cpu.md"), "--output", "-o", help="Markdown table; JSON beside it"),
    rounds: int = typer.Option(3, "--rounds", "-r", min=1, help="Interleaved rounds"),
    limit: int = typer.Option(0, "--limit", min=0, help="Use the first N docs (0: all)"),
    units: str = typer.Option("sentences,docs", "--units", help="sentences, docs or both"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
) -> None:
    """Words/s of several pipelines in one process, in interleaved rounds, on
    single sentences and on whole docs, with each one's ratio to the anchor.
    A system is a trained pipeline folder, optionally loaded with an int8 part
    (`@int8:attention`) and/or encoder length groups (`@group_rows:16`), or a
    config to build and initialise (speed only)."""
    import sys

    from thinc.api import require_gpu

    from .benchmark import UNITS, benchmark_markdown, describe_options, load_system, load_units, parse_system, run_benchmark

    try:
        specs = [parse_system(s.strip()) for s in systems.split(",") if s.strip()]
        chosen_units = [u.strip() for u in units.split(",") if u.strip()]
        if not specs:
            raise ValueError("Give at least one system")
        bad = [u for u in chosen_units if u not in UNITS]
        if bad or not chosen_units:
            raise ValueError(f"--units: use {' and/or '.join(UNITS)}, got '{units}'")
        anchor = anchor or specs[-1][0]
        if anchor not in {name for name, _, _ in specs}:
            raise ValueError(f"--anchor {anchor} is not one of the systems")
        if not data_path.exists():
            raise ValueError(f"No such data file: {data_path}")
        if gpu_id >= 0:
            require_gpu(gpu_id)
        loaded, described = {}, {}
        for name, path, options in specs:
            nlp, trained = load_system(path, options, train_path)
            loaded[name] = nlp
            described[name] = f"{path}{describe_options(options)}{'' if trained else ' (untrained: speed only)'}"
        all_units = load_units(data_path, limit=limit)
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    results = run_benchmark(loaded, {u: all_units[u] for u in chosen_units}, rounds=rounds, batch_size=batch_size)
    command = "python -m spacy_posattn benchmark " + " ".join(sys.argv[2:])
    write_report(output, benchmark_markdown(results, anchor, described, describe_machine(gpu_id), command, batch_size), results)


@app.command("significance")
def significance_cli(
    systems: str = typer.Argument(..., help="NAME=FOLDER[@crf_weight:W][@pos_crf_weight:W]... comma-separated; the first is the reference"),
    data_path: Path = typer.Argument(..., help="A .spacy file of gold Docs, e.g. corpus/test.spacy"),
    output: Path = typer.Option(Path("results/significance.md"), "--output", "-o", help="Markdown report; JSON beside it"),
    samples: int = typer.Option(1000, "--samples", "-n", min=1, help="Bootstrap samples"),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to use, -1 for CPU"),
) -> None:
    """Entity F1 of trained pipelines on the same gold-token Docs, with 95 %
    bootstrap intervals, per type too, and each one's paired difference from
    the first: how sure a gap between two rows of a table is."""
    import sys

    from spacy.tokens import DocBin
    from thinc.api import require_gpu

    from .benchmark import describe_options, load_system, parse_system
    from .readers import unannotated_copy
    from .significance import entity_counts, paired_bootstrap, significance_markdown

    try:
        specs = [parse_system(s.strip()) for s in systems.split(",") if s.strip()]
        if not specs:
            raise ValueError("Give at least one system")
        names = [name for name, _, _ in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"System names must differ, got {', '.join(names)}")
        for name, path, _ in specs:
            if not Path(path).is_dir():
                raise ValueError(f"{name}: {path} is not a trained pipeline folder")
        if not data_path.exists():
            raise ValueError(f"No such data file: {data_path}")
        if gpu_id >= 0:
            require_gpu(gpu_id)
        predicted, described, gold = {}, {}, None
        for name, path, options in specs:
            nlp, _ = load_system(path, options, None)
            if gold is None:
                gold = list(DocBin().from_disk(data_path).get_docs(nlp.vocab))
            msg.info(f"{name}: predicting {len(gold):,} docs")
            predicted[name] = list(nlp.pipe([unannotated_copy(doc) for doc in gold], batch_size=batch_size))
            described[name] = f"{path}{describe_options(options)}"
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    labels = sorted({e.label_ for docs in [gold, *predicted.values()] for doc in docs for e in doc.ents})
    counts = {name: entity_counts(gold, docs, labels) for name, docs in predicted.items()}
    result = paired_bootstrap(counts, labels, n_samples=samples, seed=seed)
    command = "python -m spacy_posattn significance " + " ".join(sys.argv[2:])
    write_report(output, significance_markdown(result, described, describe_machine(gpu_id), command, str(data_path)), result)


@app.command("calibrate")
def calibrate_cli(
    model: str = typer.Argument(..., help="Pipeline folder or installed package"),
    dev_path: Path = typer.Argument(..., help="A .spacy file with gold docs, e.g. corpus/dev.spacy"),
    output_dir: Path = typer.Argument(..., help="Where to write the calibrated copy of the pipeline"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the fit (log loss and ECE before/after) as JSON here"),
    component: str = typer.Option("posattn_ner", "--component", "-c"),
) -> None:
    """Fit the temperature of the entity confidences on dev data and write a
    copy of the pipeline with it set (`confidence_temperature`); the predicted
    entities are unchanged."""
    import json

    import spacy
    from spacy.tokens import DocBin

    from .calibration import fit_temperature

    if not dev_path.exists():
        msg.fail(f"No such data file: {dev_path}", exits=1)
    try:
        nlp = spacy.load(model)
        if component not in nlp.pipe_names:
            raise ValueError(f"The pipeline has no component '{component}' (it has {', '.join(nlp.pipe_names)})")
        gold = list(DocBin().from_disk(dev_path).get_docs(nlp.vocab))
        fit = fit_temperature(nlp, gold, component=component)
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    before, after = fit["before"], fit["after"]
    msg.info(f"{fit['entities']:,} predicted entities on {dev_path}")
    msg.info(f"temperature {before['temperature']:g}: log loss {before['log_loss']:.4f}, ECE {before['ece']:.3f}")
    msg.info(f"temperature {after['temperature']:g}: log loss {after['log_loss']:.4f}, ECE {after['ece']:.3f}")
    calibrated = spacy.load(model, config={f"components.{component}.confidence_temperature": fit["temperature"]})
    calibrated.to_disk(output_dir)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"model": str(model), "dev": str(dev_path), **fit}, indent=2), encoding="utf8")
    msg.good(f"Wrote {output_dir} with confidence_temperature = {fit['temperature']:g}")


@app.command("sentence-aware")
def sentence_aware_cli(
    model: str = typer.Argument(..., help="Pipeline folder saved without a sentencizer"),
    output_dir: Path = typer.Argument(..., help="Where to write the sentence-aware copy"),
    transformer: str = typer.Option("transformer", "--transformer", help="The transformer component's name"),
) -> None:
    """Write a copy of a pipeline saved without a sentencizer that predicts
    sentence by sentence, as today's configs do: a sentencizer in front, the
    encoder on `spacy-posattn.sentence_spans.v1` (window and stride kept). The
    weights are unchanged; one-sentence Docs get the same predictions."""
    from .span_getters import load_sentence_aware

    try:
        nlp = load_sentence_aware(model, transformer=transformer)
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    nlp.to_disk(output_dir)
    msg.good(f"Wrote {output_dir}: {', '.join(nlp.pipe_names)}")


@app.command("train-crf")
def train_crf_cli(
    model: str = typer.Argument(..., help="Trained pipeline folder, e.g. training/posattn_minilm/model-best"),
    train_path: Path = typer.Argument(..., help="A .spacy file with gold docs (tokens, POS tags, entities)"),
    dev_path: Path = typer.Argument(..., help="A .spacy file with gold docs, to choose the CRF's weight"),
    output_dir: Path = typer.Argument(..., help="Where to write the pipeline with its CRF"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the weight chosen and the dev F1 of each as JSON here"),
    weights: str = typer.Option("0,0.1,0.2,0.3,0.4,0.5,0.6,0.7", "--weights", help="Comma-separated weights to try, in [0, 1]"),
    c1: float = typer.Option(0.1, "--c1", help="L1 regularization coefficient"),
    c2: float = typer.Option(0.1, "--c2", help="L2 regularization coefficient"),
    max_iterations: int = typer.Option(100, "--max-iterations", min=1, help="The most L-BFGS iterations"),
    features: str = typer.Option("paper", "--features", help="CRF feature set: 'paper' (the CRF baseline's) or 'extended' (adds shape, prefixes, words two away, bigrams)"),
    component: str = typer.Option("posattn_ner", "--component", "-c"),
    pos_iterations: int = typer.Option(60, "--pos-iterations", min=0, help="The POS CRF's L-BFGS iterations (0: no POS CRF; the tagger stays as it is)"),
    pos_weights: str = typer.Option("0,0.1,0.2,0.3,0.4,0.5,0.6,0.7", "--pos-weights", help="Comma-separated POS CRF weights to try, in [0, 1]"),
    pos_c2: float = typer.Option(0.01, "--pos-c2", help="The POS CRF's L2 regularization coefficient"),
    tagger: str = typer.Option("tagger", "--tagger", help="The tagger component, which gets the POS CRF"),
) -> None:
    """Train the entity recognizer's feature CRF, and a POS CRF for the tagger,
    on the gold training docs (at the same time, on two cores), and choose
    each one's weight in the average with its network on dev data; write a
    copy of the pipeline with both (`crf_weight`). With a POS CRF the tagger
    becomes a `posattn_tagger` (spaCy's tagger plus the CRF mix)."""
    import json

    import spacy
    from spacy.tokens import DocBin

    from .crf_training import train_pipeline_crf
    from .pipeline.feature_crf import POS_FEATURE_SETS

    for path in (train_path, dev_path):
        if not path.exists():
            msg.fail(f"No such data file: {path}", exits=1)
    tried: Dict[str, List[float]] = {}
    for option, value in (("--weights", weights), ("--pos-weights", pos_weights)):
        try:
            tried[option] = [float(w) for w in value.split(",") if w.strip()]
        except ValueError:
            msg.fail(f"{option} must be comma-separated numbers, got {value!r}", exits=1)
    if features not in POS_FEATURE_SETS:  # the entity CRF's sets (they read POS tags)
        msg.fail(f"--features must be one of {', '.join(POS_FEATURE_SETS)}, got {features!r}", exits=1)
    # The config is rebuilt from the load-time settings: the tagger's factory and both
    # weights are set there (as calibrate does for the temperature).
    overrides = {f"components.{tagger}.factory": "posattn_tagger"} if pos_iterations else {}
    try:
        nlp = spacy.load(model, config=overrides)
        train_docs = list(DocBin().from_disk(train_path).get_docs(nlp.vocab))
        dev_docs = list(DocBin().from_disk(dev_path).get_docs(nlp.vocab))
        fit = train_pipeline_crf(
            nlp, train_docs, dev_docs, component=component, weights=tried["--weights"], c1=c1, c2=c2,
            max_iterations=max_iterations, features=features, tagger=tagger, pos_weights=tried["--pos-weights"],
            pos_c2=pos_c2, pos_iterations=pos_iterations, train_source=str(train_path), log=msg.info,
        )
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    overrides[f"components.{component}.crf_weight"] = fit["weight"]
    if fit["pos"] is not None:
        overrides[f"components.{tagger}.crf_weight"] = fit["pos"]["weight"]
    mixed = spacy.load(model, config=overrides)
    mixed.get_pipe(component).crf = nlp.get_pipe(component).crf
    if fit["pos"] is not None:
        mixed.get_pipe(tagger).crf = nlp.get_pipe(tagger).crf
    mixed.to_disk(output_dir)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(
            json.dumps({"model": str(model), "train": str(train_path), "dev": str(dev_path), **fit}, indent=2),
            encoding="utf8",
        )
    chosen = f"{fit['weight']:g}"
    pos = ""
    if fit["pos"] is not None:
        pos_chosen = f"{fit['pos']['weight']:g}"
        pos = f"; {tagger} crf_weight = {pos_chosen} (dev tag accuracy {fit['pos']['dev_tag_acc'][pos_chosen]:.2f})"
    msg.good(f"Wrote {output_dir} with crf_weight = {chosen} (dev entity F1 {fit['dev_f1'][chosen]:.2f}){pos}")


@app.command("refit-crf")
def refit_crf_cli(
    model: str = typer.Argument(..., help="Pipeline folder with its CRFs, e.g. training/posattn_minilm/model-calibrated"),
    data_paths: List[Path] = typer.Argument(..., help="Gold .spacy files to train on together, e.g. corpus/train.spacy corpus/dev.spacy"),
    output_dir: Path = typer.Option(..., "--output", "-o", help="Where to write the pipeline with the refit CRFs"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the refit's size and time as JSON here"),
    c1: float = typer.Option(0.1, "--c1", help="The entity CRF's L1 regularization coefficient"),
    c2: float = typer.Option(0.1, "--c2", help="The entity CRF's L2 regularization coefficient"),
    max_iterations: int = typer.Option(100, "--max-iterations", min=1, help="The entity CRF's L-BFGS iterations"),
    pos_iterations: int = typer.Option(60, "--pos-iterations", min=0, help="The POS CRF's L-BFGS iterations (0: keep it as it is)"),
    pos_c2: float = typer.Option(0.01, "--pos-c2", help="The POS CRF's L2 regularization coefficient"),
    component: str = typer.Option("posattn_ner", "--component", "-c"),
    tagger: str = typer.Option("tagger", "--tagger", help="The tagger component (its POS CRF is refit if it has one)"),
) -> None:
    """Train a pipeline's feature CRFs again on several gold files together
    (train + dev, after `train-crf` chose their weights and `calibrate` the
    temperature on dev), with their own feature sets; the weights and every
    other setting stay. Use the same CRF settings as `train-crf`."""
    import json

    import spacy
    from spacy.tokens import DocBin

    from .crf_training import refit_pipeline_crfs

    for path in data_paths:
        if not path.exists():
            msg.fail(f"No such data file: {path}", exits=1)
    try:
        nlp = spacy.load(model)
        docs = [doc for path in data_paths for doc in DocBin().from_disk(path).get_docs(nlp.vocab)]
        fit = refit_pipeline_crfs(
            nlp, docs, component=component, tagger=tagger, c1=c1, c2=c2, max_iterations=max_iterations,
            pos_c2=pos_c2, pos_iterations=pos_iterations, source=" + ".join(map(str, data_paths)), log=msg.info,
        )
    except (OSError, ValueError) as err:
        msg.fail(str(err), exits=1)
    nlp.to_disk(output_dir)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"model": str(model), "data": [str(p) for p in data_paths], **fit}, indent=2), encoding="utf8")
    msg.good(f"Wrote {output_dir}: CRFs refit on {fit['sequences']:,} sequences in {fit['seconds']:.0f} s")


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline folder or installed package name"),
    inputs: str = typer.Argument(..., help="A .jsonl, .parquet or .txt file, a folder of them, or a glob (quoted)"),
    output_dir: Path = typer.Argument(..., help="Folder for NAME.FORMAT, NAME.rejects.jsonl, _done/ and summary.json"),
    text_key: str = typer.Option("text", "--text-key", help="Field or column holding the text"),
    id_key: Optional[str] = typer.Option(None, "--id-key", help="Field or column holding an id (default: FILE:LINE or FILE:ROW)"),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="Output format: jsonl or parquet"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Texts per nlp.pipe call in each worker"),
    workers: int = typer.Option(0, "--workers", "-w", min=0, help="Actors, each with one torch thread (0: this machine's cores)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)"),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs per actor (e.g. 1, or 0.5 to share)"),
    with_tokens: bool = typer.Option(False, "--with-tokens", help="Add each token's text, offset and POS tag"),
) -> None:
    """Annotate a large corpus with Ray Data: entities (with confidences) per
    text, bad records to a rejects file, complete files skipped on rerun."""
    from .annotate import AnnotateError, annotate

    try:
        summary = annotate(
            model, inputs, output_dir, text_key=text_key, id_key=id_key, fmt=fmt, batch_size=batch_size,
            workers=workers or None, address=address, gpus_per_worker=gpus_per_worker, with_tokens=with_tokens,
        )
    except AnnotateError as err:
        msg.fail(str(err), exits=1)
    s = summary
    skipped = f", {len(s.skipped_files)} skipped (complete)" if s.skipped_files else ""
    msg.good(
        f"{s.files} file(s){skipped}: {s.read:,} records read, {s.annotated:,} annotated, {s.rejected:,} rejected; "
        f"{s.words:,} words in {s.seconds:.1f} s ({s.words_per_second:,.0f} words/s; Ray start-up {s.ray_start_seconds:.1f} s)"
    )
    for reason, n in sorted(s.rejects_by_reason.items()):
        msg.info(f"rejected: {n:,} x {reason}")
    msg.info(f"Summary in {output_dir / 'summary.json'}")
