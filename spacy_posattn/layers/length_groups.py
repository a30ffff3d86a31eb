"""Run the encoder on length-sorted groups of spans at prediction time.

spacy-transformers pads every span of a batch to the longest one before the
encoder sees them (`padding="longest"`), so a batch of 64 sentences costs 64
times its longest sentence. `LengthGroupsMixin.predict` sorts the rows by
length, runs them in groups of `group_rows`, each cut to its own longest row,
and puts the outputs back in the original order and shape (zeros where the
padding was: no alignment points there). The attention mask already makes the
real positions independent of the padding, so the outputs are the same up to
float rounding. Training (`begin_update`) is unchanged.
"""
from typing import Any, Dict, List

import torch
from thinc.api import ArgsKwargs, Model

from .encoder_shim import encoder_shim


class LengthGroupsMixin:
    """`predict` for spacy-transformers' `HFShim` in length-sorted groups.

    group_rows (int): Rows (spans) per group; 0 runs the batch as one group.
    """

    group_rows: int = 0

    def predict(self, inputs: ArgsKwargs) -> Any:
        mask = inputs.kwargs.get("attention_mask")
        n_rows = 0 if mask is None else mask.shape[0]
        if not self.group_rows or inputs.args or n_rows <= self.group_rows:
            return super().predict(inputs)
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        outputs: List[Any] = []
        groups = [order[i : i + self.group_rows] for i in range(0, n_rows, self.group_rows)]
        for rows in groups:
            longest = max(int(lengths[rows[0]]), 1)
            kwargs = {k: _rows(v, rows, longest, n_rows) for k, v in inputs.kwargs.items()}
            outputs.append(super().predict(ArgsKwargs(args=(), kwargs=kwargs)))
        return _scatter(outputs, groups, n_rows, mask.shape[1])


def _rows(value: Any, rows: torch.Tensor, longest: int, n_rows: int) -> Any:
    """The group's rows of a (rows, positions) input, cut to `longest` positions."""
    if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[0] == n_rows:
        return value[rows, :longest]
    return value


def _scatter(outputs: List[Any], groups: List[torch.Tensor], n_rows: int, n_positions: int) -> Any:
    """Put each group's outputs back at its rows, padded to `n_positions`."""
    first = outputs[0]
    fields: Dict[str, Any] = {}
    for key in first.keys():
        values = [output[key] for output in outputs]
        if isinstance(values[0], tuple):  # hidden_states: one tensor per layer
            fields[key] = tuple(
                _scatter_tensor([v[i] for v in values], groups, n_rows, n_positions)
                for i in range(len(values[0]))
            )
        else:
            fields[key] = _scatter_tensor(values, groups, n_rows, n_positions)
    return type(first)(**fields)


def _scatter_tensor(values: List[torch.Tensor], groups: List[torch.Tensor], n_rows: int, n_positions: int) -> torch.Tensor:
    first = values[0]
    # (rows, positions, width): last_hidden_state, each hidden state; (rows, width): pooler_output.
    if first.dim() in (2, 3):
        full = first.new_zeros((n_rows, n_positions, first.shape[2]) if first.dim() == 3 else (n_rows, first.shape[1]))
        for rows, value in zip(groups, values):
            full[rows, : value.shape[1]] = value  # every row of a 2-d value is whole
        return full
    raise ValueError(
        f"group_rows: can't regroup an encoder output of shape {tuple(first.shape)} (e.g. "
        "output_attentions); set the transformer's group_rows = 0"
    )


def set_encoder_group_rows(transformer: Model, group_rows: int) -> None:
    """Make the encoder of a spacy-transformers `TransformerModel` predict in
    length-sorted groups of `group_rows` spans (0: the batch at once). Its shim
    must have `LengthGroupsMixin` (`set_encoder_lr_scale` gives it that).

    transformer (Model): The `TransformerModel`.
    group_rows (int): Spans per group, >= 0.
    """
    if not isinstance(group_rows, int) or group_rows < 0:
        raise ValueError(f"group_rows must be an integer >= 0, got {group_rows!r}")
    shim = encoder_shim(transformer)
    if not isinstance(shim, LengthGroupsMixin):
        raise ValueError(f"group_rows needs the encoder shim with LengthGroupsMixin, found {type(shim).__name__}")
    shim.group_rows = group_rows
