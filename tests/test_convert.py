import hashlib
import os
import time
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest
import srsly
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_posattn.cli import app
from spacy_posattn.convert import (
    EMPTY_WORD,
    ConversionError,
    Corpus,
    Sentence,
    convert,
    make_docs,
    read_corpus,
    split_sentences,
    summarize,
)

# The README's location beside the repo, or GMB_ZIP in the environment.
GMB_ZIP = Path(os.environ.get("GMB_ZIP", Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "gmb" / "ner_dataset.csv.zip"))
HEADER = b"Sentence #,Word,POS,Tag\r\n"
# Ten sentences: 8 train, 1 dev, 1 test. Line numbers are in the comments.
SENTENCES = [
    [  # lines 2-8
        (b"Thousands", b"NNS", b"O"),
        (b"of", b"IN", b"O"),
        (b"demonstrators", b"NNS", b"O"),
        (b"marched", b"VBD", b"O"),
        (b"through", b"IN", b"O"),
        (b"London", b"NNP", b"B-geo"),
        (b".", b".", b"O"),
    ],
    [  # lines 9-17
        (b"Iran", b"NNP", b"B-gpe"),
        (b"\x92s", b"POS", b"O"),  # cp1252 right single quote
        (b'"10,000"', b"CD", b"O"),  # quoted word with a comma
        (b"New", b"NNP", b"B-org"),
        (b"York", b"NNP", b"I-org"),
        (b"Times", b"NNP", b"I-org"),
        (b"\x85", b":", b"O"),  # cp1252 ellipsis (whitespace if read as Latin-1)
        (b"5\xa0storm", b"NN", b"O"),  # word with a no-break space
        (b".", b".", b"O"),
    ],
    [  # lines 18-23
        (b'""""', b"``", b"O"),  # a double-quote word
        (b"Mr.", b"NNP", b"B-per"),
        (b"Bush", b"NNP", b"I-per"),
        (b"spoke", b"VBD", b"O"),
        (b"Monday", b"NNP", b"B-tim"),
        (b".", b".", b"O"),
    ],
] + [
    [(b"Word%d" % i, b"NNP", b"B-geo"), (b"ran", b"VBD", b"O"), (b".", b".", b"O")]
    for i in range(4, 11)
]
N_TOKENS = sum(len(sent) for sent in SENTENCES)  # 43
N_LINES = N_TOKENS + 1


def make_csv(sentences: List[list] = SENTENCES, header: bytes = HEADER) -> bytes:
    lines = [header]
    for i, sent in enumerate(sentences, 1):
        for j, (word, pos, tag) in enumerate(sent):
            marker = b"Sentence: %d" % i if j == 0 else b""
            lines.append(b",".join([marker, word, pos, tag]) + b"\r\n")
    return b"".join(lines)


def write(path: Path, data: bytes) -> Path:
    with open(path, "wb") as file_:
        file_.write(data)
    return path


def load(path: Path) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(Vocab()))


def hashes(output_dir: Path) -> Dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(output_dir.iterdir())
    }


