"""Convert the GMB NER corpus (Kaggle `ner_dataset.csv`) to spaCy DocBin files.

The input has the columns `Sentence #`, `Word`, `POS` and `Tag` and is encoded
as Windows-1252. A row whose `Sentence #` is `Sentence: N` starts sentence N.
Sentences are split in file order into contiguous train/dev/test blocks.
"""

import csv
import re
import zipfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Optional, Tuple

import srsly
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

DEFAULT_N_SENTS = 10  # measured: results/n_sents.md
EMPTY_WORD = "<EMPTY>"
ENCODING = "cp1252"
HEADER = ["Sentence #", "Word", "POS", "Tag"]
SPLITS = ("train", "dev", "test")
SPREADSHEET_ROWS = 1_048_575  # old spreadsheet row limit: the file may be cut there
FINAL_PUNCT = (".", "!", "?", "…")
CLOSING = "\"'”’)]}»"
MAX_LINES_SHOWN = 5
MARKER_RE = re.compile(r"Sentence: ([0-9]+)")
TAG_RE = re.compile(r"O|[BI]-[a-z0-9]+")


class ConversionError(ValueError):
    """The input is not a valid GMB `ner_dataset.csv`."""


@dataclass
class Sentence:
    number: int
    words: List[str] = field(default_factory=list)
    tags: List[str] = field(default_factory=list)
    iob: List[str] = field(default_factory=list)
    i_starts: List[int] = field(default_factory=list)  # lines of repaired I- tags
    empty_words: List[int] = field(default_factory=list)  # lines of empty words


@dataclass
class Corpus:
    source: str
    sentences: List[Sentence]
    rows: int  # data rows read
    b_tags: int  # B- tags in the input


def convert(
    input_path: Path, output_dir: Path, n_sents: int = DEFAULT_N_SENTS
) -> Dict[str, Any]:
    """Convert the GMB CSV (or its zip) to train/dev/test `.spacy` files and a
    `summary.json` in output_dir. Nothing is written if the input is invalid.

    input_path (Path): `ner_dataset.csv` or a zip holding it.
    output_dir (Path): The directory to write to.
    n_sents (int): Number of consecutive sentences per Doc.
    RETURNS (Dict[str, Any]): The summary.
    """
    corpus = read_corpus(Path(input_path))
    sents = split_sentences(corpus.sentences)
    docs = {
        split: make_docs(split_sents, n_sents) for split, split_sents in sents.items()
    }
    summary = summarize(corpus, sents, docs, n_sents)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for split, split_docs in docs.items():
        DocBin(docs=split_docs, store_user_data=True).to_disk(
            output_dir / f"{split}.spacy"
        )
    srsly.write_json(output_dir / "summary.json", summary)
    return summary


def read_corpus(path: Path) -> Corpus:
    """Read and validate the GMB CSV, repairing I- entity starts and empty words.

    path (Path): `ner_dataset.csv` or a zip holding it.
    RETURNS (Corpus): The sentences in file order, with row and B- tag counts.
    """
    sentences: List[Sentence] = []
    rows = b_tags = 0
    with open_lines(path) as (source, lines):
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
            if header is None:
                raise ConversionError(
                    f"{source} is empty: expected the header {HEADER}"
                )
            if header != HEADER:
                raise ConversionError(
                    f"{source}, line 1: not the GMB CSV: expected the header {HEADER}, "
                    f"found {_short(header)}"
                )
            for row in reader:
                _add_row(sentences, row, source, reader.line_num)
                rows += 1
                b_tags += row[3].startswith("B-")
        except csv.Error as err:
            raise ConversionError(
                f"{source}, line {reader.line_num}: invalid CSV ({err})"
            ) from None
    if not sentences:
        raise ConversionError(f"{source} has a header but no data rows")
    return Corpus(source, sentences, rows, b_tags)


