from .encoder_rate import ScaledRateHFShim, set_encoder_lr_scale
from .positional_attention import PositionalAttentionEncoder, positional_attention_encoder

__all__ = ["PositionalAttentionEncoder", "ScaledRateHFShim", "positional_attention_encoder", "set_encoder_lr_scale"]
