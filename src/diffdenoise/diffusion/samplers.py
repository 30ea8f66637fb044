"""Reverse-process samplers for variance-preserving diffusion: plain functions with one shared signature.

    sampler(eps_model, x, abar, timesteps, generator=None, *, progress=None, **options) -> x_0

- ``eps_model(x_t, t) -> eps_hat``: the noise predicted in ``x_t`` at step ``t``.
- ``x``: the state at ``timesteps[0]`` (pure noise for generation; built from the observation for denoising, which
  is how a chain STARTS at an intermediate step).
- ``abar``: ``schedules.alphas_cumprod(betas)``, T + 1 float64 values with ``abar[0] = 1`` (index = paper's t).
- ``timesteps``: the decreasing steps visited, e.g. ``range(N, 0, -1)`` or ``spaced_steps(N, 10)``; the chain moves
  t_0 -> t_1 -> ... -> t_k -> 0. A step may be an int (the whole batch) or a long tensor broadcastable to ``x``
  ((N, 1, 1, 1) per image or (N, 1, H, W) per pixel); pixels whose step is 0 are left unchanged.
- ``generator``: a torch.Generator, or a sequence of them with one per image (image i's noise then does not depend
  on the batch); ``progress(fraction)`` is called after every step, ``callback(i, t, x_t, x0_hat)`` before each
  move (to record a trajectory).

Coefficients are computed in float64 from ``abar`` and cast to the dtype of ``x``.
"""
from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch

EpsModel = Callable[[torch.Tensor, "int | torch.Tensor"], torch.Tensor]


