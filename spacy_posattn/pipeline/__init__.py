from .ner import PosAttnEntityRecognizer, make_posattn_ner
from .tagger import PosAttnTagger, make_posattn_tagger

__all__ = ["PosAttnEntityRecognizer", "make_posattn_ner", "PosAttnTagger", "make_posattn_tagger"]
