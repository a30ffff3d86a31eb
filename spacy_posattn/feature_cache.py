"""Frozen-encoder training on cached features (`python -m spacy_posattn train-cached`).

With the transformer frozen, its word vectors for a Doc never change, so they
are computed once per corpus, kept on disk (float16) and reused by every epoch
and by every head trained on the same encoder. The heads (spaCy's tagger,
posattn_ner) are trained by `nlp.update` with each listener temporarily replaced
by a layer that reads `doc.tensor`; the saved pipeline has the listeners back, so
it runs on raw text like any other.
"""
import hashlib
import json
import random
import resource
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Tuple

import numpy
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.tokens import Doc
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.util import load_config, registry, resolve_dot_names
from thinc.api import Model

from .evaluate import score_docs
from .readers import unannotated_copy


def cached_vectors(width: int, n_layers: int = 1) -> Model:
    """A stand-in for the listener that returns `doc.tensor` (the cached encoder
    output): (n_tokens, width) arrays, or (n_tokens, n_layers, width) for the
    per-layer vectors of `spacy-posattn.ScalarMixListener.v1`."""

    def forward(model: Model, docs: List[Doc], is_train: bool):
        Xs = [model.ops.asarray2f(doc.tensor, dtype="float32") for doc in docs]
        if n_layers > 1:
            Xs = [X.reshape((X.shape[0], n_layers, width)) for X in Xs]
        return Xs, lambda dXs: []

    return Model("cached_vectors", forward, dims={"nO": width})


def listener_chains(nlp: Language) -> Dict[str, Model]:
    """RETURNS (Dict[str, Model]): For each component that listens to the
    transformer, the part of its `tok2vec` that the cache replaces: the whole
    listener + pooling, or for `spacy-posattn.ScalarMixListener.v1` the listener
    + per-layer pooling (the mix itself is trained on the cached layers)."""
    chains = {}
    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if name != "transformer" and model is not None and model.has_ref("tok2vec"):
            tok2vec = model.get_ref("tok2vec")
            if any(node.name.startswith("transformer-listener") for node in tok2vec.walk()):
                chains[name] = tok2vec.get_ref("hidden_layers") if tok2vec.has_ref("hidden_layers") else tok2vec
    if not chains:
        raise ValueError("train-cached: no component listens to a 'transformer' component in this config")
    return chains


# Words per batch of the feature pass: about 19 ten-sentence Docs, or 190 single
# sentences. Batches of 16 Docs whatever their length (before session 13) left a GPU
# idle on single sentences (9,391 words/s on an H200, results/gpu_h200_n1/).
FEATURE_BATCH_WORDS = 4000


def batches_of_words(docs: Iterable[Doc], words: int) -> Iterator[List[Doc]]:
    """Consecutive batches of `docs`, in order, each closed as soon as it holds
    at least `words` words (so a longer Doc makes a batch of its own; the last
    batch may hold fewer). The order matters: the caller writes the vectors one
    Doc after the other."""
    batch: List[Doc] = []
    count = 0
    for doc in docs:
        batch.append(doc)
        count += len(doc)
        if count >= words:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def encode_docs(
    nlp: Language, pool: Model, docs: List[Doc], batch_words: int = FEATURE_BATCH_WORDS, progress: "Progress" = None
) -> Iterator[numpy.ndarray]:
    """Run the frozen transformer and the listener's pooling over `docs`.

    batch_words (int): Words per batch (`batches_of_words`).
    progress (Progress): Reports the words done now and then.
    YIELDS (numpy.ndarray): One (n_tokens, width) float16 array per doc, in
        order; (n_tokens, n_layers * width) for per-layer vectors.
    """
    transformer = nlp.get_pipe("transformer")
    progress = progress or Progress("feature pass", sum(len(doc) for doc in docs))
    for batch in batches_of_words(docs, batch_words):
        transformer.set_annotations(batch, transformer.predict(batch))
        for doc, X in zip(batch, pool.predict(batch)):
            yield pool.ops.to_numpy(X).reshape((len(doc), -1)).astype(numpy.float16)
            doc._.trf_data = None  # free the word-piece outputs
        progress.advance(sum(len(doc) for doc in batch))
    progress.done()


