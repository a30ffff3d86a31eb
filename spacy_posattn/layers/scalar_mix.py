"""A learned scalar mix of every hidden layer of the transformer (ELMo style).

spacy-transformers' listener pools only `last_hidden_state`. With
`output_hidden_states = true` in the transformer's config, the model output also
holds the embeddings and every layer's states. `hidden_layers` pools each of them
per spaCy token, as `trfs2arrays` pools the last one (it is reused, on the layers
side by side), and `scalar_mix` combines them with softmax-normalised weights per
layer and a scale, both learned (or `linear_mix`, a learned linear map of all
the layers side by side). The gradient goes back to every layer: the
backprop emits one tensor per hidden state, which `convert_transformer_outputs`
(installed by `spacy-posattn.TransformerModel.v1`) passes to the encoder.
"""
from itertools import accumulate
from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from spacy_transformers.layers import TransformerListener
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from thinc.api import ArgsKwargs, Model, chain
from thinc.types import Floats2d, Floats3d, Ragged
from transformers.file_utils import ModelOutput

HIDDEN_STATES_ERROR = (
    "The transformer gave no hidden_states, which spacy-posattn.ScalarMixListener.v1 mixes: set "
    "`transformer_config = {{\"output_hidden_states\": true}}` in [components.{name}.model]."
)


MIXES = ("scalar", "linear")


@registry.architectures("spacy-posattn.ScalarMixListener.v1")
def build_scalar_mix_listener_v1(
    pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*", mix: str = "scalar"
) -> Model[List[Doc], List[Floats2d]]:
    """Token vectors from a transformer component earlier in the pipeline, as
    `spacy-transformers.TransformerListener.v1`, but a learned mix of all its
    hidden layers instead of the last one. The transformer must be configured with
    `transformer_config = {"output_hidden_states": true}`, and every component
    listening to it must use this listener (spacy-transformers adds the listeners'
    gradients position by position).

    pooling (Model[Ragged, Floats2d]): Word pieces to a token vector, per layer.
    grad_factor (float): Factor on the gradient sent to the transformer.
    upstream (str): The transformer component's name, or "*".
    mix (str): "scalar" (the default): softmax-normalised weights per layer and
        a scale (ELMo). "linear": a learned (width, width) matrix per layer,
        summed, plus a bias: a linear map of all the layers side by side, which
        can take different features from different layers (BERT's feature-based
        NER did best with the last layers concatenated); it starts as the
        layers' mean. Both leave the width as it is.
    RETURNS (Model[List[Doc], List[Floats2d]]): One (n_tokens, width) array per doc.
    """
    if mix not in MIXES:
        raise ValueError(f"ScalarMixListener.v1: mix must be one of {', '.join(MIXES)}, got {mix!r}")
    listener = TransformerListener(upstream_name=upstream)
    layers = chain(listener, hidden_layers(pooling, grad_factor))
    mix_layer = scalar_mix() if mix == "scalar" else linear_mix()
    model = Model(
        "scalar_mix_listener", _scalar_mix_listener_forward, layers=[layers, mix_layer], dims={"nI": None, "nO": None}
    )
    model.set_ref("listener", listener)
    model.set_ref("hidden_layers", layers)
    return model


def _scalar_mix_listener_forward(model: Model, docs: List[Doc], is_train: bool):
    """Training: pool every layer per token, then mix (the cache stores the
    pooled layers). Prediction: mix the word-piece states, then pool once, which
    gives the same vectors (both steps are linear) for a seventh of the pooling."""
    features, mix = model.layers
    listener = model.get_ref("listener")
    live = bool(features.layers) and features.layers[0] is listener  # not the cache's stand-in
    mix.attrs["input_gradient"] = live  # the cache's stand-in takes no gradient
    if not is_train and live and mix.name == "scalar_mix" and mix.has_dim("nL"):
        trf_datas = listener.predict(docs)
        if all(t.model_output.get("hidden_states") for t in trf_datas):
            pool = features.layers[1].layers[0]
            return pool.predict([_mix_word_pieces(mix, t) for t in trf_datas]), lambda dYs: []
    Xs, backprop_features = features(docs, is_train)
    Ys, backprop_mix = mix(Xs, is_train)
    return Ys, lambda dYs: backprop_features(backprop_mix(dYs))


def _mix_word_pieces(mix: Model, trf_data: TransformerData) -> TransformerData:
    """RETURNS (TransformerData): `trf_data` with the mix of its hidden states as
    its only output."""
    states = trf_data.model_output["hidden_states"]
    weights = mix.ops.softmax(mix.get_param("weights"))
    if len(states) != len(weights):
        raise ValueError(f"scalar_mix expected {len(weights)} layers, got {len(states)}")
    mixed = states[0] * weights[0]
    for state, weight in zip(states[1:], weights[1:]):
        mixed += state * weight
    mixed *= mix.get_param("scale")[0]
    return TransformerData(trf_data.wordpieces, ModelOutput(last_hidden_state=mixed), trf_data.align)


