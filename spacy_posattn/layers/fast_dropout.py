"""Dropout for the attention blocks whose masks are cheap to draw on CPU.

`torch.nn.Dropout` on CPU draws its mask with `bernoulli_`, which took 18% of
a training step of the heads on cached features on 2 cores (py-spy), more
than the blocks' linear layers. Here the mask comes from numpy's PCG64 as
16-bit integers (about 4x faster for the same tensor). On GPU, and at
prediction, it is `torch.nn.functional.dropout`.
"""
import numpy
import torch
from torch import nn


class FastDropout(nn.Module):
    """`nn.Dropout(p)` with masks drawn by numpy on CPU.

    A kept element is scaled by 1 / (1 - p), as in `nn.Dropout`; the rate is
    exact to 1/65,536. The generator is seeded from torch's, so a fixed seed
    (spaCy's `[system] seed`) gives the same masks. It has no parameters:
    pipelines saved with `nn.Dropout` in its place load unchanged.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p!r}")
        self.p = p
        self.threshold = round(p * 65536)
        self.rng = numpy.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        draws = numpy.frombuffer(self.rng.bytes(2 * x.numel()), dtype=numpy.uint16)
        keep = torch.from_numpy(draws >= self.threshold).view(x.shape)
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"
