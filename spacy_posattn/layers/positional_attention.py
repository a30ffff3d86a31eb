"""Local self-attention with a learned relative-position bias, as a thinc layer.

The PyTorch module works on rows of tokens `(rows, length, width)` with a
segment id per token (-1 on padding). Each token attends to the tokens of its
own segment (document) that lie at most `window` positions away, and every
attention score gets a learned bias per head and per relative distance, clipped
to `[-max_distance, max_distance]`. Keys are gathered block-wise (a block of
`window` queries sees its own block and the two neighbouring ones), so time and
memory grow linearly with length.

The thinc layer packs a batch's documents end to end into one row, so the only
padding is what rounds the batch's total length up to a multiple of `window`:
a batch of short sentences costs no more per token than one long document.
"""
import math
from typing import List, Tuple

import torch
from thinc.api import ArgsKwargs, Model, PyTorchGradScaler, PyTorchWrapper_v2
from thinc.api import torch2xp, xp2torch
from thinc.types import Floats2d
from torch import nn

from .averages import use_averaged_params_shims
from .fast_dropout import FastDropout


class PositionalSelfAttention(nn.Module):
    """Multi-head self-attention restricted to a window, with a relative bias."""

    def __init__(self, width: int, heads: int, window: int, max_distance: int, dropout: float):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.heads = heads
        self.window = window
        self.max_distance = max_distance
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = FastDropout(dropout)
        # One bias per head for each clipped distance -max_distance..max_distance.
        self.rel_bias = nn.Embedding(2 * max_distance + 1, heads)
        nn.init.normal_(self.rel_bias.weight, std=0.1)
        # Relative distance (key - query) inside a (window, 3 * window) block.
        w = window
        rel = torch.arange(3 * w)[None, :] - w - torch.arange(w)[:, None]
        self.register_buffer("rel_index", rel.clamp(-max_distance, max_distance) + max_distance, persistent=False)
        self.register_buffer("too_far", rel.abs() > w, persistent=False)

    def forward(self, x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """x (B, L, W) with L a multiple of window; segments (B, L): the
        document id of each token, -1 on padding."""
        B, L, W = x.shape
        w, H = self.window, self.heads
        n = L // w
        q, k, v = self.qkv(x).view(B, n, w, 3, H, W // H).unbind(dim=3)
        k, v = (_neighbour_blocks(t) for t in (k, v))
        query_seg = segments.view(B, n, w)
        key_seg = _neighbour_blocks(query_seg, fill=-1)
        scores = torch.einsum("bnqhd,bnkhd->bnhqk", q, k) / math.sqrt(W // H)
        scores = scores + self.rel_bias(self.rel_index).permute(2, 0, 1).to(scores.dtype)
        # A query sees the keys of its own document within the window.
        other_doc = (key_seg[:, :, None, :] != query_seg[..., None]) | (key_seg[:, :, None, :] < 0)
        blocked = self.too_far | other_doc[:, :, None]
        scores = scores.masked_fill(blocked, torch.finfo(scores.dtype).min)
        attn = self.dropout(scores.softmax(dim=-1))
        y = torch.einsum("bnhqk,bnkhd->bnqhd", attn, v).reshape(B, L, W)
        return self.out(y)


def _neighbour_blocks(t: torch.Tensor, fill: int = 0) -> torch.Tensor:
    """(B, n, w, ...) -> (B, n, 3w, ...): each block with its left and right neighbour."""
    pad = torch.full_like(t[:, :1], fill)
    padded = torch.cat([pad, t, pad], dim=1)
    return torch.cat([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]], dim=2)


class PositionalAttentionBlock(nn.Module):
    """Pre-norm residual block: local attention, then a feed-forward layer."""

    def __init__(self, width: int, heads: int, window: int, max_distance: int, dropout: float):
        super().__init__()
        self.attn_norm = nn.LayerNorm(width)
        self.attn = PositionalSelfAttention(width, heads, window, max_distance, dropout)
        self.ff_norm = nn.LayerNorm(width)
        self.ff = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), FastDropout(dropout), nn.Linear(4 * width, width)
        )
        self.dropout = FastDropout(dropout)

    def forward(self, x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), segments))
        return x + self.dropout(self.ff(self.ff_norm(x)))