def error_for(tmp_path: Path, data: bytes, name: str = "bad.csv") -> str:
    path = write(tmp_path / name, data)
    with pytest.raises(ConversionError) as excinfo:
        convert(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written on error
    return str(excinfo.value)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write(tmp_path / "ner_dataset.csv", make_csv())


def test_split_sizes():
    for n, sizes in [(47959, [38367, 4796, 4796]), (10, [8, 1, 1]), (1, [1, 0, 0])]:
        splits = split_sentences([Sentence(i) for i in range(1, n + 1)])
        assert [len(s) for s in splits.values()] == sizes
        assert [s.number for split in splits.values() for s in split] == list(
            range(1, n + 1)
        )


def test_round_trip(csv_path: Path, tmp_path: Path):
    summary = convert(csv_path, tmp_path / "out", n_sents=1)
    train = load(tmp_path / "out" / "train.spacy")
    dev, test = load(tmp_path / "out" / "dev.spacy"), load(
        tmp_path / "out" / "test.spacy"
    )
    assert [len(train), len(dev), len(test)] == [8, 1, 1]
    doc = train[1]
    words = [
        "Iran",
        "\u2019s",
        "10,000",
        "New",
        "York",
        "Times",
        "\u2026",
        "5\xa0storm",
        ".",
    ]
    assert [t.text for t in doc] == words
    assert doc.text == " ".join(words)
    assert [t.tag_ for t in doc] == [
        "NNP",
        "POS",
        "CD",
        "NNP",
        "NNP",
        "NNP",
        ":",
        "NN",
        ".",
    ]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Iran", "gpe"),
        ("New York Times", "org"),
    ]
    assert [t.is_sent_start for t in doc] == [True] + [False] * 8
    assert doc.has_annotation("SENT_START")
    assert list(doc.user_data["gmb_sentences"]) == [2, 2]
    assert train[2][0].text == '"'
    assert [(e.text, e.label_) for e in train[2].ents] == [
        ("Mr. Bush", "per"),
        ("Monday", "tim"),
    ]
    assert list(dev[0].user_data["gmb_sentences"]) == [9, 9]
    assert list(test[0].user_data["gmb_sentences"]) == [10, 10]
    assert test[0].text == "Word10 ran ."
    splits = summary["splits"]
    assert [splits[s]["tokens"] for s in ("train", "dev", "test")] == [
        N_TOKENS - 6,
        3,
        3,
    ]
    assert [splits[s]["entities"] for s in ("train", "dev", "test")] == [10, 1, 1]
    assert splits["train"]["entities_per_type"] == {
        "geo": 6,
        "gpe": 1,
        "org": 1,
        "per": 1,
        "tim": 1,
    }
    assert (splits["train"]["first_sentence"], splits["train"]["last_sentence"]) == (
        1,
        8,
    )
    assert summary["rows"] == N_TOKENS
    assert summary["warnings"] == []
    assert srsly.read_json(tmp_path / "out" / "summary.json") == summary


def test_zip_gives_same_docs(csv_path: Path, tmp_path: Path):
    zip_path = tmp_path / "ner_dataset.csv.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zip_file:
        zip_file.write(csv_path, "ner_dataset.csv")
    summary = convert(zip_path, tmp_path / "from_zip")
    convert(csv_path, tmp_path / "from_csv")
    assert summary["input"] == f"{zip_path} (ner_dataset.csv)"
    zipped, plain = hashes(tmp_path / "from_zip"), hashes(tmp_path / "from_csv")
    for name in ("train.spacy", "dev.spacy", "test.spacy"):
        assert zipped[name] == plain[name]


def test_n_sents_groups_within_splits(csv_path: Path, tmp_path: Path):
    summary = convert(csv_path, tmp_path / "out", n_sents=3)
    train = load(tmp_path / "out" / "train.spacy")
    assert [list(d.user_data["gmb_sentences"]) for d in train] == [
        [1, 3],
        [4, 6],
        [7, 8],
    ]
    assert [len(list(d.sents)) for d in train] == [3, 3, 2]
    assert [
        list(d.user_data["gmb_sentences"]) for d in load(tmp_path / "out" / "dev.spacy")
    ] == [[9, 9]]
    assert [summary["splits"][s]["docs"] for s in ("train", "dev", "test")] == [3, 1, 1]
    assert summary["splits"]["train"]["sentences"] == 8
    assert summary["splits"]["train"]["entities"] == 10
    assert len(train[0]) == 7 + 9 + 6
    for doc in train:
        for ent in doc.ents:
            assert ent.sent.start <= ent.start and ent.end <= ent.sent.end


def test_n_sents_must_be_positive(csv_path: Path, tmp_path: Path):
    with pytest.raises(ValueError):
        convert(csv_path, tmp_path / "out", n_sents=0)


def test_deterministic(csv_path: Path, tmp_path: Path):
    convert(csv_path, tmp_path / "a", n_sents=2)
    convert(csv_path, tmp_path / "b", n_sents=2)
    first, second = hashes(tmp_path / "a"), hashes(tmp_path / "b")
    assert sorted(first) == ["dev.spacy", "summary.json", "test.spacy", "train.spacy"]
    assert first == second


