"""DDPM (Ho et al. 2020): the forward process, the training task (Algorithm 1) and what the inference methods share.

Forward process (SPEC 3.2), images scaled to [-1, 1] (``x0 = 2 x - 1``):

    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,   eps ~ N(0, I),   t in 1..T

Training (Algorithm 1): t ~ U{1..T}, minimise ||target - net(x_t, t/T)||^2 where the target is eps (``"eps"``, the
paper's L_simple), x0 (``"x0"``) or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 (``"v"``, Salimans & Ho 2022).
Class-conditional training replaces the label by the null label ``num_classes`` with probability ``label_dropout``
(classifier-free guidance, Ho & Salimans 2022); sample with ``samplers.guided``.

``focus_steps``/``focus_fraction`` redistribute training effort over t: that fraction of each batch draws
t ~ U{1..focus_steps} instead of U{1..T}. Matched-timestep denoising only ever enters at small t (sigma 75 in 8-bit
units is t ~ 170 on the linear schedule), and uniform t spends ~85% of the updates on steps it never visits. The
optimum at each t is unchanged (only the weighting of the sum over t moves), so the model stays a DDPM that samples
from T; its loss at large t just converges more slowly.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .samplers import net_time, randn_like, to_eps, to_x0
from .schedules import alphas_cumprod, make_betas

Prediction = Literal["eps", "x0", "v"]
PREDICTIONS = ("eps", "x0", "v")


def to_model_space(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> [-1, 1], the scale the diffusion runs in."""
    return 2 * x - 1


