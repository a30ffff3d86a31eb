"""Annotate large corpora with a trained pipeline on Ray Data
(`python -m spacy_posattn annotate MODEL INPUT OUTPUT`).

Per input file: Ray Data reads the file (`read_binary_files`), splits it into
records with their line or row number, in blocks of one batch (`map_batches`), runs the pipeline in a pool
of actors that each load it once (`map_batches`), and the driver streams the
results into the output file and the rejects file, in input order. Ray runs
in-process on this machine by default, or joins a cluster (`--address` or
`RAY_ADDRESS`).

Records that can't be annotated (malformed JSON, an undecodable line, no text
key, a null or non-string or empty text) are never dropped: they go to
`NAME.rejects.jsonl` with their source, line or row and the reason. A file is
complete when `_done/NAME.json` exists (written last, after both outputs were
renamed into place) and records the input's size and modification time; a
rerun skips complete files and redoes the others from the start.
"""
import glob
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

INPUT_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "text"}
OUTPUT_FORMATS = ("jsonl", "parquet")
RAY_MISSING = "annotate needs Ray Data: pip install 'spacy-posattn[ray]' (or pip install 'ray[data]')"


class AnnotateError(ValueError):
    """A problem with the command's arguments, reported in one line."""


@dataclass
class Summary:
    """What an `annotate` run did."""

    files: int = 0
    skipped_files: List[str] = field(default_factory=list)
    read: int = 0
    annotated: int = 0
    rejected: int = 0
    words: int = 0
    ray_start_seconds: float = 0.0
    seconds: float = 0.0
    rejects_by_reason: Dict[str, int] = field(default_factory=dict)

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0

    def to_dict(self) -> Dict:
        return {**asdict(self), "words_per_second": self.words_per_second}


def find_inputs(spec: str) -> List[Path]:
    """RETURNS (List[Path]): The input files of a file, folder or glob, sorted."""
    path = Path(spec)
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.suffix in INPUT_SUFFIXES and p.is_file()]
    elif path.is_file():
        files = [path]
    else:
        files = [Path(p) for p in sorted(glob.glob(spec)) if Path(p).is_file()]
        if not files:
            raise AnnotateError(f"No input at {spec}: give a file, a folder or a glob of .jsonl, .parquet or .txt files")
    unknown = [str(p) for p in files if p.suffix not in INPUT_SUFFIXES]
    if unknown:
        raise AnnotateError(f"Can't read {unknown[0]}: inputs are .jsonl/.json (JSON lines), .parquet or .txt (one text per line)")
    if not files:
        raise AnnotateError(f"No .jsonl, .parquet or .txt file in {spec}")
    return files


def check_model(model: str) -> None:
    """Fail in one line if `model` is neither a pipeline folder nor an installed package."""
    from spacy.util import is_package

    if Path(model).is_dir():
        if not (Path(model) / "config.cfg").exists():
            raise AnnotateError(f"{model} is not a spaCy pipeline folder (no config.cfg)")
    elif not is_package(model):
        raise AnnotateError(f"No pipeline at {model}: give a pipeline folder or an installed package name")


def split_records(row: Dict, text_key: str = "text", id_key: Optional[str] = None) -> List[Dict]:
    """Ray Data `flat_map`: one input file (`path`, `bytes`) to its records.

    RETURNS (List[Dict]): Per record: `id`, `source`, `line` (1-based line or
        row), `text` ("" when rejected) and `reject` (the reason, or "").
    """
    path, data = row["path"], row["bytes"]
    source = Path(path).name
    kind = INPUT_SUFFIXES[Path(path).suffix]
    records = []

    def add(line: int, text, reason: str = "", record_id=None) -> None:
        if not reason:
            if text is None:
                reason = f"text key '{text_key}' is null"
            elif not isinstance(text, str):
                reason = f"text key '{text_key}' is not a string ({type(text).__name__})"
            elif not text.strip():
                reason = "empty text"
        records.append({
            "id": str(record_id) if record_id is not None else f"{source}:{line}",
            "source": source,
            "line": line,
            "text": text if not reason else "",
            "reject": reason,
        })

    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as err:  # an unreadable file is one reject, not a crash
            add(0, None, f"not a readable Parquet file: {err}")
            return records
        columns = table.column_names
        for i, item in enumerate(table.to_pylist(), start=1):
            if text_key not in columns:
                add(i, None, f"no column '{text_key}' (columns: {', '.join(columns)})")
                continue
            add(i, item[text_key], record_id=item.get(id_key) if id_key else None)
        return records
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line
    for i, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r")
        try:
            line = raw.decode("utf8")
        except UnicodeDecodeError as err:
            add(i, None, f"not UTF-8: {err.reason} at byte {err.start}")
            continue
        if kind == "text":
            add(i, line)
            continue
        if not line.strip():
            add(i, None, "blank line")
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            add(i, None, f"malformed JSON: {err.msg} at column {err.colno}")
            continue
        if not isinstance(item, dict):
            add(i, None, f"a JSON {type(item).__name__}, not an object")
        elif text_key not in item:
            add(i, None, f"no key '{text_key}'")
        else:
            add(i, item[text_key], record_id=item.get(id_key) if id_key else None)
    return records


