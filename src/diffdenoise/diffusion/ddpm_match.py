"""Denoising with an unconditional DDPM entered at the step matching the noise (seed 001 §3.1 and §5; SPEC 3.3).

Images run in [-1, 1], where the observation's noise std is 2 sigma. A DDPM state satisfies
x_t / sqrt(abar_t) = x0 + sqrt((1 - abar_t)/abar_t) eps, so y is a state of step

    N = argmin_t |sqrt((1 - abar_t)/abar_t) - 2 sigma|          (schedules.matched_step; linear: 33/57/115 for 15/25/50)

and the reverse chain runs from x_N = sqrt(abar_N) (2 y - 1) to 0 (every step, or ``steps`` spaced DDIM/ancestral
steps). ``offset`` enters earlier (< 0, fewer steps than the noise needs) or later (> 0; the seed's Figures 2 and 4),
``repeat_last`` runs the final t = 1 step again on its own output (the seed's Figure 3), ``samples`` averages K
chains. Weights: ``ddpm-natural`` (any DDPM card: schedule, T and prediction are read from it).
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import torch
from torch import nn

from .ddpm import (estimate_sigma_per_image, from_model_space, match_channels, net_eps_model, per_image,
                   schedule_abar, sigma_inputs, to_model_space)
from .samplers import get_sampler, randn_like
from .schedules import matched_step, spaced_steps

Sampler = Literal["ddim", "ancestral"]


def enter_chain(eps_model: Callable[[torch.Tensor, int], torch.Tensor], y: torch.Tensor, abar: torch.Tensor,
                start: int, *, steps: int | None = None, sampler: Sampler = "ddim", eta: float = 0.0,
                repeat_last: int = 0, generator: torch.Generator | Sequence[torch.Generator] | None = None,
                progress: Callable[[float], None] | None = None, clip_x0: float | None = 1.0,
                callback: Callable[..., None] | None = None) -> torch.Tensor:
    """Run the reverse chain on ``y`` (N x C x H x W in [0, 1]) entered at step ``start``; returns x_hat in [0, 1].

    x_start = sqrt(abar_start) (2 y - 1); the chain visits ``spaced_steps(start, steps)`` and then ``repeat_last``
    extra t = 1 steps, each fed the previous output as x_1. ``start = 0`` returns y (after any repeats).
    """
    run = get_sampler(sampler)
    options: dict[str, Any] = {"eta": eta} if sampler == "ddim" else {}
    x = abar[start].sqrt().item() * to_model_space(y)
    timesteps = spaced_steps(start, steps)
    total = len(timesteps) + repeat_last

    def part(offset: int) -> Callable[[float], None] | None:
        if progress is None:
            return None
        n = len(timesteps) if offset == 0 else 1
        return lambda f: progress(min(1.0, (offset + f * n) / max(total, 1)))

    if timesteps:
        x = run(eps_model, x, abar, timesteps, generator, progress=part(0), clip_x0=clip_x0, callback=callback,
                **options)
    for r in range(repeat_last):
        x = run(eps_model, x, abar, [1], generator, progress=part(len(timesteps) + r), clip_x0=clip_x0, **options)
    return from_model_space(x)


class MatchedStepDenoiser:
    """``method(y, sigma=None, *, generator=None, progress=None) -> x_hat`` over a trained (unconditional) DDPM.

    A class-conditional net is used unconditionally (the null label) unless ``label`` is given.
    """

    def __init__(self, net: nn.Module, card: dict[str, Any], *, steps: int | None = None, sampler: Sampler = "ddim",
                 samples: int = 1, offset: int = 0, repeat_last: int = 0, eta: float = 0.0,
                 clip_x0: float | None = 1.0, label: int | None = None, guidance: float = 1.0,
                 precision: Literal["auto", "fp32", "bf16"] = "auto"):
        method = card.get("method", card)
        self.net, self.T, self.prediction = net, int(method["T"]), method.get("prediction", "eps")
        self.abar = schedule_abar(method["schedule"], self.T)
        self.num_classes = int(method.get("num_classes", 0))
        get_sampler(sampler)
        if samples < 1 or repeat_last < 0 or (steps is not None and steps < 1):
            raise ValueError("samples and steps must be >= 1, repeat_last >= 0")
        self.steps, self.sampler, self.samples = steps, sampler, int(samples)
        self.offset, self.repeat_last, self.eta, self.clip_x0 = int(offset), int(repeat_last), float(eta), clip_x0
        self.label, self.guidance, self.precision = label, float(guidance), precision

    def start_step(self, sigma: float) -> int:
        """Matched step for sigma (on [0, 1]) plus the offset, clamped to 0..T; sigma = 0 enters nowhere (0)."""
        if sigma <= 0:
            return 0
        return max(0, min(self.T, matched_step(self.abar, sigma) + self.offset))

    def _eps_model(self, n: int, device: torch.device) -> Callable[[torch.Tensor, int], torch.Tensor]:
        base = net_eps_model(self.net, self.abar, self.T, self.prediction)
        if self.num_classes == 0:
            return lambda x, t: base(x, t)
        null = torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        if self.label is None:
            return lambda x, t: base(x, t, label=null)
        from .samplers import guided
        c = torch.full((n,), int(self.label), dtype=torch.long, device=device)
        return guided(lambda x, t, lab: base(x, t, label=lab), self.guidance, c, null)

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        n = y.shape[0]
        device = next(self.net.parameters()).device
        s, _ = sigma_inputs(y, sigma)
        if s is None:
            s = estimate_sigma_per_image(y)
        if y.shape[1] == 1 and self.net.in_channels == 3:   # gray photo, colour prior: make the noise white in RGB
            y_in, s = gray_as_color(y.to(device, torch.float32), s, generator)
            back = lambda out: out.mean(dim=1, keepdim=True)  # noqa: E731
        else:
            y_in, back = match_channels(y.to(device, torch.float32), self.net.in_channels)
        rows = y_in.shape[0] // n
        starts = [self.start_step(float(s[i])) for i in range(n)]
        out = torch.empty_like(y_in)
        groups = sorted(set(starts))
        done = 0
        for start in groups:
            idx = [i for i in range(n) if starts[i] == start]
            row_idx = [i * rows + r for i in idx for r in range(rows)]
            y_g = y_in[row_idx]
            gen = per_image(generator, idx, rows)
            acc = torch.zeros_like(y_g)
            for k in range(self.samples):
                def prog(f: float, k: int = k) -> None:
                    if progress is not None:
                        progress((done + (k + f) / self.samples * len(idx)) / n)
                with _autocast(device, self.precision):
                    acc += enter_chain(self._eps_model(y_g.shape[0], device), y_g, self.abar, start,
                                       steps=self.steps, sampler=self.sampler, eta=self.eta,
                                       repeat_last=self.repeat_last, generator=gen, progress=prog,
                                       clip_x0=self.clip_x0).float()
            out[row_idx] = acc / self.samples
            done += len(idx)
        return back(out).to(y.device, torch.float32)


def gray_as_color(y: torch.Tensor, sigma: torch.Tensor, generator: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A gray ``y = x + s n`` as an RGB image with white noise, for a prior trained on colour with i.i.d. noise.

    Replicating y puts all the noise on the gray axis u = (1,1,1)/sqrt(3), where its std is sqrt(3) s, and none on
    the two chroma axes, which a colour DDPM has never seen.  Adding independent noise of std sqrt(3) s on the chroma
    axes only makes the result exactly ``x (1,1,1) + sqrt(3) s e`` with e ~ N(0, I_3): the chain is entered at the
    step matching sqrt(3) s, and projecting the output back on u (the channel mean) discards the chroma again.
    Returns the RGB batch and the per-image sigma it carries."""
    s3 = sigma.to(y.device, torch.float32).reshape(-1, 1, 1, 1) * 3 ** 0.5
    e = randn_like(y.expand(-1, 3, -1, -1).contiguous(), generator)
    e = e - e.mean(dim=1, keepdim=True)            # remove the component on u: chroma only
    return y.expand(-1, 3, -1, -1) + s3 * e, sigma * 3 ** 0.5


