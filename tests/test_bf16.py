"""bfloat16 CPU inference: converted at load time, saved as fp32 (issue 10)."""
import numpy
import pytest
import spacy
import torch
from spacy.util import make_tempdir
from thinc.api import fix_random_seed

from spacy_posattn.layers import Bf16HFShim, encoder_shim

from .conftest import make_examples, make_nlp, train_tiny

TEXTS = ["Alice will go to China this Saturday .", "Her father works in WHO .", "Hi ."]
BF16 = {"components.transformer.model.bf16": True}


def pipeline_encoder_shim(nlp):
    return encoder_shim(nlp.get_pipe("transformer").model)


def hidden_states(nlp, texts=TEXTS):
    return [numpy.asarray(doc._.trf_data.model_output.last_hidden_state) for doc in nlp.pipe(texts)]


@pytest.fixture(scope="module")
def trained_dir(tiny_bert, tmp_path_factory):
    fix_random_seed(0)
    path = tmp_path_factory.mktemp("bf16") / "fp32"
    train_tiny(make_nlp(tiny_bert), 3).to_disk(path)
    return path


@pytest.mark.parametrize("group_rows", [0, 2])
def test_loading_with_bf16_runs_the_encoder_in_bf16_with_float32_outputs(trained_dir, group_rows):
    groups = {"components.transformer.model.group_rows": group_rows}
    fp32 = spacy.load(trained_dir, config=groups)
    bf16 = spacy.load(trained_dir, config={**BF16, **groups})
    shim = pipeline_encoder_shim(bf16)
    assert isinstance(shim, Bf16HFShim) and shim.converted
    assert {p.dtype for p in shim._model.parameters()} == {torch.bfloat16}
    for want, got in zip(hidden_states(fp32), hidden_states(bf16)):
        assert got.dtype == numpy.float32 and got.shape == want.shape
        # bfloat16 keeps 8 bits of mantissa: close to fp32, not equal.
        assert not numpy.array_equal(got, want)
        numpy.testing.assert_allclose(got, want, atol=0.1 * numpy.abs(want).max())
    doc = bf16(TEXTS[0])
    assert len(doc) == 8 and all(t.tag_ for t in doc)


def test_bf16_pipeline_saves_and_reloads_its_fp32_weights(trained_dir):
    fp32 = spacy.load(trained_dir)
    with make_tempdir() as tmp:
        nlp = spacy.load(trained_dir, config=BF16)
        nlp(TEXTS[0])
        nlp.to_disk(tmp / "bf16")
        plain = spacy.load(tmp / "bf16", config={"components.transformer.model.bf16": False})
        again = spacy.load(tmp / "bf16")
    expected = pipeline_encoder_shim(fp32)._model.state_dict()
    reloaded = pipeline_encoder_shim(plain)._model.state_dict()
    assert set(expected) == set(reloaded)
    for key, value in expected.items():
        assert value.dtype == torch.float32 and torch.equal(value, reloaded[key]), key
    # The saved config keeps the option.
    assert pipeline_encoder_shim(again).converted
    numpy.testing.assert_array_equal(hidden_states(nlp)[1], hidden_states(again)[1])


def test_fresh_bf16_pipeline_predicts_and_refuses_training(tiny_bert):
    nlp = make_nlp(tiny_bert, transformer_model={"bf16": True})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    nlp(TEXTS[0])
    assert pipeline_encoder_shim(nlp).converted
    with pytest.raises(ValueError, match="bf16 = true, which is for inference only"):
        nlp.update(examples)


def test_bf16_with_int8_fails_clearly(tiny_bert):
    with pytest.raises(ValueError, match="can't be combined with int8"):
        make_nlp(tiny_bert, transformer_model={"bf16": True, "int8": "attention"})
