"""Find the shim of the Hugging Face encoder inside a spacy-transformers model."""
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model


def encoder_shim(transformer: Model) -> HFShim:
    """RETURNS (HFShim): The one `HFShim` in a spacy-transformers
    `TransformerModel` (the shim that `set_encoder_*` turn into ours)."""
    shims = [shim for node in transformer.walk() for shim in node.shims if isinstance(shim, HFShim)]
    if len(shims) != 1:
        raise ValueError(f"Expected one HFShim in the transformer model, found {len(shims)}")
    return shims[0]
