"""A smaller learning rate for the pretrained encoder than for the heads.

thinc's optimizers take `lr_scale` per call (`optimizer(key, W, dW, lr_scale=...)`),
which scales the Adam step and the AdamW decay, but no layer passes it. A
gradient scale (`grad_factor`) is no substitute: Adam divides it out.
`ScaledRateHFShim` is spacy-transformers' `HFShim` whose updates go through
the optimizer with the configured `lr_scale`.
"""
from typing import Any

from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model, Optimizer

from .averages import AveragedParamsMixin
from .encoder_shim import encoder_shim
from .length_groups import LengthGroupsMixin


class ScaledRateOptimizer:
    """Forward calls to `optimizer` with `lr_scale` multiplied in."""

    def __init__(self, optimizer: Optimizer, lr_scale: float) -> None:
        self.optimizer = optimizer
        self.lr_scale = lr_scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.lr_scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


class ScaledRateHFShim(AveragedParamsMixin, LengthGroupsMixin, HFShim):
    """`HFShim` whose parameter updates use `lr_scale` times the optimizer's step
    (whose `use_params` applies the optimizer's averages, and which predicts in
    length-sorted groups: `LengthGroupsMixin`)."""

    lr_scale: float = 1.0

    def finish_update(self, optimizer: Optimizer) -> None:
        if self.lr_scale == 1.0:
            return super().finish_update(optimizer)
        return super().finish_update(ScaledRateOptimizer(optimizer, self.lr_scale))


def set_encoder_lr_scale(transformer: Model, lr_scale: float) -> None:
    """Make the HF model inside a spacy-transformers `TransformerModel` update
    with `lr_scale` times the optimizer's learning rate.

    transformer (Model): The `TransformerModel`.
    lr_scale (float): Factor on the step size (1.0: unchanged; 0.0: frozen).
    """
    if not lr_scale >= 0.0:
        raise ValueError(f"encoder lr_scale must be >= 0, got {lr_scale!r}")
    shim = encoder_shim(transformer)
    shim.__class__ = ScaledRateHFShim
    shim.lr_scale = float(lr_scale)
