"""spacy-posattn: BERT + positional-attention named-entity recognition for spaCy."""
from . import architectures, callbacks, loggers, readers  # noqa: F401  (register their functions)
from .pipeline import PosAttnEntityRecognizer, make_posattn_ner

__version__ = "0.1.0"
__all__ = ["PosAttnEntityRecognizer", "make_posattn_ner", "__version__"]