def test_i_start_repairs(tmp_path: Path):
    sentences = [list(s) for s in SENTENCES]
    sentences[0][0] = (b"Thousands", b"NNS", b"I-geo")  # line 2: sentence start
    sentences[0][3] = (b"marched", b"VBD", b"I-tim")  # line 5: after O
    sentences[1][4] = (
        b"York",
        b"NNP",
        b"I-geo",
    )  # line 13: after B-org; line 14 I-org after it
    sentences[8][2] = (b".", b".", b"I-geo")  # line 41: after O
    sentences[9][0] = (b"Word10", b"NNP", b"I-geo")  # line 42: sentence start after O
    path = write(tmp_path / "in.csv", make_csv(sentences))
    summary = convert(path, tmp_path / "out", n_sents=1)
    train = load(tmp_path / "out" / "train.spacy")
    assert [(e.text, e.label_) for e in train[0].ents] == [
        ("Thousands", "geo"), ("marched", "tim"), ("London", "geo")
    ]  # fmt: skip
    assert [(e.text, e.label_) for e in train[1].ents] == [
        ("Iran", "gpe"), ("New", "org"), ("York", "geo"), ("Times", "org")
    ]  # fmt: skip
    splits = summary["splits"]
    assert [splits[s]["repairs"]["i_start"] for s in ("train", "dev", "test")] == [
        4,
        1,
        1,
    ]
    assert [splits[s]["entities"] for s in ("train", "dev", "test")] == [
        10 + 4,
        1 + 1,
        1,
    ]
    assert (
        "6 I- tag(s) start an entity and were read as B- (lines 2, 5, 13, 14, 41, ...)"
        in summary["warnings"]
    )
    dev = load(tmp_path / "out" / "dev.spacy")[0]
    assert [(e.text, e.label_) for e in dev.ents] == [("Word9", "geo"), (".", "geo")]


def test_i_continuing_across_sentences_is_repaired(tmp_path: Path):
    sentences = [list(s) for s in SENTENCES]
    sentences[3][2] = (b".", b".", b"B-geo")  # sentence 4 ends inside an entity
    sentences[4][0] = (b"Word5", b"NNP", b"I-geo")  # sentence 5 continues it
    path = write(tmp_path / "in.csv", make_csv(sentences))
    summary = convert(path, tmp_path / "out", n_sents=8)
    doc = load(tmp_path / "out" / "train.spacy")[0]
    ents = [(e.text, e.label_) for e in doc.ents]
    assert (".", "geo") in ents and ("Word5", "geo") in ents
    assert summary["splits"]["train"]["repairs"]["i_start"] == 1


def test_empty_word_repair(tmp_path: Path):
    sentences = [list(s) for s in SENTENCES]
    sentences[0][1] = (b"", b"IN", b"O")  # line 3
    sentences[2][3] = (b"  ", b"VBD", b"O")  # line 21
    path = write(tmp_path / "in.csv", make_csv(sentences))
    summary = convert(path, tmp_path / "out", n_sents=1)
    train = load(tmp_path / "out" / "train.spacy")
    assert train[0][1].text == EMPTY_WORD
    assert train[2][3].text == EMPTY_WORD
    assert len(train[0]) == 7
    assert summary["splits"]["train"]["repairs"]["empty_word"] == 2
    assert summary["splits"]["train"]["tokens"] == N_TOKENS - 6
    assert (
        f"2 empty word(s) kept as {EMPTY_WORD!r} (lines 3, 21)" in summary["warnings"]
    )


def test_truncated_last_sentence_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sentences = SENTENCES[:-1] + [
        [(b"Indian", b"JJ", b"B-gpe"), (b"forces", b"NNS", b"O")]
    ]
    path = write(tmp_path / "in.csv", make_csv(sentences))
    summary = convert(path, tmp_path / "out")
    assert summary["splits"]["test"]["tokens"] == 2  # kept
    assert len(summary["warnings"]) == 1
    assert (
        "last sentence 10 does not end with sentence-final punctuation"
        in summary["warnings"][0]
    )
    assert "'Indian forces'" in summary["warnings"][0]
    # A closing quote after the full stop is a complete sentence
    sentences[-1] = sentences[-1] + [(b".", b".", b"O"), (b'""""', b"''", b"O")]
    path = write(tmp_path / "in.csv", make_csv(sentences))
    assert convert(path, tmp_path / "out")["warnings"] == []
    monkeypatch.setattr("spacy_posattn.convert.SPREADSHEET_ROWS", N_TOKENS + 1)
    summary = convert(path, tmp_path / "out")
    assert summary["warnings"] == [
        f"{N_TOKENS + 1} data rows, exactly the old spreadsheet row limit: "
        "the file may have been cut there"
    ]


