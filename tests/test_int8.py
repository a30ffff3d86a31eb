"""int8 CPU inference: quantized at load time, saved as fp32 (issue 10)."""
import numpy
import pytest
import spacy
import torch
from numpy.testing import assert_allclose
from spacy.util import make_tempdir
from thinc.api import ConfigValidationError, fix_random_seed

from spacy_posattn.layers import Int8HFShim, encoder_shim
from spacy_posattn.layers.int8 import int8_linear_names

from .conftest import make_examples, make_nlp, train_tiny

TEXTS = ["Alice will go to China this Saturday .", "Her father works in WHO ."]
QuantizedLinear = torch.ao.nn.quantized.dynamic.Linear


def pipeline_encoder_shim(nlp):
    return encoder_shim(nlp.get_pipe("transformer").model)


def linear_kinds(module):
    """RETURNS (dict): qualified name -> 'int8' or 'fp32' for every Linear layer."""
    kinds = {}
    for name, sub in module.named_modules():
        if isinstance(sub, QuantizedLinear):
            kinds[name] = "int8"
        elif isinstance(sub, torch.nn.Linear):
            kinds[name] = "fp32"
    return kinds


def trained_pipeline(tiny_bert, path):
    fix_random_seed(0)
    nlp = train_tiny(make_nlp(tiny_bert), 3)
    nlp.to_disk(path)
    return nlp


def trf_outputs(nlp, texts=TEXTS):
    return [numpy.asarray(doc._.trf_data.model_output.last_hidden_state).reshape((-1, 32)) for doc in nlp.pipe(texts)]


@pytest.mark.parametrize(
    "parts,expect_int8",
    [
        ("attention", lambda name: "attention" in name),
        ("all", lambda name: True),
        ("attention+ffn_in", lambda name: "attention" in name or "intermediate" in name),
    ],
)
def test_loading_with_int8_quantizes_the_chosen_layers(tiny_bert, parts, expect_int8):
    with make_tempdir() as tmp:
        fp32 = trained_pipeline(tiny_bert, tmp)
        nlp = spacy.load(tmp, config={"components.transformer.model.int8": parts})
    shim = pipeline_encoder_shim(nlp)
    assert isinstance(shim, Int8HFShim) and shim.quantized
    kinds = linear_kinds(shim._model)
    assert any("attention" in name for name in kinds) and any("output.dense" in name for name in kinds)
    assert kinds == {
        name: "int8" if expect_int8(name) else "fp32" for name in kinds
    }
    # The quantized encoder stays close to fp32 and the pipeline predicts.
    for a, b in zip(trf_outputs(fp32), trf_outputs(nlp)):
        cosine = (a * b).sum(-1) / (numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1))
        assert cosine.mean() > 0.95
    doc = nlp(TEXTS[0])
    assert len(doc) == 8 and all(t.tag_ for t in doc)


def test_int8_pipeline_saves_and_reloads_its_fp32_weights(tiny_bert):
    """Saving an int8 pipeline writes the fp32 weights it was loaded with
    (spacy-transformers would otherwise reload random Linear layers)."""
    with make_tempdir() as tmp:
        fp32 = trained_pipeline(tiny_bert, tmp / "fp32")
        nlp = spacy.load(tmp / "fp32", config={"components.transformer.model.int8": "attention"})
        nlp(TEXTS[0])
        nlp.to_disk(tmp / "int8")
        plain = spacy.load(tmp / "int8", config={"components.transformer.model.int8": "none"})
        again = spacy.load(tmp / "int8")
    expected = pipeline_encoder_shim(fp32)._model.state_dict()
    reloaded = pipeline_encoder_shim(plain)._model.state_dict()
    assert set(expected) == set(reloaded)
    for key, value in expected.items():
        assert torch.equal(value, reloaded[key]), key
    # The saved config keeps the option, so the reloaded pipeline is int8 again.
    assert pipeline_encoder_shim(again).quantized
    assert_allclose(
        nlp.get_pipe("posattn_ner").predict([nlp(TEXTS[1])])[0],
        again.get_pipe("posattn_ner").predict([again(TEXTS[1])])[0],
        rtol=1e-5, atol=1e-6,
    )


def test_fresh_int8_pipeline_quantizes_when_it_predicts_and_refuses_training(tiny_bert):
    nlp = make_nlp(tiny_bert, transformer_model={"int8": "attention"})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    shim = pipeline_encoder_shim(nlp)
    nlp(TEXTS[0])
    assert shim.quantized and "int8" in linear_kinds(shim._model).values()
    with pytest.raises(ValueError, match="inference only"):
        nlp.update(examples)


def test_bad_int8_value_names_the_choices(tiny_bert):
    with pytest.raises((ValueError, ConfigValidationError), match="attention"):
        make_nlp(tiny_bert, transformer_model={"int8": "int4"})


def test_linear_selection_by_part():
    module = torch.nn.ModuleDict({
        "attention": torch.nn.ModuleDict({"query": torch.nn.Linear(2, 2)}),
        "intermediate": torch.nn.ModuleDict({"dense": torch.nn.Linear(2, 2)}),
        "output": torch.nn.ModuleDict({"dense": torch.nn.Linear(2, 2)}),
    })
    assert int8_linear_names(module, "attention") == ["attention.query"]
    assert int8_linear_names(module, "ffn") == ["intermediate.dense", "output.dense"]
    assert int8_linear_names(module, "ffn_in") == ["intermediate.dense"]
    assert int8_linear_names(module, "ffn_out") == ["output.dense"]
    assert int8_linear_names(module, "none") == []
    assert int8_linear_names(module, "all") == ["attention.query", "intermediate.dense", "output.dense"]
    assert int8_linear_names(module, "attention+ffn_in") == ["attention.query", "intermediate.dense"]
    with pytest.raises(ValueError, match="attention\\+ffn_in"):
        int8_linear_names(module, "attention+ffn_mid")
