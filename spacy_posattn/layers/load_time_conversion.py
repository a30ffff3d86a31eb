"""An encoder converted for CPU inference when it is loaded, saved as fp32.

Saving a converted (quantized, bfloat16) model through spacy-transformers is
silently broken: its `from_bytes` rebuilds a float model, the strict load
fails, and the fallback leaves the Linear layers random. So the stored weights
stay fp32 and `LoadTimeConversionShim` converts the model after loading (or at
the first prediction of a freshly initialised pipeline); `to_bytes` gives back
the fp32 weights it was loaded with, so saving, packaging or pickling the
pipeline loses nothing.
"""
from typing import Optional

from spacy_transformers.layers.hf_shim import HFShim
from torch import nn

from .averages import AveragedParamsMixin
from .length_groups import LengthGroupsMixin


class LoadTimeConversionShim(AveragedParamsMixin, LengthGroupsMixin, HFShim):
    """spacy-transformers' `HFShim` whose model is converted for inference
    (`convert_model`, given by subclasses) and saved as fp32."""

    _fp32_bytes: Optional[bytes] = None

    @property
    def converted(self) -> bool:
        return self._fp32_bytes is not None

    def convert_model(self, model: nn.Module) -> None:
        """Convert `model` in place for inference."""
        raise NotImplementedError

    def describe(self) -> str:
        """RETURNS (str): The config setting that asked for the conversion."""
        raise NotImplementedError

    def convert(self) -> None:
        """Convert the encoder now, keeping its fp32 weights for `to_bytes`."""
        if self.converted or self._model is None:
            return
        fp32_bytes = super().to_bytes()
        self._convert_on_cpu()
        self._fp32_bytes = fp32_bytes

    def __call__(self, inputs, is_train: bool):
        if is_train:
            raise ValueError(
                f"The encoder runs with {self.describe()}, which is for inference only: "
                "train without it and turn it on for the trained pipeline"
            )
        self.convert()
        return super().__call__(inputs, is_train)

    def to_bytes(self):
        return self._fp32_bytes if self.converted else super().to_bytes()

    def from_bytes(self, bytes_data):
        self._fp32_bytes = None
        super().from_bytes(bytes_data)
        self._convert_on_cpu()
        self._fp32_bytes = bytes_data
        return self

    def _convert_on_cpu(self) -> None:
        devices = {p.device.type for p in self._model.parameters()}
        if devices - {"cpu"}:
            raise ValueError(
                f"{self.describe()} is for CPU inference, but the encoder is on "
                f"{', '.join(sorted(devices))}: use mixed_precision = true on a GPU instead"
            )
        self.convert_model(self._model)