def test_empty_split_warns(tmp_path: Path):
    path = write(tmp_path / "in.csv", make_csv(SENTENCES[:4]))
    summary = convert(path, tmp_path / "out")
    assert [summary["splits"][s]["sentences"] for s in ("train", "dev", "test")] == [
        4,
        0,
        0,
    ]
    assert summary["warnings"] == ["dev split is empty", "test split is empty"]
    assert load(tmp_path / "out" / "dev.spacy") == []


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"", ["is empty", "'Sentence #', 'Word', 'POS', 'Tag'"]),
        (HEADER, ["has a header but no data rows"]),
        (
            b"Sentence,Word,POS\r\nSentence: 1,a,DT,O\r\n",
            ["line 1", "not the GMB CSV", "['Sentence', 'Word', 'POS']"],
        ),
        (
            b"\x00\x01\x02PK\x03\x04\xff\xfe\x00junk" * 50,
            ["line 1", "not the GMB CSV", "expected the header"],
        ),
        (
            make_csv().replace(b",of,", b",o\x81f,"),
            ["line 3", "byte 0x81", "Windows-1252"],
        ),
        (
            make_csv().replace(b",of,IN,O", b",of,IN,O,extra"),
            ["line 3", "5 columns, expected 4", "'extra'"],
        ),
        (
            make_csv() + b"Sentence: 11,Trunc",
            ["line 45", "2 columns, expected 4", "'Trunc'"],
        ),
        (make_csv().replace(b",of,IN,O\r\n", b"\r\n"), ["line 3", "0 columns"]),
        (
            make_csv().replace(b"London,NNP,B-geo", b"London,NNP,B-Geo"),
            ["line 7", "bad tag 'B-Geo'"],
        ),
        (
            make_csv().replace(b"London,NNP,B-geo", b"London,NNP,GEO"),
            ["line 7", "bad tag 'GEO'"],
        ),
        (
            make_csv().replace(b"London,NNP,B-geo", b"London,NNP,B-"),
            ["line 7", "bad tag 'B-'"],
        ),
        (
            make_csv().replace(b"York,NNP,I-org", b"York,NNP,I-org-x"),
            ["line 13", "bad tag 'I-org-x'"],
        ),
        (make_csv().replace(b",of,IN,O", b",of,,O"), ["line 3", "empty POS tag"]),
        (
            make_csv().replace(b"Sentence: 1,", b","),
            ["line 2", "before the first 'Sentence: N' marker"],
        ),
        (
            make_csv().replace(b"Sentence: 2,", b"Sentence: x,"),
            ["line 9", "malformed marker 'Sentence: x'"],
        ),
        (
            make_csv().replace(b"Sentence: 3,", b"Sentence: 4,"),
            ["line 18", "'Sentence: 4' follows sentence 2"],
        ),
    ],
)
def test_bad_input(tmp_path: Path, data: bytes, expected: List[str]):
    message = error_for(tmp_path, data)
    assert message.startswith(str(tmp_path / "bad.csv"))
    for text in expected:
        assert text in message


def test_bad_zip(tmp_path: Path):
    zip_path = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path, "w") as zip_file:
        zip_file.writestr("README.txt", "no csv here")
    with pytest.raises(
        ConversionError,
        match=r"bad\.zip: expected a zip with one \.csv member.*README\.txt",
    ):
        convert(zip_path, tmp_path / "out")
    message = error_for(tmp_path, make_csv(), name="not_a.zip")
    assert message == f"{tmp_path / 'not_a.zip'}: not a valid zip file"
    with zipfile.ZipFile(zip_path, "w") as zip_file:
        zip_file.writestr(
            "data/ner_dataset.csv", make_csv().replace(b"B-geo", b"B-GEO", 1)
        )
    with pytest.raises(
        ConversionError,
        match=r"bad\.zip \(data/ner_dataset\.csv\), line 7: bad tag 'B-GEO'",
    ):
        convert(zip_path, tmp_path / "out")


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConversionError, match="missing.csv: no such file"):
        convert(tmp_path / "missing.csv", tmp_path / "out")