def split_into_blocks(batch, text_key: str = "text", id_key: Optional[str] = None, rows_per_block: int = 64):
    """Ray Data `map_batches` over whole files: yields each file's records
    (`split_records`) in blocks of `rows_per_block`, so that the actors share
    one file's work."""
    import numpy

    for path, data in zip(batch["path"], batch["bytes"]):
        records = split_records({"path": path, "bytes": data}, text_key=text_key, id_key=id_key)
        for start in range(0, len(records), rows_per_block):
            chunk = records[start : start + rows_per_block]
            yield {
                key: numpy.array([r[key] for r in chunk], dtype="int64" if key == "line" else object)
                for key in ("id", "source", "line", "text", "reject")
            }


class Annotator:
    """Ray Data `map_batches` callable: loads the pipeline once per actor."""

    def __init__(self, model: str, with_tokens: bool = False, torch_threads: int = 1, gpu: bool = False) -> None:
        import spacy
        import torch

        torch.set_num_threads(torch_threads)
        if gpu:
            spacy.require_gpu()
        self.nlp = spacy.load(model)
        self.with_tokens = with_tokens

    def __call__(self, batch):
        """Adds `annotation` (JSON: entities, optional tokens; "" for rejects) and `words`."""
        texts = [t for t, r in zip(batch["text"], batch["reject"]) if not r]
        docs = iter(self.nlp.pipe(texts))
        annotations, words = [], []
        for reject in batch["reject"]:
            if reject:
                annotations.append("")
                words.append(0)
                continue
            doc = next(docs)
            annotations.append(json.dumps(doc_annotation(doc, self.with_tokens)))
            words.append(len(doc))
        import numpy

        batch["annotation"] = numpy.array(annotations, dtype=object)
        batch["words"] = numpy.array(words, dtype="int64")
        return batch


def doc_annotation(doc, with_tokens: bool = False) -> Dict:
    """RETURNS (Dict): `entities` (start_char, end_char, label, text,
    confidence) and, with `with_tokens`, `tokens` (text, start_char, tag)."""
    group = doc.spans.get("ents")
    if group is not None and "scores" in group.attrs:
        pairs = list(zip(group, group.attrs["scores"]))
    else:
        pairs = [(ent, None) for ent in doc.ents]
    out = {"entities": [
        {"start_char": s.start_char, "end_char": s.end_char, "label": s.label_, "text": s.text,
         "confidence": None if c is None else float(c)}
        for s, c in pairs
    ]}
    if with_tokens:
        out["tokens"] = [{"text": t.text, "start_char": t.idx, "tag": t.tag_} for t in doc]
    return out


def start_ray(address: Optional[str], num_cpus: Optional[int]) -> float:
    """Start Ray in-process, or join the cluster at `address`; no-op if it runs.

    RETURNS (float): Seconds it took.
    """
    import ray

    start = time.perf_counter()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - start