def randn_like(x: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``; with one generator per image, image i's noise depends only on its
    own generator."""
    if generator is None or isinstance(generator, torch.Generator):
        dev = generator.device if generator is not None else x.device
        return torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)
    if len(generator) != x.shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {x.shape[0]}")
    return torch.cat([torch.randn((1, *x.shape[1:]), generator=g, device=g.device, dtype=x.dtype).to(x.device)
                      for g in generator])


def _abar_at(abar: torch.Tensor, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar_t as float64: a 0-dim CPU tensor for an int step, a tensor on ``like``'s device for a tensor step."""
    if torch.is_tensor(t):
        return abar.to(like.device)[t.to(like.device).long()]
    return abar[int(t)]


def _cast(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return c.to(like.dtype)


def _keep_finished(t: int | torch.Tensor, x: torch.Tensor, x_s: torch.Tensor) -> torch.Tensor:
    """Pixels (or images) whose step is already 0 keep their value."""
    return torch.where(t.to(x.device) == 0, x, x_s) if torch.is_tensor(t) else x_s


def to_x0(out: torch.Tensor, x_t: torch.Tensor, a_t: torch.Tensor, prediction: str) -> torch.Tensor:
    """x0 implied by a network output under ``prediction`` ("eps", "x0" or "v", Salimans & Ho 2022:
    v = sqrt(abar) eps - sqrt(1 - abar) x0) at a state x_t = sqrt(abar) x0 + sqrt(1 - abar) eps."""
    sa, sb = _cast(a_t.sqrt(), x_t), _cast((1 - a_t).sqrt(), x_t)
    if prediction == "eps":
        return (x_t - sb * out) / sa
    if prediction == "x0":
        return out
    if prediction == "v":
        return sa * x_t - sb * out
    raise ValueError(f"unknown prediction {prediction!r}; valid: eps, x0, v")


def to_eps(out: torch.Tensor, x_t: torch.Tensor, a_t: torch.Tensor, prediction: str) -> torch.Tensor:
    """eps implied by a network output under ``prediction``; where abar = 1 (t = 0) eps is 0."""
    sa, sb = _cast(a_t.sqrt(), x_t), _cast((1 - a_t).sqrt(), x_t)
    if prediction == "eps":
        return out
    if prediction == "v":
        return sa * out + sb * x_t
    if prediction == "x0":
        return torch.where(sb > 0, (x_t - sa * out) / sb.clamp_min(1e-12), torch.zeros_like(x_t))
    raise ValueError(f"unknown prediction {prediction!r}; valid: eps, x0, v")


def _x0_eps(eps_model: EpsModel, x: torch.Tensor, a_t: torch.Tensor, t: int | torch.Tensor,
            clip_x0: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    eps = eps_model(x, t)
    x0 = to_x0(eps, x, a_t, "eps")
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = to_eps(x0, x, a_t, "x0")
    return x0, eps


def ddim(eps_model: EpsModel, x: torch.Tensor, abar: torch.Tensor, timesteps: Sequence[int | torch.Tensor],
         generator: torch.Generator | Sequence[torch.Generator] | None = None, *, eta: float = 0.0,
         progress: Callable[[float], None] | None = None, clip_x0: float | None = None,
         callback: Callable[[int, int | torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None
         ) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) over any decreasing sub-sequence of steps, t -> s:

        x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
        s_t    = eta sqrt((1 - abar_s)/(1 - abar_t)) sqrt(1 - abar_t/abar_s)
        x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - s_t^2) eps_hat + s_t z

    eta = 0 is deterministic; eta = 1 is DDPM with the posterior variance. A single step ``[N]`` returns x0_hat at N
    (the one-forward MMSE estimate). ``clip_x0`` clamps x0_hat to [-clip_x0, clip_x0] (and re-derives eps_hat).
    """
    steps = list(timesteps)
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else 0
        a_t, a_s = _abar_at(abar, t, x), _abar_at(abar, s, x)
        x0, eps = _x0_eps(eps_model, x, a_t, t, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        one_minus_t = (1 - a_t).clamp_min(1e-300)
        sig = eta * ((1 - a_s) / one_minus_t).sqrt() * (1 - a_t / a_s).clamp_min(0).sqrt()
        x_s = _cast(a_s.sqrt(), x) * x0 + _cast((1 - a_s - sig ** 2).clamp_min(0).sqrt(), x) * eps
        if eta > 0:
            x_s = x_s + _cast(sig, x) * randn_like(x, generator)
        x = _keep_finished(t, x, x_s)
        if progress is not None:
            progress((i + 1) / len(steps))
    return x


def ancestral(eps_model: EpsModel, x: torch.Tensor, abar: torch.Tensor, timesteps: Sequence[int | torch.Tensor],
              generator: torch.Generator | Sequence[torch.Generator] | None = None, *,
              variance: Literal["beta", "posterior"] = "beta", progress: Callable[[float], None] | None = None,
              clip_x0: float | None = None,
              callback: Callable[[int, int | torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None
              ) -> torch.Tensor:
    """Ancestral sampling, Ho et al. 2020 Algorithm 2, generalised to any decreasing sub-sequence t -> s with
    alpha_ts = abar_t / abar_s and beta_ts = 1 - alpha_ts (= beta_t for consecutive steps):

        x_s = (x_t - beta_ts / sqrt(1 - abar_t) eps_hat) / sqrt(alpha_ts) + sigma_ts z,   z = 0 when s = 0

    written as the posterior mean of q(x_s | x_t, x0_hat). ``variance="beta"``: sigma_ts^2 = beta_ts (the paper's
    choice, SPEC 3.2); ``"posterior"``: beta_ts (1 - abar_s)/(1 - abar_t).
    """
    if variance not in ("beta", "posterior"):
        raise ValueError(f"unknown variance {variance!r}; valid: beta, posterior")
    steps = list(timesteps)
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else 0
        a_t, a_s = _abar_at(abar, t, x), _abar_at(abar, s, x)
        x0, _ = _x0_eps(eps_model, x, a_t, t, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        one_minus_t = (1 - a_t).clamp_min(1e-300)
        alpha_ts = a_t / a_s
        beta_ts = 1 - alpha_ts
        c0 = a_s.sqrt() * beta_ts / one_minus_t
        ct = alpha_ts.sqrt() * (1 - a_s) / one_minus_t
        x_s = _cast(c0, x) * x0 + _cast(ct, x) * x
        var = beta_ts if variance == "beta" else beta_ts * (1 - a_s) / one_minus_t
        std = _cast(var.clamp_min(0).sqrt(), x)
        if torch.is_tensor(s):
            x_s = x_s + std * (s.to(x.device) > 0).to(x.dtype) * randn_like(x, generator)
        elif s > 0:
            x_s = x_s + std * randn_like(x, generator)
        x = _keep_finished(t, x, x_s)
        if progress is not None:
            progress((i + 1) / len(steps))
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"ddim": ddim, "ancestral": ancestral}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}") from None


def guided(eps_model: Callable[[torch.Tensor, int | torch.Tensor, object], torch.Tensor],
           scale: float | torch.Tensor | Callable[[torch.Tensor, int | torch.Tensor], float | torch.Tensor],
           cond: object, null: object, *, batched: bool = True) -> EpsModel:
    """Classifier-free guidance (Ho & Salimans 2022): eps = eps(x, null) + s (eps(x, c) - eps(x, null)).

    ``eps_model(x_t, t, c)`` takes a condition (a label tensor, condition channels...); ``null`` is the null
    condition. ``scale`` is s: a number, a tensor broadcastable to x (per image or per pixel) or a callable
    ``scale(x_t, t)`` (e.g. the expected probabilistic conditioning of SPEC 3.4, s = p(t)). s = 1 is the plain
    conditional model, s = 0 the unconditional one. With ``batched`` and tensor conditions the two evaluations
    share one forward pass of a doubled batch.
    """
    def eps(x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        s = scale(x, t) if callable(scale) else scale
        if not torch.is_tensor(s) and s == 1:
            return eps_model(x, t, cond)
        if not torch.is_tensor(s) and s == 0:
            return eps_model(x, t, null)
        if batched and torch.is_tensor(cond) and torch.is_tensor(null):
            t2 = torch.cat([t, t]) if torch.is_tensor(t) and t.dim() > 0 else t
            e_c, e_u = eps_model(torch.cat([x, x]), t2, torch.cat([cond, null])).chunk(2)
        else:
            e_c, e_u = eps_model(x, t, cond), eps_model(x, t, null)
        return e_u + s * (e_c - e_u)
    return eps


def net_time(t: int | torch.Tensor, n: int, T: int, device: torch.device | str) -> torch.Tensor:
    """The UNet's time input for step ``t``: t / T in [0, 1], shape (N,) for an int, float map for a tensor."""
    if torch.is_tensor(t) and t.dim() > 0:
        return (t.to(device).float() / T).expand(n, *t.shape[1:])
    return torch.full((n,), float(t) / T, device=device)
