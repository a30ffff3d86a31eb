"""Command-line interface: `python -m spacy_posattn COMMAND`."""

from pathlib import Path
from typing import Any, Dict

import typer
from wasabi import msg

from .convert import DEFAULT_N_SENTS, ConversionError, convert

app = typer.Typer(
    name="spacy-posattn",
    help="spacy-posattn command-line tools.",
    add_completion=False,
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """spacy-posattn command-line tools."""


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
) -> None:
    """Score entities (strict, seqeval = spaCy), the paper's token-level flat F1,
    POS accuracy and words/s, and write JSON plus a Markdown report."""
    import spacy
    from thinc.api import require_gpu

    from .evaluate import evaluate_path, write_reports

    if not data_path.exists():
        msg.fail(f"No such data file: {data_path}. Run `python -m spacy_posattn convert` first.", exits=1)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    nlp = spacy.load(model)
    scores = evaluate_path(nlp, data_path, batch_size=batch_size)
    scores.update(model=str(model), data=str(data_path), machine=machine or describe_machine(gpu_id))
    md_path = write_reports(scores, output, title=f"{Path(model).name} on {data_path.name}")
    print(md_path.read_text(encoding="utf8"))
    msg.good(f"Wrote {output} and {md_path}")


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


def describe_machine(gpu_id: int) -> str:
    """RETURNS (str): The GPU's name, or the CPU count, for reports."""
    import os
    import platform

    import torch

    if gpu_id >= 0:
        return f"GPU: {torch.cuda.get_device_name(gpu_id)}"
    return f"CPU: {os.cpu_count()} cores ({platform.machine()}), {torch.get_num_threads()} torch threads"