@contextmanager
def open_lines(path: Path) -> Iterator[Tuple[str, Iterator[str]]]:
    """Open the CSV, or the single `.csv` member of a zip, as decoded lines.

    path (Path): The input file.
    YIELDS (Tuple[str, Iterator[str]]): A name for messages and the lines.
    """
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    is_zip = zipfile.is_zipfile(path)
    if path.suffix.lower() == ".zip" and not is_zip:
        raise ConversionError(f"{path}: not a valid zip file")
    if not is_zip:
        with path.open("rb") as file_:
            yield str(path), _decode(file_, str(path))
        return
    try:
        with zipfile.ZipFile(path) as zip_file:
            members = [n for n in zip_file.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise ConversionError(
                    f"{path}: expected a zip with one .csv member (ner_dataset.csv), "
                    f"found {zip_file.namelist()}"
                )
            source = f"{path} ({members[0]})"
            with zip_file.open(members[0]) as file_:
                yield source, _decode(file_, source)
    except zipfile.BadZipFile as err:
        raise ConversionError(f"{path}: damaged zip ({err})") from None


def _decode(file_: BinaryIO, source: str) -> Iterator[str]:
    for i, line in enumerate(file_, 1):
        try:
            yield line.decode(ENCODING)
        except UnicodeDecodeError as err:
            byte = line[err.start : err.start + 1].hex()
            raise ConversionError(
                f"{source}, line {i}: byte 0x{byte} is undefined in Windows-1252: "
                f"expected the GMB CSV in Windows-1252 (cp1252)"
            ) from None


def _add_row(sentences: List[Sentence], row: List[str], source: str, line: int) -> None:
    where = f"{source}, line {line}"
    if len(row) != len(HEADER):
        raise ConversionError(
            f"{where}: {len(row)} columns, expected {len(HEADER)} {HEADER}: "
            f"{_short(row)}"
        )
    marker, word, pos, tag = row
    if marker:
        match = MARKER_RE.fullmatch(marker)
        if not match:
            raise ConversionError(
                f"{where}: malformed marker {marker!r}, expected 'Sentence: N'"
            )
        number = int(match.group(1))
        if sentences and number != sentences[-1].number + 1:
            raise ConversionError(
                f"{where}: {marker!r} follows sentence {sentences[-1].number}, "
                f"expected consecutive sentence numbers"
            )
        sentences.append(Sentence(number))
    elif not sentences:
        raise ConversionError(
            f"{where}: data row before the first 'Sentence: N' marker"
        )
    if not TAG_RE.fullmatch(tag):
        raise ConversionError(
            f"{where}: bad tag {_short(tag)}, expected 'O', 'B-<type>' or 'I-<type>'"
        )
    if not pos.strip():
        raise ConversionError(f"{where}: empty POS tag {pos!r}")
    sent = sentences[-1]
    if not word.strip():
        word = EMPTY_WORD
        sent.empty_words.append(line)
    if tag.startswith("I-") and (not sent.iob or sent.iob[-1][2:] != tag[2:]):
        tag = "B-" + tag[2:]
        sent.i_starts.append(line)
    sent.words.append(word)
    sent.tags.append(pos)
    sent.iob.append(tag)


def split_sentences(sentences: List[Sentence]) -> Dict[str, List[Sentence]]:
    """Split in file order: first 80% train, next 10% dev, last 10% test, with
    n_dev = n_test = round(0.1 * n).

    sentences (List[Sentence]): All sentences in file order.
    RETURNS (Dict[str, List[Sentence]]): The sentences per split.
    """
    n_dev = round(0.1 * len(sentences))
    n_train = len(sentences) - 2 * n_dev
    bounds = (0, n_train, n_train + n_dev, len(sentences))
    return {
        split: sentences[bounds[i] : bounds[i + 1]] for i, split in enumerate(SPLITS)
    }


def make_docs(
    sentences: List[Sentence], n_sents: int, vocab: Optional[Vocab] = None
) -> List[Doc]:
    """Group n_sents consecutive sentences into each Doc.

    sentences (List[Sentence]): The sentences of one split.
    n_sents (int): Number of sentences per Doc (the last Doc may have fewer).
    vocab (Vocab): The vocab to use, a new one by default.
    RETURNS (List[Doc]): Docs with tags, entities, sentence starts and
        user_data["gmb_sentences"] = [first, last] sentence number.
    """
    if n_sents < 1:
        raise ValueError(f"n_sents must be at least 1, got {n_sents}")
    vocab = Vocab() if vocab is None else vocab
    docs = []
    for i in range(0, len(sentences), n_sents):
        group = sentences[i : i + n_sents]
        words = [word for sent in group for word in sent.words]
        doc = Doc(
            vocab,
            words=words,
            spaces=[True] * (len(words) - 1) + [False],
            tags=[tag for sent in group for tag in sent.tags],
            ents=[iob for sent in group for iob in sent.iob],
            sent_starts=[j == 0 for sent in group for j in range(len(sent.words))],
        )
        doc.user_data["gmb_sentences"] = [group[0].number, group[-1].number]
        docs.append(doc)
    return docs


def summarize(
    corpus: Corpus,
    sents: Dict[str, List[Sentence]],
    docs: Dict[str, List[Doc]],
    n_sents: int,
) -> Dict[str, Any]:
    """Count sentences, tokens, Docs, entities and repairs per split, reconcile
    the totals with the input and collect warnings.

    corpus (Corpus): The corpus read.
    sents (Dict[str, List[Sentence]]): The sentences per split.
    docs (Dict[str, List[Doc]]): The Docs per split.
    n_sents (int): Number of sentences per Doc.
    RETURNS (Dict[str, Any]): The summary.
    """
    splits = {}
    for split, split_sents in sents.items():
        labels = Counter(ent.label_ for doc in docs[split] for ent in doc.ents)
        splits[split] = {
            "sentences": sum(1 for doc in docs[split] for _ in doc.sents),
            "first_sentence": split_sents[0].number if split_sents else None,
            "last_sentence": split_sents[-1].number if split_sents else None,
            "tokens": sum(len(doc) for doc in docs[split]),
            "docs": len(docs[split]),
            "entities": sum(labels.values()),
            "entities_per_type": dict(sorted(labels.items())),
            "repairs": {
                "i_start": sum(len(sent.i_starts) for sent in split_sents),
                "empty_word": sum(len(sent.empty_words) for sent in split_sents),
            },
        }
    _reconcile(corpus, splits)
    return {
        "input": corpus.source,
        "n_sents": n_sents,
        "rows": corpus.rows,
        "splits": splits,
        "warnings": _warnings(corpus, splits),
    }


def _reconcile(corpus: Corpus, splits: Dict[str, Dict[str, Any]]) -> None:
    keys = ("sentences", "tokens", "entities")
    converted = {key: sum(s[key] for s in splits.values()) for key in keys}
    repaired = sum(s["repairs"]["i_start"] for s in splits.values())
    read = dict(
        zip(keys, (len(corpus.sentences), corpus.rows, corpus.b_tags + repaired))
    )
    if converted != read:
        raise ConversionError(
            f"{corpus.source}: counts do not reconcile: read {read} (entities: B- "
            f"tags + repaired I- starts), converted {converted}"
        )


def _warnings(corpus: Corpus, splits: Dict[str, Dict[str, Any]]) -> List[str]:
    sentences = corpus.sentences
    i_starts = [line for sent in sentences for line in sent.i_starts]
    empty_words = [line for sent in sentences for line in sent.empty_words]
    warnings = []
    if i_starts:
        warnings.append(
            f"{len(i_starts)} I- tag(s) start an entity and were read as B- "
            f"(lines {_show_lines(i_starts)})"
        )
    if empty_words:
        warnings.append(
            f"{len(empty_words)} empty word(s) kept as {EMPTY_WORD!r} "
            f"(lines {_show_lines(empty_words)})"
        )
    last = sentences[-1]
    tail = "".join(last.words[-3:]).rstrip(CLOSING)
    if not tail.endswith(FINAL_PUNCT):
        warnings.append(
            f"last sentence {last.number} does not end with sentence-final "
            f"punctuation ({' '.join(last.words[-3:])!r}): it may be truncated; kept"
        )
    if corpus.rows == SPREADSHEET_ROWS:
        warnings.append(
            f"{corpus.rows:,} data rows, exactly the old spreadsheet row limit: "
            f"the file may have been cut there"
        )
    warnings.extend(
        f"{split} split is empty" for split, s in splits.items() if not s["docs"]
    )
    return warnings


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _show_lines(lines: Iterable[int]) -> str:
    lines = list(lines)
    shown = ", ".join(str(line) for line in lines[:MAX_LINES_SHOWN])
    return shown + (", ..." if len(lines) > MAX_LINES_SHOWN else "")
