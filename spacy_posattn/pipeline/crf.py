"""A linear-chain CRF over the tagger's outputs (opt-in: `crf = true`).

The entity head's per-token log probabilities are the CRF's emission scores;
learned start, transition and end scores are added to the BILUO constraints of
`decoding.transition_constraints`. Training maximises the log likelihood of
the gold tag sequence, computed with the forward-backward algorithm in the
log domain. Tokens without a gold tag are marginalised over, so partially
annotated docs train as spaCy's own components do: they add no loss.

Because the emissions are log-softmax outputs and a per-token constant cancels
in the CRF's normalisation, the gradient with respect to the output layer's
logits is the CRF's tag marginals minus those under the gold tags, which is
what thinc's `Softmax_v2` expects in its backward pass.
"""
from typing import List, Optional, Sequence, Tuple

import numpy
from thinc.api import Model

from .decoding import NEG_INF

# Disallowed tags (constraints, or tags other than the gold one) score this.
_IMPOSSIBLE = NEG_INF / 2


def with_crf_scores(output: Model, softmax: Model) -> Model:
    """Wrap the output layer so the model also holds the CRF's learned
    `start` (T,), `transitions` (T, T) and `end` (T,) scores, zeros at first.
    The forward pass is the output layer's: the scores are read by
    `posattn_ner` for its loss and decoding.

    output (Model): The output layer (e.g. dropout + softmax over arrays).
    softmax (Model): Its softmax layer, whose `nO` is the number of tags.
    RETURNS (Model): The wrapped layer.
    """

    def forward(model: Model, Xs, is_train: bool):
        return output(Xs, is_train)

    def init(model: Model, X=None, Y=None) -> None:
        output.initialize(X=X, Y=Y)
        n_tags = softmax.get_dim("nO")
        model.set_dim("nO", n_tags)
        for name, shape in (("start", (n_tags,)), ("transitions", (n_tags, n_tags)), ("end", (n_tags,))):
            model.set_param(name, model.ops.alloc(shape, dtype="f"))

    return Model(
        "crf_scores",
        forward,
        init=init,
        layers=[output],
        dims={"nO": None},
        params={"start": None, "transitions": None, "end": None},
    )


def _logsumexp(x: numpy.ndarray, axis: int) -> numpy.ndarray:
    peak = x.max(axis=axis, keepdims=True)
    return (numpy.log(numpy.exp(x - peak).sum(axis=axis, keepdims=True)) + peak).squeeze(axis)


