"""int8 CPU inference for the encoder: PyTorch dynamic quantization at load
time (`LoadTimeConversionShim`: the stored weights stay fp32).
"""
import re
import warnings
from typing import Callable, Dict, List

import torch
from thinc.api import Model
from torch import nn

from .encoder_shim import encoder_shim
from .load_time_conversion import LoadTimeConversionShim

# Which Linear layers of the encoder to quantize, by qualified module name.
# Parts combine with "+", e.g. "attention+ffn_in".
_ATTENTION = re.compile(r"attention|attn", re.IGNORECASE)
_FFN_IN = re.compile(r"intermediate|lin1", re.IGNORECASE)  # BERT / DistilBERT: width -> 4 x width
INT8_PARTS: Dict[str, Callable[[str], bool]] = {
    "none": lambda name: False,
    "attention": lambda name: bool(_ATTENTION.search(name)),
    "ffn": lambda name: not _ATTENTION.search(name),
    # The feed-forward layer's first (expanding) Linear; its second one takes the
    # GELU's outputs, whose outliers int8 rounds worst.
    "ffn_in": lambda name: bool(_FFN_IN.search(name)) and not _ATTENTION.search(name),
    "ffn_out": lambda name: not _ATTENTION.search(name) and not _FFN_IN.search(name),
    "all": lambda name: True,
}


def parse_int8_parts(parts: str) -> List[str]:
    """RETURNS (List[str]): The parts of "attention+ffn_in" and the like.
    Raises ValueError, naming the choices, for an unknown part."""
    chosen = parts.split("+") if isinstance(parts, str) else [parts]
    unknown = [part for part in chosen if part not in INT8_PARTS]
    if unknown:
        raise ValueError(
            f"int8 must be one of {', '.join(INT8_PARTS)} or several joined by '+' "
            f"(e.g. attention+ffn_in), got {parts!r}"
        )
    return chosen


def int8_linear_names(module: nn.Module, parts: str) -> List[str]:
    """RETURNS (List[str]): The qualified names of the Linear layers of
    `module` that `parts` (see `INT8_PARTS`; several joined by "+") selects."""
    chosen = [INT8_PARTS[part] for part in parse_int8_parts(parts)]
    return [
        name for name, sub in module.named_modules()
        if isinstance(sub, nn.Linear) and any(select(name) for select in chosen)
    ]


def quantize_linear_layers(module: nn.Module, names: List[str]) -> nn.Module:
    """Replace the named Linear layers of `module` by int8 dynamically
    quantized ones, in place (the shim holds the module twice)."""
    if not names:
        return module
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, set(names), dtype=torch.qint8, inplace=True)


class Int8HFShim(LoadTimeConversionShim):
    """spacy-transformers' `HFShim` that runs the encoder with int8 Linear
    layers (the `int8` part) and saves the fp32 weights it was loaded with."""

    int8: str = "none"

    @property
    def quantized(self) -> bool:
        return self.converted

    def convert_model(self, model: nn.Module) -> None:
        quantize_linear_layers(model, int8_linear_names(model, self.int8))

    def describe(self) -> str:
        return f'int8 = "{self.int8}"'


def set_encoder_int8(transformer: Model, parts: str) -> None:
    """Make the HF model inside a spacy-transformers `TransformerModel` run
    its `parts` Linear layers in int8 (see `INT8_PARTS`).

    transformer (Model): The `TransformerModel`.
    parts (str): "none", "attention", "ffn", "ffn_in", "ffn_out" or "all", or
        several joined by "+" (e.g. "attention+ffn_in").
    """
    if set(parse_int8_parts(parts)) == {"none"}:
        return
    shim = encoder_shim(transformer)
    shim.__class__ = Int8HFShim
    shim.int8 = parts