def hidden_layers(pooling: Model[Ragged, Floats2d], grad_factor: float) -> Model[List[TransformerData], List[Floats3d]]:
    """Pool every hidden state per token: one (n_tokens, n_layers, width) array
    per doc. A doc the transformer did not run on (zeros, at initialization) has
    one layer."""
    return Model("hidden_layers", _hidden_layers_forward, layers=[trfs2arrays(pooling, grad_factor)])


def _hidden_layers_forward(model: Model, trf_datas: List[TransformerData], is_train: bool):
    pool_layers = model.layers[0]
    stacked, n_layers = [], []
    for trf_data in trf_datas:
        output = trf_data.model_output
        states = output.get("hidden_states")
        if states:
            side_by_side = model.ops.xp.concatenate(list(states), axis=-1)
            stacked.append(TransformerData(trf_data.wordpieces, ModelOutput(last_hidden_state=side_by_side), trf_data.align))
            n_layers.append(len(states))
        elif "last_hidden_state" in output and output["last_hidden_state"].size and output["last_hidden_state"].any():
            raise ValueError(HIDDEN_STATES_ERROR.format(name="transformer"))
        else:  # zeros (initialization, or the transformer didn't run) or an empty doc
            stacked.append(trf_data)
            n_layers.append(1)
    pooled, backprop_pool = pool_layers(stacked, is_train)
    Ys = [Y.reshape((Y.shape[0], n, -1)) for Y, n in zip(pooled, n_layers)]

    def backprop(dYs: List[Floats3d]) -> List[TransformerData]:
        d_stacked = backprop_pool([dY.reshape((dY.shape[0], -1)) for dY in dYs])
        # trfs2arrays skips docs the transformer has no output for.
        with_output = [(t, n) for t, n in zip(trf_datas, n_layers) if "last_hidden_state" in t.model_output]
        d_trf_datas = []
        for d_data, (trf_data, n) in zip(d_stacked, with_output):
            d_side = d_data.model_output["last_hidden_state"]
            d_states = model.ops.xp.split(d_side, n, axis=-1) if n > 1 else [d_side]
            # One gradient tensor per hidden state, in layer order.
            d_output = ModelOutput(**{f"hidden_state_{i}": d for i, d in enumerate(d_states)})
            d_trf_datas.append(TransformerData(trf_data.wordpieces, d_output, trf_data.align))
        return d_trf_datas

    return Ys, backprop


def scalar_mix() -> Model[List[Floats3d], List[Floats2d]]:
    """`scale * sum_l softmax(weights)_l * X[:, l]`, with `weights` (zeros at the
    start: the plain mean of the layers) and `scale` (1.0) learned. The number of
    layers is taken from the first input that has more than one."""
    return Model("scalar_mix", _scalar_mix_forward, params={"weights": None, "scale": None}, dims={"nL": None})


def _scalar_mix_forward(model: Model, Xs: List[Floats3d], is_train: bool):
    ops = model.ops
    n_layers = max((X.shape[1] for X in Xs), default=1)
    if n_layers > 1 and not model.has_dim("nL"):
        model.set_dim("nL", n_layers)
        model.set_param("weights", ops.alloc1f(n_layers))
        model.set_param("scale", ops.asarray1f([1.0]))
    if not model.has_dim("nL"):  # only zeros seen yet (initialization): widths matter, not values
        return [X[:, 0] for X in Xs], lambda dYs: [ops.xp.expand_dims(dY, 1) for dY in dYs]
    if any(X.shape[1] not in (1, model.get_dim("nL")) for X in Xs):
        raise ValueError(f"scalar_mix expected {model.get_dim('nL')} layers, got {[X.shape[1] for X in Xs]}")
    weights = ops.softmax(model.get_param("weights"))
    scale = float(model.get_param("scale")[0])
    Ys = [scale * ops.xp.tensordot(X, weights, axes=([1], [0])) if X.shape[1] > 1 else X[:, 0] for X in Xs]

    def backprop(dYs: List[Floats2d]) -> List[Floats3d]:
        d_mixed = ops.alloc1f(len(weights))  # dLoss / d(weighted layer sum), per layer, before the scale
        dXs = []
        for X, dY in zip(Xs, dYs):
            if X.shape[1] == 1:
                dXs.append(ops.xp.expand_dims(dY, 1))
                continue
            d_mixed += ops.xp.einsum("nlw,nw->l", X, dY)
            dXs.append(scale * weights[None, :, None] * dY[:, None, :])
        d_weights = scale * weights * (d_mixed - (weights * d_mixed).sum())
        model.inc_grad("weights", d_weights)
        model.inc_grad("scale", ops.asarray1f([(weights * d_mixed).sum()]))
        return dXs

    return Ys, backprop


