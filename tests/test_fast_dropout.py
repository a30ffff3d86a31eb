"""FastDropout: nn.Dropout's behaviour with masks drawn by numpy on CPU."""
import pytest
import torch
from torch import nn

from spacy_posattn.layers.fast_dropout import FastDropout
from spacy_posattn.layers.positional_attention import PositionalAttentionEncoder


def test_rate_scale_and_gradient_in_training():
    torch.manual_seed(0)
    layer = FastDropout(0.25).train()
    x = torch.ones(200, 500, requires_grad=True)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert 0.24 < dropped < 0.26
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.75))  # inverted dropout
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)  # dropped units get no gradient
    assert torch.allclose(x.grad[y != 0], torch.tensor(1 / 0.75))


def test_identity_at_prediction_and_at_rate_zero():
    x = torch.randn(10, 7)
    assert FastDropout(0.3).eval()(x) is x
    assert FastDropout(0.0).train()(x) is x


def test_seeded_from_torch_and_fresh_masks_each_call():
    x = torch.ones(64, 64)
    torch.manual_seed(3)
    first = FastDropout(0.5).train()
    torch.manual_seed(3)
    second = FastDropout(0.5).train()
    a, b = first(x), second(x)
    assert torch.equal(a, b)
    assert not torch.equal(first(x), a)


def test_keeps_dtype_and_shape():
    x = torch.ones(3, 4, 5, dtype=torch.float64)
    y = FastDropout(0.1).train()(x)
    assert y.shape == x.shape and y.dtype == torch.float64


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_bad_rate_fails_clearly(p):
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        FastDropout(p)


def test_blocks_use_it_and_keep_their_saved_parameters():
    """No parameter or buffer of its own: pipelines saved with nn.Dropout in
    the blocks load into the same state dict."""
    assert list(FastDropout(0.1).state_dict()) == []
    encoder = PositionalAttentionEncoder(width=16, depth=2, heads=2, window=4, max_distance=2, dropout=0.1)
    assert not any(type(m) is nn.Dropout for m in encoder.modules())
    assert sum(isinstance(m, FastDropout) for m in encoder.modules()) == 6
    keys = set(encoder.state_dict())
    assert {"blocks.0.ff.0.weight", "blocks.0.ff.3.weight", "blocks.1.attn.qkv.weight"} <= keys
