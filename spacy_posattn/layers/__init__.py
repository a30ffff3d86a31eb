from .positional_attention import PositionalAttentionEncoder, positional_attention_encoder

__all__ = ["PositionalAttentionEncoder", "positional_attention_encoder"]
