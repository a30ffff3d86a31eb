"""Shared fixtures: a tiny BERT built on disk, tiny training examples, offline mode."""
import os
import string

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import spacy  # noqa: E402
from spacy.training import Example  # noqa: E402

TINY_BERT_CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=37,
    max_position_embeddings=512,
)
TRAIN_DATA = [
    ("Alice will go to China this Saturday .", [(0, 5, "per"), (17, 22, "geo"), (23, 36, "tim")]),
    ("Her father works in WHO .", [(20, 23, "org")]),
    ("Bob met Carol Smith in Paris .", [(0, 3, "per"), (8, 19, "per"), (23, 28, "geo")]),
]


def make_tiny_bert(path) -> str:
    """Write a randomly initialised 1-layer uncased BERT and its tokenizer to `path`."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    vocab += ["alice", "china", "who", "the", "in", "to"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(str(path))
    BertModel(BertConfig(vocab_size=len(vocab), **TINY_BERT_CONFIG)).save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "pooling": {"@layers": "reduce_mean.v1"},
}
LEXICAL = {
    "@architectures": "spacy.MultiHashEmbed.v2",
    "width": 16,
    "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
    "rows": [100, 100, 100, 100],
    "include_static_vectors": False,
}


def make_nlp(
    encoder: str,
    *,
    tagger: bool = True,
    ner: bool = True,
    ner_model: dict = None,
    tagger_model: dict = None,
    transformer_model: dict = None,
) -> spacy.Language:
    """A transformer + (tagger) + (posattn_ner) pipeline over `encoder`, sized for tests."""
    nlp = spacy.blank("en")
    trf_model = {
        "@architectures": "spacy-posattn.TransformerModel.v1",
        "name": encoder,
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 16, "stride": 12},
        "tokenizer_config": {"use_fast": True},
    }
    trf_model.update(transformer_model or {})
    nlp.add_pipe("transformer", config={"model": trf_model})
    if tagger:
        nlp.add_pipe("tagger", config={"model": tagger_model or {"@architectures": "spacy.Tagger.v2", "tok2vec": LISTENER}})
    if ner:
        model = {"width": 32, "heads": 2, "window": 4, "max_distance": 4, "dropout": 0.0, "tok2vec": LISTENER}
        model.update(ner_model or {})
        nlp.add_pipe("posattn_ner", config={"model": model})
    return nlp


def make_examples(nlp, data=TRAIN_DATA, tags: bool = True):
    examples = []
    for text, ents in data:
        doc = nlp.make_doc(text)
        annots = {"entities": ents}
        if tags:
            annots["tags"] = ["NNP" if t.text[0].isupper() else "NN" for t in doc]
        examples.append(Example.from_dict(doc, annots))
    return examples


def train_tiny(nlp, steps: int, *, tags: bool = True, learn_rate: float = None):
    """Initialize `nlp` on TRAIN_DATA and update it `steps` times (with the
    optimizer's own rate, or `learn_rate`). RETURNS the pipeline."""
    examples = make_examples(nlp, tags=tags)
    optimizer = nlp.initialize(lambda: examples)
    if learn_rate is not None:
        optimizer.learn_rate = learn_rate
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return nlp
