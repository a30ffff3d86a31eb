"""Parameter averages (`use_averages = true`) for the PyTorch layers.

thinc's optimizer keeps a moving average of each parameter under the key the
layer's `finish_update` passes it: `(shim.id, name)` for a PyTorch shim. But
`PyTorchShim.use_params` looks averages up as `"pytorch_{id}_{name}"`, so
`nlp.use_params(optimizer.averages)`, which `spacy train` applies to every dev
evaluation and to the saved pipelines, leaves every PyTorch weight (the encoder
and the attention blocks) as it is. `AveragedParamsMixin` looks them up under the
keys that were written.
"""
import contextlib
from typing import Dict, Tuple

from thinc.api import Model, PyTorchShim, xp2torch
from thinc.types import FloatsXd


class AveragedParamsMixin:
    """`use_params` for a `PyTorchShim` (or subclass) that finds the optimizer's
    averages under the `(shim id, parameter name)` keys of `finish_update`."""

    @contextlib.contextmanager
    def use_params(self, params: Dict[Tuple[int, str], FloatsXd]):
        current = dict(self._model.named_parameters())
        state = {name: xp2torch(params[(self.id, name)], device=self.device) for name in current if (self.id, name) in params}
        if not state:
            yield
            return
        backup = {name: current[name].detach().clone() for name in state}
        self._model.load_state_dict(state, strict=False)
        try:
            yield
        finally:
            self._model.load_state_dict(backup, strict=False)


class AveragedParamsShim(AveragedParamsMixin, PyTorchShim):
    """thinc's `PyTorchShim` with `use_params` that applies the averages."""


def use_averaged_params_shims(model: Model) -> Model:
    """Give every plain `PyTorchShim` in `model` the averaging `use_params`
    (the encoder's shims, `ScaledRateHFShim` and `Int8HFShim`, have it already).

    RETURNS (Model): `model`, changed in place.
    """
    for node in model.walk():
        for shim in node.shims:
            if type(shim) is PyTorchShim:
                shim.__class__ = AveragedParamsShim
    return model