def test_reconciliation_check(csv_path: Path):
    corpus = read_corpus(csv_path)
    sents = split_sentences(corpus.sentences)
    docs = {split: make_docs(s, 1) for split, s in sents.items()}
    summarize(corpus, sents, docs, 1)
    read = f"'sentences': 10, 'tokens': {N_TOKENS}, 'entities': 12"
    docs["dev"] = []  # lose a Doc
    with pytest.raises(ConversionError) as excinfo:
        summarize(corpus, sents, docs, 1)
    assert f"do not reconcile: read {{{read}}}" in str(excinfo.value)
    assert (
        f"converted {{'sentences': 9, 'tokens': {N_TOKENS - 3}, 'entities': 11}}"
        in (str(excinfo.value))
    )
    docs = {split: make_docs(s, 1) for split, s in sents.items()}
    bad = Corpus(corpus.source, corpus.sentences, corpus.rows, corpus.b_tags + 1)
    with pytest.raises(ConversionError, match="'entities': 13}.*'entities': 12}"):
        summarize(bad, sents, docs, 1)


def test_cli(csv_path: Path, tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["convert", str(csv_path), str(tmp_path / "out"), "--n-sents", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "37" in result.output
    assert srsly.read_json(tmp_path / "out" / "summary.json")["n_sents"] == 2
    assert len(load(tmp_path / "out" / "train.spacy")) == 4
    bad = write(
        tmp_path / "bad.csv",
        make_csv().replace(b"London,NNP,B-geo", b"London,NNP,B-Geo"),
    )
    result = runner.invoke(app, ["convert", str(bad), str(tmp_path / "out2")])
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # wasabi wraps long messages
    assert f"{bad}, line 7: bad tag 'B-Geo'" in output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out2").exists()
    result = runner.invoke(
        app, ["convert", str(csv_path), str(tmp_path / "out3"), "--n-sents", "0"]
    )
    assert result.exit_code == 2


@pytest.mark.slow
@pytest.mark.skipif(not GMB_ZIP.exists(), reason=f"GMB corpus not at {GMB_ZIP} (set GMB_ZIP to its path)")
def test_real_corpus(tmp_path: Path):
    start = time.time()
    summary = convert(GMB_ZIP, tmp_path, n_sents=1)
    elapsed = time.time() - start
    splits = summary["splits"]
    names = ("train", "dev", "test")
    assert [splits[s]["sentences"] for s in names] == [38367, 4796, 4796]
    assert [splits[s]["tokens"] for s in names] == [839237, 105396, 103942]
    assert [splits[s]["entities"] for s in names] == [89413, 11183, 11295]
    assert [
        (splits[s]["first_sentence"], splits[s]["last_sentence"]) for s in names
    ] == [
        (1, 38367),
        (38368, 43163),
        (43164, 47959),
    ]
    assert summary["rows"] == 1048575
    totals = {
        t: sum(splits[s]["entities_per_type"].get(t, 0) for s in names)
        for t in splits["train"]["entities_per_type"]
    }
    assert totals == {
        "art": 402, "eve": 308, "geo": 37644, "gpe": 15870,
        "nat": 201, "org": 20143, "per": 16990, "tim": 20333,
    }  # fmt: skip
    assert all(splits[s]["repairs"] == {"i_start": 0, "empty_word": 0} for s in names)
    assert len(summary["warnings"]) == 2
    assert "last sentence 47959" in summary["warnings"][0]
    assert "spreadsheet row limit" in summary["warnings"][1]
    test_docs = load(tmp_path / "test.spacy")
    assert list(test_docs[-1].user_data["gmb_sentences"]) == [47959, 47959]
    assert test_docs[-1].text == "Indian forces said they responded to the attack"
    print(f"\nconverted {GMB_ZIP} in {elapsed:.1f}s")
    print(srsly.json_dumps(summary, indent=2))
