"""Which part of sentence-by-sentence prediction gives what, on a pipeline saved
without a sentencizer (before session 20's configs).

    python scripts/sentence_parts_probe.py MODEL DATA MODE CRF_WEIGHT

MODE: "strided" (as saved: the encoder's strided windows cut across sentences,
no sentence boundaries), "senter" (a sentencizer in front: the heads' attention
and the CRFs work sentence by sentence, the encoder still on strided windows),
"sents" (the encoder on one span per sentence as well: what `sentence-aware`
writes). CRF_WEIGHT sets both components' crf_weight (0: the networks alone).
Prints strict entity F1 and POS accuracy on DATA's gold tokens.
"""
import sys, time, json
import spacy
from spacy.tokens import DocBin
from spacy_transformers.span_getters import get_sent_spans
from spacy_posattn.evaluate import score_docs, unannotated_copy

model, data, mode, crf = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
nlp = spacy.load(model, config={"components.posattn_ner.crf_weight": crf, "components.tagger.crf_weight": crf})
if mode in ("senter", "sents"):
    nlp.add_pipe("sentencizer", first=True)
if mode == "sents":
    nlp.get_pipe("transformer").model.attrs["get_spans"] = get_sent_spans
gold = list(DocBin().from_disk(data).get_docs(nlp.vocab))
inputs = [unannotated_copy(d) for d in gold]
t = time.perf_counter()
pred = list(nlp.pipe(inputs, batch_size=64))
s = score_docs(gold, pred, seconds=time.perf_counter() - t)
print(json.dumps({"data": data, "mode": mode, "crf": crf, **{k: round(s[k] * 100, 2) for k in ("ents_f", "tag_acc")}, "seconds": round(s["seconds"], 1)}))
