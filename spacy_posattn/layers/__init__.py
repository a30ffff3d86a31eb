from .encoder_rate import ScaledRateHFShim, set_encoder_lr_scale
from .int8 import Int8HFShim, set_encoder_int8
from .positional_attention import PositionalAttentionEncoder, positional_attention_encoder

__all__ = [
    "Int8HFShim",
    "PositionalAttentionEncoder",
    "ScaledRateHFShim",
    "positional_attention_encoder",
    "set_encoder_int8",
    "set_encoder_lr_scale",
]