def annotate(
    model: str,
    inputs: str,
    output_dir: Path,
    *,
    text_key: str = "text",
    id_key: Optional[str] = None,
    fmt: str = "jsonl",
    batch_size: int = 64,
    workers: Optional[int] = None,
    address: Optional[str] = None,
    gpus_per_worker: float = 0.0,
    with_tokens: bool = False,
    progress_every: float = 5.0,
) -> Summary:
    """Annotate every input file into `output_dir`; see the module docstring.

    RETURNS (Summary): Counts and timings; also written to `output_dir/summary.json`.
    """
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise AnnotateError(RAY_MISSING) from None
    if fmt not in OUTPUT_FORMATS:
        raise AnnotateError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got '{fmt}'")
    if batch_size < 1:
        raise AnnotateError(f"--batch-size must be at least 1, got {batch_size}")
    files = find_inputs(inputs)
    check_model(model)
    model = str(Path(model).resolve()) if Path(model).is_dir() else model  # actors may run elsewhere
    address = address or os.environ.get("RAY_ADDRESS") or None
    workers = workers or os.cpu_count() or 1
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "_done").mkdir(exist_ok=True)
    summary = Summary(files=len(files))
    # Locally, one logical CPU more than the actors take, for the light read and split tasks.
    summary.ray_start_seconds = start_ray(address, None if address else workers + 1)
    start = time.perf_counter()  # Ray's own start-up is reported apart
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    pending = []
    for path in files:
        if _complete(output_dir / "_done" / f"{path.name}.json", path):
            summary.skipped_files.append(path.name)
            print(f"[annotate] {path.name}: complete in an earlier run, skipped", flush=True)
        else:
            pending.append(path)
    if pending:
        # Reading and splitting are light: no CPU reserved, so the actors may take every core.
        ds = ray.data.read_binary_files([str(p.resolve()) for p in pending], include_paths=True, num_cpus=0)
        ds = ds.map_batches(
            split_into_blocks, batch_size=1, num_cpus=0,
            fn_kwargs={"text_key": text_key, "id_key": id_key, "rows_per_block": batch_size},
        )
        # Blocks of one batch, so that every actor gets work from the same file.
        ds = ds.repartition(target_num_rows_per_block=batch_size)
        ds = ds.map_batches(
            Annotator,
            fn_constructor_kwargs={"model": model, "with_tokens": with_tokens, "gpu": gpus_per_worker > 0},
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            num_gpus=gpus_per_worker,
            batch_format="numpy",
        )
        outputs = _OutputFiles(pending, output_dir, fmt, summary, progress_every)
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            outputs.add_batch(batch)
        outputs.finish()
    summary.seconds = time.perf_counter() - start
    if summary.annotated + summary.rejected != summary.read:
        raise RuntimeError(f"annotate: {summary.annotated} annotated + {summary.rejected} rejected != {summary.read} read")
    (output_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf8")
    return summary


def _complete(marker: Path, path: Path) -> bool:
    if not marker.exists():
        return False
    info = json.loads(marker.read_text())
    stat = path.stat()
    return info.get("size") == stat.st_size and info.get("mtime_ns") == stat.st_mtime_ns


class _OutputFiles:
    """Writes the annotated stream, which comes in input order, file by file:
    NAME.FORMAT and NAME.rejects.jsonl (as .partial files, renamed when the
    file's last record is written), then the `_done/NAME.json` marker."""

    def __init__(self, paths: List[Path], output_dir: Path, fmt: str, summary: Summary, progress_every: float) -> None:
        names = [p.name for p in paths]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise AnnotateError(f"Two inputs are named {dup}: their outputs would collide; annotate them separately")
        self.paths = {p.name: p for p in paths}
        self.order = names
        self.output_dir, self.fmt, self.summary = output_dir, fmt, summary
        self.progress_every = progress_every
        self.current: Optional[str] = None
        self.done: set = set()
        self.last_progress = time.perf_counter()

    def add_batch(self, batch: Dict) -> None:
        for i in range(len(batch["id"])):
            source = str(batch["source"][i])
            if source != self.current:
                self._switch_to(source)
            record = {"id": str(batch["id"][i]), "source": source, "line": int(batch["line"][i])}
            reason = str(batch["reject"][i])
            self.counts["read"] += 1
            if reason:
                self.counts["rejected"] += 1
                key = reason.split(":")[0].split(" (")[0]
                self.counts["reasons"][key] = self.counts["reasons"].get(key, 0) + 1
                self.rejects.write(json.dumps({**record, "reason": reason}) + "\n")
            else:
                self.counts["annotated"] += 1
                self.counts["words"] += int(batch["words"][i])
                self.rows.append({**record, **json.loads(str(batch["annotation"][i]))})
        self.writer.write(self.rows)
        self.rows = []
        now = time.perf_counter()
        if now - self.last_progress >= self.progress_every:
            self.last_progress = now
            c = self.counts
            print(f"[annotate] {self.current}: {c['read']:,} records, {c['annotated']:,} annotated, "
                  f"{c['rejected']:,} rejected", flush=True)

    def finish(self) -> None:
        """Close the open file and write the inputs that gave no record at all."""
        self._switch_to(None)

    def _switch_to(self, source: Optional[str]) -> None:
        if source is not None and (source in self.done or source not in self.paths):
            raise RuntimeError(f"annotate: records of {source} arrived out of order")
        if self.current is not None:
            self._close()
        # Inputs before `source` in the input order that gave no record (empty files).
        upto = self.order.index(source) if source is not None else len(self.order)
        for name in self.order[:upto]:
            if name not in self.done:
                self._open(name)
                self._close()
        if source is not None:
            self._open(source)

    def _open(self, name: str) -> None:
        self.current = name
        self.counts = {"read": 0, "annotated": 0, "rejected": 0, "words": 0, "reasons": {}}
        self.rows: List[Dict] = []
        self.out_path = self.output_dir / f"{name}.{self.fmt}"
        self.rejects_path = self.output_dir / f"{name}.rejects.jsonl"
        self.rejects = self.rejects_path.with_name(self.rejects_path.name + ".partial").open("w", encoding="utf8")
        self.writer = _RowWriter(self.out_path.with_name(self.out_path.name + ".partial"), self.fmt).__enter__()

    def _close(self) -> None:
        name, c = self.current, self.counts
        self.writer.write(self.rows)  # a batch may end one file and start the next
        self.rows = []
        self.writer.__exit__(None, None, None)
        self.rejects.close()
        self.out_path.with_name(self.out_path.name + ".partial").replace(self.out_path)
        self.rejects_path.with_name(self.rejects_path.name + ".partial").replace(self.rejects_path)
        path = self.paths[name]
        stat = path.stat()
        marker = {"input": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                  **{k: c[k] for k in ("read", "annotated", "rejected", "words")}}
        (self.output_dir / "_done" / f"{name}.json").write_text(json.dumps(marker))
        for key in ("read", "annotated", "rejected", "words"):
            setattr(self.summary, key, getattr(self.summary, key) + c[key])
        for reason, n in c["reasons"].items():
            self.summary.rejects_by_reason[reason] = self.summary.rejects_by_reason.get(reason, 0) + n
        print(f"[annotate] {name}: {c['read']:,} records -> {self.out_path.name} ({c['annotated']:,}), "
              f"{self.rejects_path.name} ({c['rejected']:,})", flush=True)
        self.done.add(name)
        self.current = None


class _RowWriter:
    """Append rows to a JSONL file, or to a Parquet file batch by batch."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._file = None
        self._parquet = None

    def __enter__(self) -> "_RowWriter":
        if self.fmt == "jsonl":
            self._file = self.path.open("w", encoding="utf8")
        return self

    def write(self, rows: List[Dict]) -> None:
        if not rows:
            return
        if self.fmt == "jsonl":
            self._file.write("".join(json.dumps(row) + "\n" for row in rows))
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=self._parquet.schema if self._parquet else _parquet_schema(rows))
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(str(self.path), table.schema)
        self._parquet.write_table(table)

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()
        if self.fmt == "parquet":
            if self._parquet is None:  # no annotated row: an empty file with the schema
                import pyarrow.parquet as pq

                pq.write_table(_parquet_schema([]).empty_table(), str(self.path))
            else:
                self._parquet.close()


def _parquet_schema(rows: List[Dict]):
    import pyarrow as pa

    entity = pa.struct([("start_char", pa.int64()), ("end_char", pa.int64()), ("label", pa.string()),
                        ("text", pa.string()), ("confidence", pa.float64())])
    fields = [("id", pa.string()), ("source", pa.string()), ("line", pa.int64()), ("entities", pa.list_(entity))]
    if rows and "tokens" in rows[0]:
        token = pa.struct([("text", pa.string()), ("start_char", pa.int64()), ("tag", pa.string())])
        fields.append(("tokens", pa.list_(token)))
    return pa.schema(fields)


def iter_output(path: Path) -> Iterator[Dict]:
    """RETURNS (Iterator[Dict]): The rows of an annotate output file (JSONL or Parquet)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(str(path)).to_pylist()
    else:
        with path.open(encoding="utf8") as f:
            for line in f:
                yield json.loads(line)
