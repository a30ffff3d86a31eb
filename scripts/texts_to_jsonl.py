"""Write the texts of a .spacy file as JSON lines ({"text": ...}), REPEAT times.

usage: python scripts/texts_to_jsonl.py DATA.spacy OUT.jsonl [REPEAT]
"""
import json
import sys
from pathlib import Path

import spacy
from spacy.tokens import DocBin

data, out = Path(sys.argv[1]), Path(sys.argv[2])
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
docs = list(DocBin().from_disk(data).get_docs(spacy.blank("en").vocab))
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("w", encoding="utf8") as f:
    for _ in range(repeat):
        for doc in docs:
            f.write(json.dumps({"text": doc.text}) + "\n")
print(f"{len(docs) * repeat:,} texts, {sum(len(d) for d in docs) * repeat:,} words -> {out}")