def from_model_space(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def schedule_abar(schedule: str, T: int) -> torch.Tensor:
    """abar_0..abar_T (float64, abar_0 = 1) of a named schedule."""
    return alphas_cumprod(make_betas(schedule, T))


def gather(abar: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar_t per image, shape (N, 1, 1, 1) (or per pixel for a (N, 1, H, W) step map), float64 on like's device."""
    a = abar.to(like.device)[t.to(like.device).long()]
    return a.view(-1, 1, 1, 1) if a.dim() == 1 else a


def prediction_target(x0: torch.Tensor, eps: torch.Tensor, a_t: torch.Tensor, prediction: str) -> torch.Tensor:
    """What the network is trained to output at x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return a_t.sqrt().to(x0.dtype) * eps - (1 - a_t).sqrt().to(x0.dtype) * x0
    raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")


def draw_steps(n: int, low: int | torch.Tensor, high: int | torch.Tensor, generator: torch.Generator | None,
               device: torch.device) -> torch.Tensor:
    """t ~ U{low..high} per image (bounds inclusive, ints or per-image long tensors), from ``generator``."""
    dev = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=dev).to(device, torch.float64)
    low = torch.as_tensor(low, device=device, dtype=torch.float64)
    high = torch.as_tensor(high, device=device, dtype=torch.float64)
    return (low + torch.floor(u * (high - low + 1))).long().clamp(max=high.long())


def bernoulli(n: int, p: float | torch.Tensor, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """n booleans, True with probability p (a number or a per-image tensor)."""
    dev = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=dev).to(device)
    return u < (p.to(device) if torch.is_tensor(p) else p)


def net_eps_model(net: nn.Module, abar: torch.Tensor, T: int, prediction: str,
                  ) -> Callable[..., torch.Tensor]:
    """``eps_model(x_t, t, cond=None, label=None) -> eps_hat`` for the samplers, from a UNet trained with
    ``prediction``; ``t`` is a step (int or long tensor) and the net sees t / T."""
    def eps_model(x: torch.Tensor, t: int | torch.Tensor, cond: torch.Tensor | None = None,
                  label: torch.Tensor | None = None) -> torch.Tensor:
        out = net(x, net_time(t, x.shape[0], T, x.device), cond=cond, label=label).to(x.dtype)
        if prediction == "eps":
            return out
        a_t = gather(abar, t, x) if torch.is_tensor(t) else abar[int(t)]
        return to_eps(out, x, a_t, prediction)
    return eps_model


def net_x0_model(net: nn.Module, abar: torch.Tensor, T: int, prediction: str) -> Callable[..., torch.Tensor]:
    """``x0_model(x_t, t, cond=None, label=None) -> x0_hat`` (the one-forward MMSE estimate at step t)."""
    def x0_model(x: torch.Tensor, t: int | torch.Tensor, cond: torch.Tensor | None = None,
                 label: torch.Tensor | None = None) -> torch.Tensor:
        out = net(x, net_time(t, x.shape[0], T, x.device), cond=cond, label=label).to(x.dtype)
        a_t = gather(abar, t, x) if torch.is_tensor(t) else abar[int(t)]
        return to_x0(out, x, a_t, prediction)
    return x0_model


class DDPMTask:
    """Training task ``ddpm`` (Ho et al. 2020, Algorithm 1), optionally class-conditional.

    Args:
        schedule: ``"linear"`` (1e-4 -> 0.02) or ``"cosine"`` (Nichol & Dhariwal 2021).
        T: number of diffusion steps.
        num_classes: > 0 for class-conditional training on ``batch["label"]``.
        label_dropout: probability of replacing a label by the null label (classifier-free guidance).
        prediction: network output, ``"eps"`` (the paper), ``"x0"`` or ``"v"``; the loss is MSE to that target.
        focus_steps, focus_fraction: the share of each batch whose t is drawn from 1..focus_steps (module docstring);
            0 (default): the paper's uniform t.
    """

    def __init__(self, schedule: str = "linear", T: int = 1000, num_classes: int = 0, label_dropout: float = 0.1,
                 prediction: Prediction = "eps", focus_steps: int = 0, focus_fraction: float = 0.0):
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")
        if not 0 <= focus_fraction <= 1 or not 0 <= focus_steps <= T or (focus_fraction > 0 and focus_steps < 1):
            raise ValueError(f"focus_fraction must be in [0, 1] and focus_steps in 1..T={T} when used; "
                             f"got {focus_fraction}, {focus_steps}")
        self.focus_steps, self.focus_fraction = int(focus_steps), float(focus_fraction)
        self.schedule, self.T, self.prediction = schedule, int(T), prediction
        self.num_classes, self.label_dropout = int(num_classes), float(label_dropout)
        self.abar = schedule_abar(schedule, self.T)

    def net_kwargs_defaults(self, cfg: Any) -> dict[str, Any]:
        c = 1 if getattr(cfg, "color", "rgb") == "gray" else 3
        return {"in_channels": c, "out_channels": c, "num_classes": self.num_classes}

    def loss(self, net: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> torch.Tensor:
        x0 = to_model_space(batch["x"])
        n, device = x0.shape[0], x0.device
        t = draw_steps(n, 1, self.T, generator, device)
        if self.focus_fraction > 0:
            focus = bernoulli(n, self.focus_fraction, generator, device)
            t = torch.where(focus, draw_steps(n, 1, self.focus_steps, generator, device), t)
        eps = randn_like(x0, generator)
        a_t = gather(self.abar, t, x0)
        x_t = a_t.sqrt().to(x0.dtype) * x0 + (1 - a_t).sqrt().to(x0.dtype) * eps
        label = None
        if self.num_classes > 0:
            label = batch["label"].to(device).long()
            drop = bernoulli(n, self.label_dropout, generator, device)
            label = torch.where(drop, torch.full_like(label, self.num_classes), label)
        out = net(x_t, t.to(torch.float32) / self.T, label=label)
        return F.mse_loss(out.float(), prediction_target(x0, eps, a_t, self.prediction).float())

    def method_card(self) -> dict[str, Any]:
        return {"name": "ddpm", "schedule": self.schedule, "T": self.T, "prediction": self.prediction,
                "num_classes": self.num_classes, "label_dropout": self.label_dropout, "image_range": "[-1, 1]",
                "time_input": "t / T", "focus_steps": self.focus_steps, "focus_fraction": self.focus_fraction}


# Inference helpers shared by the denoisers built on a trained diffusion UNet (ddpm_match, cddpm).

def estimate_sigma_per_image(y: torch.Tensor) -> torch.Tensor:
    """Blind use: sigma per image (N,) on the [0, 1] scale from ``diffdenoise.estimate.estimate_sigma``."""
    from ..estimate import estimate_sigma            # written separately; imported only when blind
    out = []
    for i in range(y.shape[0]):
        s = estimate_sigma(y[i:i + 1].detach().float().cpu())
        out.append(torch.as_tensor(s, dtype=torch.float64).reshape(-1).mean())
    return torch.stack(out)


def sigma_inputs(y: torch.Tensor, sigma: float | torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(per-image sigma (N,) float64 or None when blind, per-pixel map (N, 1, H, W) float32 or None).

    A float is used as is; a map gives its RMS per image (the scalar a matched step needs) and its RMS over
    channels per pixel; None gives (None, None).
    """
    n = y.shape[0]
    if sigma is None:
        return None, None
    if not torch.is_tensor(sigma) or sigma.numel() == 1:
        s = float(sigma)
        return torch.full((n,), s, dtype=torch.float64), torch.full_like(y[:, :1], s)
    m = sigma.to(y.device, torch.float32)
    if m.dim() != 4 or m.shape[0] != n or m.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"sigma map of shape {tuple(m.shape)} does not match y {tuple(y.shape)}")
    pixel = m.pow(2).mean(dim=1, keepdim=True).sqrt()
    per_image = m.double().pow(2).flatten(1).mean(dim=1).sqrt().cpu()
    return per_image, pixel


def match_channels(y: torch.Tensor, net_channels: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Feed y to a net with ``net_channels`` inputs: gray -> colour by replication (averaged back), colour -> gray
    one channel at a time. Returns the adapted batch and the function mapping outputs back to y's layout."""
    n, c = y.shape[:2]
    if c == net_channels:
        return y, lambda out: out
    if c == 1:
        return y.expand(-1, net_channels, -1, -1), lambda out: out.mean(dim=1, keepdim=True)
    if net_channels == 1:
        return y.reshape(n * c, 1, *y.shape[-2:]), lambda out: out.reshape(n, c, *out.shape[-2:])
    raise ValueError(f"cannot feed a {c}-channel image to a {net_channels}-channel model")


def per_image(generator: torch.Generator | Sequence[torch.Generator] | None, idx: Sequence[int], repeat: int = 1
              ) -> torch.Generator | list[torch.Generator] | None:
    """The generators of images ``idx`` (one shared generator stays shared); with ``repeat`` > 1 (channels folded
    into the batch) each image's generator serves its ``repeat`` consecutive rows, in order."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    return [generator[i] for i in idx for _ in range(repeat)]