class Progress:
    """Print "what: done/total words (pct), words/s, ETA" at most every `every` seconds."""

    def __init__(self, what: str, total: int, every: float = 30.0) -> None:
        self.what, self.total, self.every = what, total, every
        self.count = 0
        self.start = self.last = time.perf_counter()

    def advance(self, n: int) -> None:
        self.count += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._print(now)

    def done(self) -> None:
        self._print(time.perf_counter())

    def _print(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        eta = (self.total - self.count) / rate if rate else float("nan")
        print(
            f"[{self.what}] {self.count:,}/{self.total:,} words ({100 * self.count / max(self.total, 1):.0f}%), "
            f"{rate:,.0f} words/s, {elapsed:.0f} s elapsed, ETA {max(eta, 0):.0f} s",
            flush=True,
        )


def cached_features(
    nlp: Language, pool: Model, docs: List[Doc], cache_dir: Path, key: str, label: str = "docs"
) -> Tuple[List[numpy.ndarray], float, bool]:
    """Load the docs' encoder vectors from `cache_dir`, or compute and store them.

    The vectors are written straight into one float16 file as they are computed
    and read back memory-mapped: they are never held in memory as per-doc arrays
    plus their concatenation (4.5 GB each for GMB's train split).

    key (str): Identifies the encoder, the pooling and the corpus file.
    label (str): What the docs are, for the progress lines.
    RETURNS (Tuple[List[numpy.ndarray], float, bool]): One read-only (n_tokens,
        width) view per doc; the seconds the feature pass took when it was
        computed (read back from the cache); whether they came from the cache.
    """
    lengths = [len(doc) for doc in docs]
    digest = hashlib.sha1(json.dumps([key, lengths]).encode("utf8")).hexdigest()[:16]
    data_path, meta_path = cache_dir / f"{digest}.npy", cache_dir / f"{digest}.json"
    hit = data_path.exists() and meta_path.exists()
    if hit:
        seconds = json.loads(meta_path.read_text(encoding="utf8"))["seconds"]
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        partial = data_path.with_suffix(".partial.npy")
        write_features(encode_docs(nlp, pool, docs, progress=Progress(f"feature pass, {label}", sum(lengths))),
                       sum(lengths), partial)
        seconds = time.perf_counter() - start
        partial.replace(data_path)
        meta_path.write_text(json.dumps({"key": key, "docs": len(docs), "tokens": sum(lengths), "seconds": seconds}))
    flat = numpy.asarray(numpy.load(data_path, mmap_mode="r"))
    return numpy.split(flat, numpy.cumsum(lengths)[:-1]), seconds, hit


def write_features(vectors: Iterator[numpy.ndarray], n_tokens: int, path: Path) -> None:
    """Write per-doc float16 vectors one after the other into one .npy file of
    `n_tokens` rows, without holding them in memory (the width is the first
    array's)."""
    out, row = None, 0
    for X in vectors:
        if out is None:
            out = numpy.lib.format.open_memmap(path, mode="w+", dtype=numpy.float16, shape=(n_tokens, X.shape[1]))
        out[row:row + len(X)] = X
        row += len(X)
    if out is None:  # no docs
        numpy.save(path, numpy.zeros((0, 0), numpy.float16))
        return
    if row != n_tokens:
        raise ValueError(f"feature pass: expected vectors for {n_tokens} tokens, got {row}")
    out.flush()
    del out


# Transformer settings that leave the frozen encoder's vectors as they are: the
# encoder's learning-rate scale, and the length groups of prediction (the same
# outputs up to float rounding).
NOT_IN_CACHE_KEY = ("lr_scale", "group_rows")
# Listener settings the cache does not depend on: the cache holds every layer
# pooled, and the mix is trained on top of it.
LISTENER_NOT_IN_CACHE_KEY = ("mix",)


def cache_key(config: Dict, chains: Dict[str, Model], corpus_path: str) -> str:
    """RETURNS (str): What the cached vectors depend on: the transformer's
    config (but `NOT_IN_CACHE_KEY`), the listeners' config (pooling, but
    `LISTENER_NOT_IN_CACHE_KEY`), and the corpus file (path, size,
    modification time). A local encoder folder adds its config's modification
    time."""
    from .architectures import resolve_encoder

    trf = {k: v for k, v in config["components"]["transformer"]["model"].items() if k not in NOT_IN_CACHE_KEY}
    listeners = {
        json.dumps({k: v for k, v in config["components"][name]["model"]["tok2vec"].items()
                    if k not in LISTENER_NOT_IN_CACHE_KEY}, sort_keys=True, default=str)
        for name in chains
    }
    if len(listeners) != 1:
        raise ValueError(
            f"train-cached: the components {', '.join(chains)} listen to the transformer with different "
            "settings (pooling, grad_factor); give them the same listener config to share one cache"
        )
    parts = [json.dumps(trf, sort_keys=True, default=str), listeners.pop()]
    encoder = Path(resolve_encoder(str(trf.get("name", ""))))
    for path in (Path(corpus_path), encoder / "config.json", encoder / "model.safetensors", encoder / "pytorch_model.bin"):
        if path.exists():
            stat = path.stat()
            parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def train_cached(
    config_path: Path,
    output_dir: Path,
    epochs: int,
    cache_dir: Path,
    overrides: Dict = {},
    score_without_averages: bool = False,
) -> float:
    """Train every component but the transformer on cached encoder outputs.

    Writes output_dir/model-best (the epoch with the best weighted dev score;
    with `use_averages = true` in the optimizer, scored and saved with the
    parameter averages, as `spacy train` does) and output_dir/train_log.jsonl:
    per epoch, the train and dev loss per token
    of each head, the dev scores, and `seconds` = feature pass + head training.
    The heads' initial weights and the order of the train Docs each epoch come
    from `[training] seed` (`${system.seed}`), as in `spacy train`.
    `feature_seconds_reused` is the part of the feature pass read from the cache
    (measured when it was computed), which this process's wall time does not include.
    overrides (Dict): Config values to set, by dotted key (as `spacy train`'s
        `--training.optimizer.learn_rate.initial_rate 1e-3`).
    score_without_averages (bool): With averages, also score the current
        parameters on dev each epoch (`current_scores` in the log).
    RETURNS (float): The best weighted dev score.
    """
    config = load_config(config_path, overrides=dict(overrides), interpolate=False)
    nlp = init_nlp(config)
    resolved = nlp.config.interpolate()
    T = registry.resolve(resolved["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(resolved, [T["train_corpus"], T["dev_corpus"]])
    train = list(train_corpus(nlp))
    dev = list(dev_corpus(nlp))
    # The learning-rate schedule runs over all the head's steps.
    steps_per_epoch = sum(1 for _ in T["batcher"](train))
    resolved["training"]["max_steps"] = epochs * steps_per_epoch
    learn_rate = resolved["training"]["optimizer"].get("learn_rate")
    if isinstance(learn_rate, dict) and "total_steps" in learn_rate:
        learn_rate["total_steps"] = epochs * steps_per_epoch
    T = registry.resolve(resolved["training"], schema=ConfigSchemaTraining)
    optimizer, batcher, before_update = T["optimizer"], T["batcher"], T["before_update"]

    chains = listener_chains(nlp)
    pool = next(iter(chains.values()))
    feature_seconds, reused_seconds = 0.0, 0.0
    for name, examples in (("train", train), ("dev", dev)):
        key = cache_key(resolved, chains, resolved["paths"][name])
        vectors, seconds, hit = cached_features(nlp, pool, [eg.predicted for eg in examples], cache_dir, key, name)
        feature_seconds += seconds
        reused_seconds += seconds if hit else 0.0
        for eg, X in zip(examples, vectors):
            eg.predicted.tensor = X
    width = nlp.get_pipe("transformer").model.get_dim("nO")
    n_layers = max((eg.predicted.tensor.shape[1] for eg in train if len(eg.predicted)), default=width) // width
    stand_in = cached_vectors(width, n_layers)
    print(f"[features] {n_layers} layer(s) x {width} per token, float16: "
          f"{sum(eg.predicted.tensor.nbytes for eg in train + dev) / 2**20:,.0f} MiB for train + dev "
          f"(memory-mapped from {cache_dir})", flush=True)
    heads = list(chains)
    weights = {k: v for k, v in (T["score_weights"] or {}).items() if v}
    n_train_words = sum(len(eg) for eg in train)
    n_dev_words = sum(len(eg) for eg in dev)
    random.seed(T["seed"])
    output_dir.mkdir(parents=True, exist_ok=True)
    best, step, start = -1.0, 0, time.perf_counter()
    with (output_dir / "train_log.jsonl").open("w", encoding="utf8") as log:
        for epoch in range(1, epochs + 1):
            swap(nlp, chains, stand_in, to_cache=True)
            random.shuffle(train)
            losses: Dict[str, float] = {}
            progress = Progress(f"epoch {epoch}/{epochs}", n_train_words)
            for batch in batcher(train):
                if before_update is not None:  # as spacy train calls it: step and epoch from 0
                    before_update(nlp, {"step": step, "epoch": epoch - 1})
                nlp.update(batch, drop=T["dropout"], sgd=optimizer, losses=losses, exclude=["transformer"])
                optimizer.step_schedules()  # as spaCy's training loop does: warmup and decay
                step += 1
                progress.advance(sum(len(eg) for eg in batch))
            progress.done()
            averages = optimizer.averages or {}  # `use_averages = true`: score and save the averages, as spacy train does
            current_scores = score_heads(nlp, heads, dev)[1] if averages and score_without_averages else None
            with nlp.use_params(averages):
                dev_losses, scores = score_heads(nlp, heads, dev)
                score = sum(w * (scores.get(k) or 0.0) for k, w in weights.items())
                swap(nlp, chains, stand_in, to_cache=False)
                if score > best:
                    best = score
                    nlp.to_disk(output_dir / "model-best")
            line = {
                "epoch": epoch,
                "step": step,
                "seconds": feature_seconds + time.perf_counter() - start,
                "feature_seconds": feature_seconds,
                "feature_seconds_reused": reused_seconds,
                "words": epoch * n_train_words,
                "score": score,
                "scores": {k: scores[k] for k in ("ents_f", "ents_p", "ents_r", "tag_acc") if k in scores},
                "averaged": bool(averages),
                # The same epoch without the averages (the parameters as they are now).
                "current_scores": {k: current_scores[k] for k in ("ents_f", "tag_acc")} if current_scores else None,
                "losses": {k: losses.get(k, 0.0) for k in heads},
                "train_loss_per_token": {k: losses.get(k, 0.0) / n_train_words for k in heads},
                "dev_loss_per_token": {k: v / max(n_dev_words, 1) for k, v in dev_losses.items()},
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
            log.write(json.dumps(line) + "\n")
            log.flush()
            current = f" ({current_scores['ents_f'] * 100:.2f} without the averages)" if current_scores else ""
            print(f"epoch {epoch}: step {step}, dev {scores.get('ents_f', 0) * 100:.2f} F1{current}, "
                  f"score {score:.4f}, {line['seconds']:.0f} s, peak RSS {line['peak_rss_mib']:,.0f} MiB", flush=True)
    return best


def swap(nlp: Language, chains: Dict[str, Model], stand_in: Model, to_cache: bool) -> None:
    """Put the cached-vector stand-in in place of each listener chain, or back."""
    for name, chain in chains.items():
        model = nlp.get_pipe(name).model
        old, new = (chain, stand_in) if to_cache else (stand_in, chain)
        model.replace_node(old, new)


def score_heads(nlp: Language, heads: List[str], examples: List[Example]) -> Tuple[Dict[str, float], Dict]:
    """Loss of each head and the scores of their predictions on cached docs.

    RETURNS (Tuple[Dict[str, float], Dict]): Summed losses by head, and
        `score_docs`' scores.
    """
    docs = []
    for eg in examples:
        doc = unannotated_copy(eg.reference)
        doc.tensor = eg.predicted.tensor
        docs.append(doc)
    batch = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    losses = {}
    for name in heads:
        proc = nlp.get_pipe(name)
        outputs = proc.model.predict(docs)  # once, for the loss and the annotations
        try:
            losses[name] = float(proc.get_loss(batch, [probabilities(proc.model.ops, X) for X in outputs])[0])
        except KeyError as err:  # spaCy's tagger: a gold tag it has no row for
            raise ValueError(
                f"[{name}] The dev data has the label {err.args[0]!r}, which the training data (where "
                f"'{name}' took its labels: {', '.join(getattr(proc, 'labels', ()))}) does not have, so "
                "its dev loss cannot be computed. Train on data that includes it (is --corpora.train.limit "
                "set?), or remove it from the dev data."
            ) from err
        # What proc.predict(docs) returns: spaCy's tagger turns the scores into tag ids.
        proc.set_annotations(docs, proc._scores2guesses(outputs) if hasattr(proc, "_scores2guesses") else outputs)
    return losses, score_docs([eg.reference for eg in examples], docs)


def probabilities(ops, X):
    """Rows of probabilities: softmax of `X` unless its rows already are
    (spaCy's tagger leaves its outputs unnormalized at prediction time)."""
    if len(X) and ops.xp.allclose(X.sum(axis=1), 1.0, atol=1e-3) and X.min() >= 0:
        return X
    return ops.softmax(X)