def forward_backward(
    emissions: numpy.ndarray,
    lengths: numpy.ndarray,
    start: numpy.ndarray,
    transitions: numpy.ndarray,
    end: numpy.ndarray,
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Log partition function, tag marginals and expected transition counts of
    a batch of right-padded sequences.

    emissions (ndarray): (B, L, T) scores; rows past a sequence's length are ignored.
    lengths (ndarray): (B,) sequence lengths, each ≥ 1.
    start, transitions, end: (T,), (T, T), (T,) scores.
    RETURNS (Tuple[ndarray, ndarray, ndarray]): log Z (B,), marginals (B, L, T)
        (zero past each length), and the expected count of each transition
        summed over the batch (T, T).
    """
    emissions = emissions.astype("float64")
    transitions = transitions.astype("float64")
    n_docs, max_len, n_tags = emissions.shape
    alpha = numpy.zeros((n_docs, max_len, n_tags))
    alpha[:, 0] = start + emissions[:, 0]
    for t in range(1, max_len):
        step = _logsumexp(alpha[:, t - 1, :, None] + transitions[None], axis=1) + emissions[:, t]
        alpha[:, t] = numpy.where((t < lengths)[:, None], step, alpha[:, t - 1])
    last = lengths - 1
    log_z = _logsumexp(alpha[numpy.arange(n_docs), last] + end, axis=1)
    beta = numpy.zeros((n_docs, max_len, n_tags))
    beta[numpy.arange(n_docs), last] = end
    for t in range(max_len - 2, -1, -1):
        inside = (t < last)[:, None]
        step = _logsumexp(transitions[None] + (emissions[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = numpy.where(inside, step, beta[:, t])
    active = numpy.arange(max_len)[None, :] < lengths[:, None]
    marginals = numpy.exp(alpha + beta - log_z[:, None, None]) * active[:, :, None]
    pair_counts = numpy.zeros((n_tags, n_tags))
    for t in range(1, max_len):
        live = t < lengths
        if not live.any():
            break
        pair = (
            alpha[live, t - 1, :, None] + transitions[None]
            + (emissions[live, t] + beta[live, t])[:, None, :] - log_z[live, None, None]
        )
        pair_counts += numpy.exp(pair).sum(axis=0)
    return log_z, marginals, pair_counts


def crf_loss(
    log_probs: Sequence[numpy.ndarray],
    gold: Sequence[numpy.ndarray],
    start: numpy.ndarray,
    transitions: numpy.ndarray,
    end: numpy.ndarray,
    texts: Optional[Sequence[str]] = None,
) -> Tuple[float, List[numpy.ndarray], numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Negative log likelihood of the gold tags and its gradients.

    log_probs (Sequence[ndarray]): (n_tokens, T) emission scores per doc.
    gold (Sequence[ndarray]): Gold tag index per token, -1 where unknown.
    start, transitions, end: Total scores (constraints + learned).
    texts (Optional[Sequence[str]]): The docs' texts, to name a doc in errors.
    RETURNS (Tuple): loss, d_emissions per doc, d_start, d_transitions, d_end.
    """
    n_tags = transitions.shape[0]
    keep = [i for i, lp in enumerate(log_probs) if len(lp)]
    d_emissions = [numpy.zeros(lp.shape, dtype="float32") for lp in log_probs]
    zero = numpy.zeros((n_tags,), dtype="float32")
    if not keep:
        return 0.0, d_emissions, zero, numpy.zeros((n_tags, n_tags), dtype="float32"), zero.copy()
    lengths = numpy.array([len(log_probs[i]) for i in keep], dtype="int64")
    emissions = numpy.zeros((len(keep), int(lengths.max()), n_tags))
    gold_emissions = numpy.zeros_like(emissions)
    for row, i in enumerate(keep):
        n, ids = len(log_probs[i]), numpy.asarray(gold[i])
        emissions[row, :n] = log_probs[i]
        # Under the gold tags: only the gold tag is possible where it is known.
        mask = numpy.zeros((n, n_tags))
        known = numpy.nonzero(ids >= 0)[0]
        mask[known] = _IMPOSSIBLE
        mask[known, ids[known]] = 0.0
        gold_emissions[row, :n] = log_probs[i] + mask
    log_z, marginals, pairs = forward_backward(emissions, lengths, start, transitions, end)
    gold_log_z, gold_marginals, gold_pairs = forward_backward(gold_emissions, lengths, start, transitions, end)
    impossible = numpy.nonzero(gold_log_z < _IMPOSSIBLE / 2)[0]
    if len(impossible):
        i = keep[int(impossible[0])]
        where = f" ('{texts[i][:60]}')" if texts is not None else ""
        raise ValueError(
            f"[posattn_ner] The gold BILUO tags of doc {i} in the batch{where} are not a well-formed "
            "sequence (e.g. an I- or L- tag without a B- before it), so the CRF cannot score them. "
            "Check the corpus's entity annotation."
        )
    for row, i in enumerate(keep):
        n = lengths[row]
        d_emissions[i] = (marginals[row, :n] - gold_marginals[row, :n]).astype("float32")
    d_start = (marginals[:, 0] - gold_marginals[:, 0]).sum(axis=0)
    last = lengths - 1
    rows = numpy.arange(len(keep))
    d_end = (marginals[rows, last] - gold_marginals[rows, last]).sum(axis=0)
    loss = float((log_z - gold_log_z).sum())
    return loss, d_emissions, d_start.astype("float32"), (pairs - gold_pairs).astype("float32"), d_end.astype("float32")
