"""Positional attention within sentences.

The heads are trained on one-sentence Docs, so at prediction a Doc of several
sentences shows their attention blocks something they never saw: neighbours
from the sentence before and after. When a Doc has sentence boundaries (a
`sentencizer`, `senter` or parser ran before, as in the default pipeline), the
blocks see each sentence as its own segment, exactly as if it were a Doc of
its own. Docs without sentence boundaries (the training Docs) are one segment,
as before. The model's layers and parameters are those of the plain chain, so
pipelines saved before load and predict with it.
"""
from typing import List, Tuple

from spacy.tokens import Doc
from thinc.api import Model
from thinc.layers.chain import init as chain_init
from thinc.types import Floats2d

from ..sentences import sentence_slices


def chain_within_sentences(
    features: Model[List[Doc], List[Floats2d]],
    project: Model[List[Floats2d], List[Floats2d]],
    attention: Model[List[Floats2d], List[Floats2d]],
    output: Model[List[Floats2d], List[Floats2d]],
) -> Model[List[Doc], List[Floats2d]]:
    """`chain(features, project, attention, output)`, with `attention` run on
    each sentence of a doc as its own sequence (`sentence_slices`).

    RETURNS (Model[List[Doc], List[Floats2d]]): The model, with the same layers.
    """
    layers = [features, project, attention, output]
    return Model(
        ">>".join(layer.name for layer in layers),
        _forward,
        init=chain_init,
        dims={"nO": output.get_dim("nO") if output.has_dim("nO") else None},
        layers=layers,
    )


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], object]:
    features, project, attention, output = model.layers
    X, backprop_features = features(docs, is_train)
    H, backprop_project = project(X, is_train)
    lengths = [[part.stop - part.start for part in sentence_slices(doc)] for doc in docs]
    counts = [len(doc_lengths) for doc_lengths in lengths]
    whole_docs = all(count == 1 for count in counts)
    if whole_docs:
        A, backprop_attention = attention(H, is_train)
    else:
        A_sentences, backprop_attention = attention(_split(H, lengths), is_train)
        A = _join(model.ops, A_sentences, counts)
    Y, backprop_output = output(A, is_train)

    def backprop(dY: List[Floats2d]) -> List[Doc]:
        dA = backprop_output(dY)
        if whole_docs:
            dH = backprop_attention(dA)
        else:
            dH = _join(model.ops, backprop_attention(_split(dA, lengths)), counts)
        return backprop_features(backprop_project(dH))

    return Y, backprop


def _split(arrays: List[Floats2d], lengths: List[List[int]]) -> List[Floats2d]:
    """The rows of each sentence of each doc, in order."""
    out = []
    for array, doc_lengths in zip(arrays, lengths):
        start = 0
        for length in doc_lengths:
            out.append(array[start : start + length])
            start += length
    return out


def _join(ops, pieces: List[Floats2d], counts: List[int]) -> List[Floats2d]:
    """One array per doc from its `count` consecutive pieces."""
    out = []
    start = 0
    for count in counts:
        doc_pieces = pieces[start : start + count]
        out.append(doc_pieces[0] if count == 1 else ops.xp.concatenate(doc_pieces, axis=0))
        start += count
    return out
