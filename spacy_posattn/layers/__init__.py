from .averages import AveragedParamsShim, use_averaged_params_shims
from .bf16 import Bf16HFShim, set_encoder_bf16
from .encoder_rate import ScaledRateHFShim, set_encoder_lr_scale
from .encoder_shim import encoder_shim
from .length_groups import LengthGroupsMixin, set_encoder_group_rows
from .int8 import Int8HFShim, set_encoder_int8
from .positional_attention import PositionalAttentionEncoder, positional_attention_encoder

__all__ = [
    "AveragedParamsShim",
    "Bf16HFShim",
    "Int8HFShim",
    "LengthGroupsMixin",
    "PositionalAttentionEncoder",
    "ScaledRateHFShim",
    "encoder_shim",
    "positional_attention_encoder",
    "set_encoder_bf16",
    "set_encoder_group_rows",
    "set_encoder_int8",
    "set_encoder_lr_scale",
    "use_averaged_params_shims",
]
