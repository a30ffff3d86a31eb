"""The encoder predicts in length-sorted groups without padding waste (issue 10)."""
import numpy
import pytest
import spacy
import torch
from numpy.testing import assert_allclose
from spacy.util import make_tempdir
from thinc.api import fix_random_seed
from thinc.shims.pytorch import PyTorchShim

from spacy_posattn.layers import LengthGroupsMixin, encoder_shim

from .conftest import make_nlp, train_tiny

# Lengths around the strided window (16 word pieces): some texts give two spans.
TEXTS = [
    "Alice .",
    "Alice will go to China this Saturday with Bob and Carol Smith from Paris in May .",
    "Her father works in WHO .",
    "",
    "Bob met Carol Smith in Paris on a very long visit to the old city of Rome last year .",
    "China .",
]


def pipeline_encoder_shim(nlp):
    return encoder_shim(nlp.get_pipe("transformer").model)


@pytest.fixture(scope="module")
def nlp(tiny_bert):
    fix_random_seed(0)
    config = {"transformer_config": {"output_hidden_states": True}}
    return train_tiny(make_nlp(tiny_bert, transformer_model=config), 2)


def arrays(doc):
    """Every array of the doc's encoder output, the hidden states' tuple unpacked."""
    out = []
    for value in doc._.trf_data.tensors:
        out.extend(value if isinstance(value, (list, tuple)) else [value])
    return [numpy.asarray(x) for x in out]


def annotated(nlp, texts=TEXTS):
    return list(nlp.pipe(texts))


def record_encoder_calls(monkeypatch):
    shapes = []
    original = PyTorchShim.predict

    def predict(self, inputs):
        if "input_ids" in inputs.kwargs:  # the encoder's calls, not the attention head's
            shapes.append(tuple(inputs.kwargs["input_ids"].shape))
        return original(self, inputs)

    monkeypatch.setattr(PyTorchShim, "predict", predict)
    return shapes


def test_groups_give_the_same_outputs_with_less_padding(nlp, monkeypatch):
    shim = pipeline_encoder_shim(nlp)
    assert isinstance(shim, LengthGroupsMixin)
    shim.group_rows = 0
    shapes = record_encoder_calls(monkeypatch)
    docs_whole = annotated(nlp)
    (n_rows, full), = shapes  # one call, every span padded to the longest
    shapes.clear()
    shim.group_rows = 2
    docs_grouped = annotated(nlp)
    assert len(shapes) == -(-n_rows // 2)
    assert sum(r * n for r, n in shapes) < n_rows * full  # the short groups are cut
    assert max(n for _, n in shapes) == full and min(n for _, n in shapes) < full
    ner, tagger = nlp.get_pipe("posattn_ner"), nlp.get_pipe("tagger")
    for pipe in (ner, tagger):
        for a, b in zip(pipe.model.predict(docs_whole), pipe.model.predict(docs_grouped)):
            assert_allclose(a, b, atol=1e-5)
    for a, b in zip(docs_whole, docs_grouped):
        wa, wb = a._.trf_data.wordpieces, b._.trf_data.wordpieces
        assert wa.strings == wb.strings
        mask = wa.attention_mask.astype(bool)
        tensors = [(x, y) for x, y in zip(arrays(a), arrays(b)) if x.ndim == 3]
        assert len(tensors) == (3 if len(a) else 0)  # last_hidden_state and both hidden states
        for x, y in tensors:
            assert_allclose(numpy.asarray(x)[mask], numpy.asarray(y)[mask], atol=1e-5)


def test_shim_groups_keep_row_order(nlp):
    shim = pipeline_encoder_shim(nlp)
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    batch = tokenizer([t or "." for t in TEXTS], padding="longest", return_tensors="pt")
    from thinc.api import ArgsKwargs

    inputs = ArgsKwargs(args=(), kwargs={k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
    shim.group_rows = 0
    whole = shim.predict(inputs)
    shim.group_rows = 4
    grouped = shim.predict(inputs)
    mask = batch["attention_mask"].bool()
    assert set(grouped.keys()) == set(whole.keys())
    assert torch.allclose(whole.last_hidden_state[mask], grouped.last_hidden_state[mask], atol=1e-5)
    assert torch.allclose(whole.pooler_output, grouped.pooler_output, atol=1e-5)


def test_group_rows_is_a_config_value_that_survives_saving(tiny_bert):
    fix_random_seed(0)
    nlp = train_tiny(make_nlp(tiny_bert, transformer_model={"group_rows": 3}), 1)
    assert pipeline_encoder_shim(nlp).group_rows == 3
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        assert pipeline_encoder_shim(spacy.load(tmp)).group_rows == 3
        assert pipeline_encoder_shim(spacy.load(tmp, config={"components.transformer.model.group_rows": 0})).group_rows == 0


@pytest.mark.parametrize("bad", [-1, 2.5])
def test_bad_group_rows_fails_clearly(tiny_bert, bad):
    with pytest.raises(Exception, match="group_rows"):
        make_nlp(tiny_bert, transformer_model={"group_rows": bad}).initialize()
