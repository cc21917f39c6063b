"""Explicit, keyed random streams.

torch's own Gamma/Dirichlet/Beta samplers cannot take a ``torch.Generator``, so the mixing
weights are drawn here from uniforms and normals of an explicit generator. Streams are keyed by
integers such as (seed, epoch, batch index, rank) so that any batch's augmentations can be
recomputed exactly, for instance after resuming a run.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_TINY = float(np.finfo(np.float64).tiny)

# Stream ids: the first key part after the seed, so differently used streams of one batch are
# independent. Every keyed stream of the project is listed here, so two can never collide.
ORDER_STREAM = 0  # sample order of an epoch
CROP_STREAM = 1  # per-sample crops and flips
AUGMIX_STREAM = 2  # AugMix parameters
MIX_STREAM = 3  # MixUp / CutMix draws
ERASE_STREAM = 4  # random erasing
STEP_STREAM = 5  # torch's global RNG before each training step (dropout, drop-path)


def stream_seed(*key: int) -> int:
    """A well-mixed 63-bit seed for a tuple of non-negative integers (order matters)."""
    if any(int(k) < 0 for k in key):
        raise ValueError(f"stream keys must be non-negative integers, got {key}")
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def keyed_generator(*key: int) -> torch.Generator:
    """A CPU generator whose stream is a pure function of ``key``."""
    generator = torch.Generator()
    generator.manual_seed(stream_seed(*key))
    return generator


def sample_gamma(concentration: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Gamma(concentration, 1) samples in float64 (Marsaglia & Tsang's squeeze method).

    For concentration < 1 the usual boost is applied: Gamma(a) = Gamma(a + 1) * U ** (1 / a).
    """
    if concentration <= 0:
        raise ValueError(f"Gamma concentration must be > 0, got {concentration}")
    boost = concentration < 1.0
    a = concentration + 1.0 if boost else concentration
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    count = int(np.prod(shape)) if shape else 1
    out = torch.empty(count, dtype=torch.float64)
    pending = torch.arange(count)
    while pending.numel():
        m = pending.numel()
        x = torch.randn(m, dtype=torch.float64, generator=generator)
        u = torch.rand(m, dtype=torch.float64, generator=generator)
        v = (1.0 + c * x) ** 3
        accept = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp(min=1e-300)))
        out[pending[accept]] = d * v[accept]
        pending = pending[~accept]
    if boost:
        u = torch.rand(count, dtype=torch.float64, generator=generator)
        out *= u ** (1.0 / concentration)
    # Tiny concentrations can underflow to 0; keep ratios of samples well defined.
    return out.clamp_(min=_TINY).view(shape)


def sample_dirichlet(concentration: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Symmetric Dirichlet samples over the last dimension of ``shape`` (float64)."""
    gammas = sample_gamma(concentration, shape, generator)
    return gammas / gammas.sum(dim=-1, keepdim=True)


def sample_beta(a: float, b: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Beta(a, b) samples (float64) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b)."""
    x = sample_gamma(a, shape, generator)
    y = sample_gamma(b, shape, generator)
    return x / (x + y)
