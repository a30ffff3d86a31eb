"""Dropout on a head's input features, at its own rate.

A frozen (or cached) encoder gives the heads the same vectors every epoch,
without the dropout that BERT applies inside itself when it is fine-tuned, so
heads trained on cached features overfit them. thinc's `Dropout` can't stand
in: spaCy's `[training] dropout` overwrites every layer's `dropout_rate`
attribute (`thinc.model.set_dropout_rate`), so this layer keeps its rate under
another name.
"""
from typing import Callable, List, Tuple

from thinc.api import Model
from thinc.types import Floats2d


def feature_dropout(rate: float) -> Model[List[Floats2d], List[Floats2d]]:
    """Zero each input feature with probability `rate` in training (scaling the
    rest by 1 / (1 - rate)); the identity at prediction time.

    rate (float): Dropout rate; spaCy's `[training] dropout` does not change it.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"input_dropout must be in [0, 1), got {rate!r}")
    return Model("feature_dropout", _feature_dropout_forward, attrs={"feature_dropout_rate": rate})


def _feature_dropout_forward(
    model: Model, Xs: List[Floats2d], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    rate = model.attrs["feature_dropout_rate"]
    if not is_train or rate == 0.0:
        return Xs, lambda dYs: dYs
    masks = [model.ops.get_dropout_mask(X.shape, rate).astype(X.dtype, copy=False) for X in Xs]

    def backprop(dYs: List[Floats2d]) -> List[Floats2d]:
        return [dY * mask for dY, mask in zip(dYs, masks)]

    return [X * mask for X, mask in zip(Xs, masks)], backprop
