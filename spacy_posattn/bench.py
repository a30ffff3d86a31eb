"""Time the tagging head: positional attention vs a plain linear softmax head.

    python -m spacy_posattn.bench [--lengths 32,128,512,1024,4096] [--gpu-id -1]

For each document length it runs forward + backward over the same random token
vectors (the width of the default encoder plus the lexical features) through
(a) the default positional-attention head and (b) the paper's dropout + linear
softmax head, and, for scale, forward + backward of the bundled MiniLM-L6
encoder over the same number of word pieces (up to 512 per sequence). It prints
milliseconds per 1,000 tokens; the head should cost well under the encoder and
stay flat as documents grow (linear cost).
"""
import time
from typing import Callable, Dict, List

import numpy
import typer
from thinc.api import Model, chain, fix_random_seed, get_current_ops, require_gpu, with_array
from thinc.api import Dropout, Linear, Softmax_v2

from .layers import positional_attention_encoder

N_TAGS = 33  # O + BILU x 8 GMB entity types
IN_WIDTH = 384 + 64  # MiniLM-L6 hidden size + default lexical features


def attention_head(width: int = 256, depth: int = 2, heads: int = 4, window: int = 64, max_distance: int = 16) -> Model:
    """The default head of `spacy-posattn.PositionalAttentionTagger.v2`, on arrays."""
    attention = positional_attention_encoder(width, depth, heads, window, max_distance, dropout=0.1)
    return chain(with_array(Linear(width)), attention, with_array(chain(Dropout(0.1), Softmax_v2(N_TAGS))))


def linear_head() -> Model:
    """The paper's head: dropout + fully connected softmax layer."""
    return with_array(chain(Dropout(0.1), Softmax_v2(N_TAGS)))


def time_model(model: Model, Xs: List, repeats: int) -> float:
    """RETURNS (float): Best seconds of `repeats` forward + backward passes."""
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass warms up
        start = time.perf_counter()
        Ys, backprop = model.begin_update(Xs)
        backprop(Ys)
        float(model.ops.xp.asarray(Ys[-1]).sum())  # blocks until the GPU is done
        best = min(best, time.perf_counter() - start)
    return best


def encoder_timer() -> Callable[[int], float]:
    """RETURNS (Callable[[int], float]): seconds for forward + backward of the
    bundled MiniLM-L6 over n word pieces, in sequences of at most 512."""
    import torch
    from transformers import AutoModel

    from .architectures import BUNDLED_ENCODER, resolve_encoder

    device = "cuda" if get_current_ops().device_type == "gpu" else "cpu"
    bert = AutoModel.from_pretrained(resolve_encoder(BUNDLED_ENCODER)).to(device).train()

    def run(n_tokens: int) -> float:
        seq = min(n_tokens, 512)
        ids = torch.randint(1000, 20000, (max(1, n_tokens // seq), seq), device=device)
        start = time.perf_counter()
        bert(input_ids=ids).last_hidden_state.sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run(64)
    return run


def bench(lengths: List[int], tokens_per_batch: int = 4096, repeats: int = 3, with_encoder: bool = True) -> List[Dict]:
    """RETURNS (List[Dict]): ms per 1,000 tokens for each document length."""
    fix_random_seed(0)
    ops = get_current_ops()
    heads = {"posattn": attention_head(), "linear": linear_head()}
    sample = [ops.asarray2f(numpy.zeros((8, IN_WIDTH), dtype="float32"))]
    for model in heads.values():
        model.initialize(X=sample, Y=[ops.alloc2f(8, N_TAGS)])
    encoder = encoder_timer() if with_encoder else None
    rows = []
    for length in lengths:
        n_docs = max(1, tokens_per_batch // length)
        rng = numpy.random.RandomState(length)
        Xs = [ops.asarray2f(rng.normal(size=(length, IN_WIDTH)).astype("float32")) for _ in range(n_docs)]
        n_tokens = n_docs * length
        row = {"doc_length": length, "docs": n_docs, "tokens": n_tokens}
        for name, model in heads.items():
            row[f"{name}_ms_per_1k"] = 1000 * time_model(model, Xs, repeats) / n_tokens * 1000
        if encoder is not None:
            row["encoder_ms_per_1k"] = 1000 * min(encoder(n_tokens) for _ in range(repeats)) / n_tokens * 1000
        rows.append(row)
    return rows


def main(
    lengths: str = typer.Option("32,128,512,1024,4096", help="Document lengths in tokens, comma-separated"),
    tokens: int = typer.Option(4096, help="Tokens per batch (docs = tokens // length)"),
    repeats: int = typer.Option(3, help="Timed repeats; the best is kept"),
    gpu_id: int = typer.Option(-1, help="GPU to use, -1 for CPU"),
    encoder: bool = typer.Option(True, help="Also time the bundled MiniLM-L6 encoder"),
) -> None:
    """Print forward+backward ms per 1,000 tokens: positional-attention head,
    linear head and the encoder, per document length."""
    import os
    import platform

    import torch

    if gpu_id >= 0:
        require_gpu(gpu_id)
        machine = f"GPU {torch.cuda.get_device_name(gpu_id)}"
    else:
        machine = f"CPU, {os.cpu_count()} cores ({platform.machine()}), {torch.get_num_threads()} torch threads"
    rows = bench([int(n) for n in lengths.split(",")], tokens, repeats, encoder)
    print(f"forward+backward, ms per 1,000 tokens, {tokens} tokens per batch, {machine}")
    print("| doc length | posattn head | linear head | ratio | MiniLM-L6 encoder | head / encoder |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        enc = r.get("encoder_ms_per_1k")
        print(
            f"| {r['doc_length']} | {r['posattn_ms_per_1k']:.1f} | {r['linear_ms_per_1k']:.2f} | "
            f"{r['posattn_ms_per_1k'] / r['linear_ms_per_1k']:.0f}x | "
            + (f"{enc:.0f} | {r['posattn_ms_per_1k'] / enc:.2f} |" if enc else "n/a | n/a |")
        )


if __name__ == "__main__":
    typer.run(main)
