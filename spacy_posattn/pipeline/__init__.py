from .ner import PosAttnEntityRecognizer, make_posattn_ner

__all__ = ["PosAttnEntityRecognizer", "make_posattn_ner"]
