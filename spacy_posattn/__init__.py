"""spacy-posattn: BERT + positional-attention named-entity recognition for spaCy.

spaCy finds the package's factories, architectures, readers, loggers and
callbacks through entry points (setup.cfg), so nothing here is imported eagerly:
`python -m spacy_posattn convert` doesn't pay for torch and transformers.
"""
__version__ = "0.1.0"
__all__ = ["PosAttnEntityRecognizer", "make_posattn_ner", "PosAttnTagger", "make_posattn_tagger", "__version__"]


def __getattr__(name: str):
    if name in ("PosAttnEntityRecognizer", "make_posattn_ner", "PosAttnTagger", "make_posattn_tagger"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'spacy_posattn' has no attribute '{name}'")
