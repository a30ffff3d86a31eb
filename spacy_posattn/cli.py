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