class PositionalAttentionEncoder(nn.Module):
    """A stack of `depth` positional-attention blocks with a final LayerNorm."""

    def __init__(self, width: int, depth: int, heads: int, window: int, max_distance: int, dropout: float):
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            PositionalAttentionBlock(width, heads, window, max_distance, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """x (B, L, W); segments (B, L): the document id of each token, -1 on
        padding. Tokens attend only within their own document."""
        L = x.shape[1]
        extra = -L % self.window
        if extra:
            x = nn.functional.pad(x, (0, 0, 0, extra))
            segments = nn.functional.pad(segments, (0, extra), value=-1)
        for block in self.blocks:
            x = block(x, segments)
        # Zero the padding so it can never reach anything downstream.
        return (self.norm(x) * (segments >= 0)[..., None].to(x.dtype))[:, :L]


def positional_attention_encoder(
    width: int,
    depth: int,
    heads: int,
    window: int,
    max_distance: int,
    dropout: float,
    mixed_precision: bool = False,
) -> Model[List[Floats2d], List[Floats2d]]:
    """Wrap `PositionalAttentionEncoder` as a thinc layer over one array per doc.

    width (int): Width of the input and output vectors.
    depth (int): Number of positional-attention blocks.
    heads (int): Number of attention heads; must divide `width`.
    window (int): A token attends to the tokens at most `window` positions away.
    max_distance (int): Relative distances are clipped to this value.
    dropout (float): Dropout on attention weights and residual branches.
    mixed_precision (bool): Run under CUDA autocast with a gradient scaler. GPU
        only: like spacy-transformers, training on CPU with it raises an error.
    RETURNS (Model[List[Floats2d], List[Floats2d]]): The layer.
    """
    for name, value in (("width", width), ("depth", depth), ("heads", heads), ("window", window)):
        if value < 1:
            raise ValueError(f"positional attention: {name} must be at least 1, got {value}")
    if max_distance < 0:
        raise ValueError(f"positional attention: max_distance must be >= 0, got {max_distance}")
    module = PositionalAttentionEncoder(width, depth, heads, window, max_distance, dropout)
    wrapped = PyTorchWrapper_v2(
        module,
        convert_inputs=_pack_docs,
        convert_outputs=_unpack_docs,
        mixed_precision=mixed_precision,
        grad_scaler=PyTorchGradScaler(enabled=mixed_precision),
    )
    return Model(
        "positional_attention",
        _skip_empty_forward,
        layers=[use_averaged_params_shims(wrapped)],
        dims={"nI": width, "nO": width},
    )


def _skip_empty_forward(model: Model, Xs: List[Floats2d], is_train: bool):
    """Run the wrapped module, unless the batch holds no token at all."""
    if sum(len(X) for X in Xs) == 0:
        width = model.get_dim("nO")
        return [model.ops.alloc2f(0, width) for _ in Xs], lambda dYs: [
            model.ops.alloc2f(0, width) for _ in dYs
        ]
    return model.layers[0](Xs, is_train)


def _pack_docs(model: Model, Xs: List[Floats2d], is_train: bool) -> Tuple[ArgsKwargs, object]:
    """Put the docs end to end in one row, with each token's doc index as its segment."""
    ops = model.ops
    lengths = [len(X) for X in Xs]
    packed = xp2torch(ops.flatten(Xs)[None], requires_grad=is_train)
    segments = torch.repeat_interleave(
        torch.arange(len(lengths), device=packed.device), torch.tensor(lengths, device=packed.device)
    )[None]
    args = ArgsKwargs(args=(packed, segments), kwargs={})

    def backprop(d_args: ArgsKwargs) -> List[Floats2d]:
        return ops.unflatten(torch2xp(d_args.args[0][0]), ops.asarray1i(lengths))

    return args, backprop


def _unpack_docs(model: Model, inputs_outputs, is_train: bool):
    (Xs, Y_torch) = inputs_outputs
    ops = model.ops
    lengths = [len(X) for X in Xs]
    Ys = ops.unflatten(ops.asarray(torch2xp(Y_torch[0].float())), ops.asarray1i(lengths))

    def backprop(dYs: List[Floats2d]) -> ArgsKwargs:
        dY = xp2torch(ops.flatten(dYs))[None].to(Y_torch.dtype)
        return ArgsKwargs(args=(Y_torch,), kwargs={"grad_tensors": dY})

    return Ys, backprop
