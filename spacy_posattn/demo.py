"""Show what a pipeline predicts: a token table and a displaCy page."""
from pathlib import Path
from typing import Iterable, List

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc

# The paper's example first, then a few more news-style sentences.
DEMO_TEXTS = [
    "Alice will go to China this Saturday! Her father works in WHO.",
    "The European Union imposed new sanctions on Iran on Monday, officials in Brussels said.",
    "President Barack Obama met Prime Minister Gordon Brown in London during the G20 summit.",
    "Hurricane Katrina struck New Orleans in August 2005.",
]


def token_rows(doc: Doc) -> List[List[str]]:
    """RETURNS (List[List[str]]): token, entity (IOB-type) and POS tag per token."""
    return [[t.text, f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O", t.tag_] for t in doc]


def render_page(docs: Iterable[Doc], output_path: Path) -> Path:
    """Write the docs' entities as one displaCy HTML page; RETURNS its path."""
    html = displacy.render(list(docs), style="ent", page=True, jupyter=False)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(html, encoding="utf8")
    return output_path


def run_demo(nlp: Language, texts: Iterable[str] = DEMO_TEXTS) -> List[Doc]:
    """RETURNS (List[Doc]): The demo texts processed by `nlp`."""
    return list(nlp.pipe(texts))
