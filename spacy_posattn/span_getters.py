"""The encoder's spans: one per sentence when the Doc has sentence boundaries.

The pipelines are trained on one-sentence Docs. On a Doc of several sentences,
spacy-transformers' strided windows cut across them, so the encoder sees
contexts it was never fine-tuned on (GMB's test split as 10-sentence Docs
scored 0.74 entity F1 below the same sentences one per Doc).
"""
from functools import partial
from pathlib import Path
from typing import Callable, List, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import load_config, registry
import spacy_transformers.util  # noqa: F401  (creates registry.span_getters)

from .sentences import sentence_slices


@registry.span_getters("spacy-posattn.sentence_spans.v1")
def configure_sentence_spans(window: int, stride: int) -> Callable[[List[Doc]], List[List[Span]]]:
    """Each sentence of a Doc is a span when the Doc has sentence boundaries
    (e.g. from a `sentencizer` earlier in the pipeline); a Doc without them is
    cut as `spacy-transformers.strided_spans.v1` cuts it, and so is a sentence
    of more than `window` tokens.

    window (int): The longest span, in tokens.
    stride (int): Tokens between the starts of consecutive windows (less than
        `window`: they overlap).
    RETURNS (Callable[[List[Doc]], List[List[Span]]]): The span getter.
    """
    if window < 1 or stride < 1 or stride > window:
        raise ValueError(f"sentence_spans: need 1 <= stride <= window, got window {window}, stride {stride}")
    return partial(get_sentence_spans, window=window, stride=stride)


def get_sentence_spans(docs: List[Doc], window: int, stride: int) -> List[List[Span]]:
    """RETURNS (List[List[Span]]): The spans of each doc (`configure_sentence_spans`)."""
    return [
        [span for part in sentence_slices(doc) for span in strided(doc, part.start, part.stop, window, stride)]
        for doc in docs
    ]


def strided(doc: Doc, start: int, end: int, window: int, stride: int) -> List[Span]:
    """Windows over `doc[start:end]`, as spacy-transformers' `get_strided_spans`
    cuts a whole doc: every `stride` tokens a span of up to `window` tokens,
    until one reaches the end."""
    n = end - start
    spans = []
    offset = 0
    for _ in range(n // stride):
        spans.append(doc[start + offset : min(start + offset + window, end)])
        if offset + window >= n:
            break
        offset += stride
    else:
        if offset < n:
            spans.append(doc[start + offset : end])
    return spans


def load_sentence_aware(path: Union[str, Path], transformer: str = "transformer") -> Language:
    """Load a pipeline saved without a sentencizer (before the sentence-by-sentence
    configs) with one in front and its encoder on `spacy-posattn.sentence_spans.v1`,
    the window and stride kept. Save the result with `nlp.to_disk`.

    path (Union[str, Path]): The pipeline's folder.
    transformer (str): The name of its transformer component.
    RETURNS (Language): The pipeline, predicting sentence by sentence.
    """
    config = load_config(Path(path) / "config.cfg")
    if transformer not in config["nlp"]["pipeline"]:
        raise ValueError(f"{path}: the pipeline has no '{transformer}' component ({', '.join(config['nlp']['pipeline'])})")
    getter = config["components"][transformer]["model"]["get_spans"]
    if getter.get("@span_getters") not in ("spacy-transformers.strided_spans.v1", "spacy-posattn.sentence_spans.v1"):
        raise ValueError(
            f"{path}: the encoder's span getter is {getter.get('@span_getters')!r}; only strided windows "
            "(spacy-transformers.strided_spans.v1) are replaced by sentence spans"
        )
    spans = {"@span_getters": "spacy-posattn.sentence_spans.v1", "window": getter["window"], "stride": getter["stride"]}
    nlp = spacy.load(path, config={f"components.{transformer}.model.get_spans": spans})
    if "sentencizer" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer", first=True, config={"scorer": None})
    return nlp
