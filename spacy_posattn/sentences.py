"""What a sentence is at prediction: the unit that the encoder's spans, the heads'
attention and the feature CRFs each read on their own."""
from typing import List

from spacy.tokens import Doc


def sentence_slices(doc: Doc) -> List[slice]:
    """The doc's sentences as token slices when it has sentence boundaries (a
    sentencizer ran, or the gold training Docs), else the whole doc as one.

    RETURNS (List[slice]): The slices, in order, covering the doc.
    """
    if len(doc) and doc.has_annotation("SENT_START"):
        return [slice(sent.start, sent.end) for sent in doc.sents]
    return [slice(0, len(doc))]
