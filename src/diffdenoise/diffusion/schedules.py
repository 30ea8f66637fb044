"""Noise schedules as pure functions returning 1-D float64 tensors.

Index convention (used by every sampler and method in this package): step ``t`` runs over 1..T as in Ho et al. 2020,
and ``alphas_cumprod`` returns T + 1 values with ``abar[0] = 1`` (t = 0 is the clean image), so ``abar[t]`` is the
paper's abar_t = prod_{s<=t} (1 - beta_s) and ``abar[t - 1]`` is always defined. ``betas[t - 1]`` is beta_t.

With this convention the step matched to an observation of std ``sigma`` on [0, 1] (images scaled to [-1, 1], so the
std there is 2 sigma; SPEC 3.3) is N = 33, 57, 115 for sigma = 15, 25, 50 (8-bit) under the linear schedule.
"""
from __future__ import annotations

import math

import torch


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T spaced linearly (Ho et al. 2020, Sec. 4: 1e-4 to 0.02 for T = 1000); shape (T,)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021, Eq. 17: abar(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2); beta_t =
    1 - abar_t/abar_{t-1} clipped at ``max_beta``; shape (T,)."""
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((steps / T + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def make_betas(schedule: str, T: int = 1000) -> torch.Tensor:
    """``"linear"`` or ``"cosine"`` -> betas of shape (T,)."""
    if schedule == "linear":
        return linear_betas(T)
    if schedule == "cosine":
        return cosine_betas(T)
    raise ValueError(f"unknown schedule {schedule!r}; valid: linear, cosine")


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """abar_0..abar_T with abar_0 = 1 and abar_t = prod_{s=1..t} (1 - beta_s); shape (T + 1,), float64."""
    betas = betas.to(torch.float64)
    return torch.cat([betas.new_ones(1), torch.cumprod(1 - betas, dim=0)])


def noise_to_signal(abar: torch.Tensor) -> torch.Tensor:
    """sqrt((1 - abar_t) / abar_t): the std of the noise in x_t / sqrt(abar_t) = x0 + that * eps."""
    return ((1 - abar) / abar).sqrt()


def matched_step(abar: torch.Tensor, sigma: float | torch.Tensor) -> int | torch.Tensor:
    """N = argmin_{t in 1..T} |sqrt((1 - abar_t)/abar_t) - 2 sigma| (SPEC 3.3; sigma on the [0, 1] scale, the
    factor 2 because images are scaled to [-1, 1]). A float gives an int; a tensor of sigmas gives a long tensor of
    the same shape (per image or per pixel: the per-pixel start time of SVNR-style methods)."""
    ratio = noise_to_signal(abar[1:])
    if not torch.is_tensor(sigma):
        return int((ratio - 2 * float(sigma)).abs().argmin()) + 1
    s = 2 * sigma.to(torch.float64).unsqueeze(-1)
    return (ratio.to(s.device) - s).abs().argmin(dim=-1) + 1


def spaced_steps(start: int, steps: int | None = None) -> list[int]:
    """Decreasing visited steps from ``start`` down, ``steps`` of them (None: every step start..1).

    Trailing spacing t_i = round(start (k - i) / k), i = 0..k-1, so the chain always enters at ``start`` and its
    last move goes from about start/k to 0; ``steps=1`` gives ``[start]``: the one-forward x0 estimate at ``start``.
    """
    if start < 1:
        return []
    k = start if steps is None else max(1, min(int(steps), start))
    seq = [max(1, round(start * (k - i) / k)) for i in range(k)]
    return sorted(set(seq), reverse=True)