def linear_mix() -> Model[List[Floats3d], List[Floats2d]]:
    """`sum_l X[:, l] @ W[l] + b`: a linear map of the layers side by side,
    with `W` (n_layers, width, width) starting as the identity over n_layers
    (the plain mean of the layers, as `scalar_mix` starts) and `b` at zero. The
    number of layers and the width are taken from the first input that has
    more than one layer. With `model.attrs["input_gradient"]` false (set by
    the listener when it reads cached features) the backprop updates the
    parameters' gradients only and returns no input gradient."""
    return Model("linear_mix", _linear_mix_forward, params={"W": None, "b": None}, dims={"nL": None, "nI": None})


def _linear_mix_forward(model: Model, Xs: List[Floats3d], is_train: bool):
    ops = model.ops
    n_layers = max((X.shape[1] for X in Xs), default=1)
    if n_layers > 1 and not model.has_dim("nL"):
        width = next(X.shape[2] for X in Xs if X.shape[1] > 1)
        model.set_dim("nL", n_layers)
        model.set_dim("nI", width)
        eye = ops.xp.eye(width, dtype="float32") / n_layers
        model.set_param("W", ops.asarray3f(ops.xp.stack([eye] * n_layers)))
        model.set_param("b", ops.alloc1f(width))
    if not model.has_dim("nL"):  # only zeros seen yet (initialization): widths matter, not values
        return [X[:, 0] for X in Xs], lambda dYs: [ops.xp.expand_dims(dY, 1) for dY in dYs]
    n_layers, width = model.get_dim("nL"), model.get_dim("nI")
    if any(X.shape[1] != n_layers or X.shape[2] != width for X in Xs if X.shape[1] > 1):
        raise ValueError(f"linear_mix expected {n_layers} layers of width {width}, got {[X.shape[1:] for X in Xs]}")
    W = model.get_param("W").reshape((n_layers * width, width))
    # One matrix product for the whole batch (docs are short: one per doc is slow),
    # by the array module's matmul (numpy's BLAS is about 3x thinc's gemm here).
    # A doc the transformer did not run on (one layer of zeros) stays zeros.
    mixed = [i for i, X in enumerate(Xs) if X.shape[1] > 1 and len(X)]
    X_all = ops.xp.concatenate([Xs[i].reshape((len(Xs[i]), -1)) for i in mixed]) if mixed else None
    Ys = [X[:, 0] if X.shape[1] == 1 else ops.alloc2f(0, width) for X in Xs]
    if mixed:
        Y_all = X_all @ W
        Y_all += model.get_param("b")
        for i, Y in zip(mixed, ops.xp.split(Y_all, _ends(Xs, mixed))):
            Ys[i] = Y
    input_gradient = model.attrs.get("input_gradient", True)

    def backprop(dYs: List[Floats2d]) -> List[Floats3d]:
        d_mixed = {}
        if mixed:
            dY_all = ops.xp.concatenate([dYs[i] for i in mixed])
            model.inc_grad("W", (X_all.T @ dY_all).reshape((n_layers, width, width)))
            model.inc_grad("b", dY_all.sum(axis=0))
            if not input_gradient:  # cached features: nothing upstream takes a gradient
                return []
            d_mixed = dict(zip(mixed, ops.xp.split(dY_all @ W.T, _ends(Xs, mixed))))
        return [
            d_mixed[i].reshape(X.shape) if i in d_mixed
            else ops.xp.expand_dims(dY, 1) if X.shape[1] == 1
            else ops.xp.zeros_like(X)  # an empty doc
            for i, (X, dY) in enumerate(zip(Xs, dYs))
        ]

    return Ys, backprop


def _ends(Xs: List[Floats3d], indices: List[int]) -> List[int]:
    """Row offsets that split the concatenation of `Xs[i] for i in indices` back per doc."""
    return list(accumulate(len(Xs[i]) for i in indices))[:-1]


def convert_transformer_outputs(model: Model, inputs_outputs: Tuple, is_train: bool) -> Tuple[ModelOutput, Callable]:
    """spacy-transformers' `_convert_transformer_outputs`, but the backprop also
    takes one gradient per hidden state (from `ScalarMixListener`), not only the
    last hidden state's."""
    _, model_output = inputs_outputs

    def backprop(d_model_output: ModelOutput) -> ArgsKwargs:
        grads = list(d_model_output.values())
        states: Optional[Tuple] = model_output.get("hidden_states")
        if len(grads) == 1:
            tensors = [model_output.last_hidden_state]
        elif states is not None and len(grads) == len(states):
            tensors = list(states)
        else:
            raise ValueError(
                f"Got {len(grads)} gradient tensors for a transformer output with "
                f"{len(states) if states else 0} hidden states: give every listener of the "
                "transformer the same listener architecture."
            )
        return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": grads})

    return model_output, backprop