def _autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA for ``auto``/``bf16``; a no-op context otherwise (``runtime.autocast``)."""
    from ..runtime import autocast
    return autocast(device, precision)


def build(device: str | torch.device = "cpu", steps: int | None = 1, sampler: Sampler = "ddim",
          samples: int = 1, offset: int = 0, repeat_last: int = 0, *, eta: float = 0.0,
          weights: str = "ddpm-natural", net: nn.Module | None = None, card: dict[str, Any] | None = None,
          **options: Any) -> MatchedStepDenoiser:
    """Registry builder of ``ddpm-match``: loads ``weights`` (or uses the injected ``net`` and ``card``).

    Default ``steps=1``: one DDIM step from the matched step to 0, i.e. the network's MMSE estimate of x0. The seed's
    experiments and benchmarks/steps_table.py both find it the best (CBSD68 sigma 25, H200: 31.51 dB at 1 step,
    30.97 dB visiting all 57); ``steps=None`` visits every step of the chain."""
    if net is None:
        from ..train.checkpoint import load_net
        net, card = load_net(weights, device)
    elif card is None:
        raise ValueError("an injected net needs its card (the 'method' dict: schedule, T, prediction)")
    return MatchedStepDenoiser(net.eval(), card, steps=steps, sampler=sampler, samples=samples, offset=offset,
                               repeat_last=repeat_last, eta=eta, **options)
