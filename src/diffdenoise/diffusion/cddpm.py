"""Conditional DDPM for denoising and imputation, with the probabilistic-conditioning trick (seed 001 §3.2-3.3,
§4.2-4.3; SPEC 3.4).

The UNet predicts from ``[x_t, c]`` at step t (``cond_channels = C + 2``), images in [-1, 1]:

    Gaussian-type noise   c = [y, s, f]        y the observation, s = 2 sigma per pixel (RMS over channels; zeroed
                                               with probability ``blind_prob`` in training, and at blind inference)
    missing pixels        c = [y m, m, f]      m the mask (1 = observed)
    null condition        c = [0, 0, 1]        f is the flag channel

Probabilistic conditioning (seed Eq. 14 with its "T" renamed tau): c is kept with probability
p = 1 - exp(-d / tau), d = RMS over pixels of (x_t - y) per image, else replaced by the null condition. Sampling
either draws that choice at every step ("stochastic", as in the seed) or blends eps = p eps(x_t, c) + (1 - p)
eps(x_t, null) ("expected"). Without the trick, c is nulled with probability ``null_prob`` so that the same weights
also serve the probabilistic sampler.

Two forward processes (``start``):

- ``"matched"`` (default for Gaussian-type noise; the design used for quality): the chain is entered at the step N
  matched to sigma with x_N = sqrt(abar_N) y (as in ddpm_match), so only t <= N is trained, with x_t built from
  the SAME noise as y, as inference sees it. In the [-1, 1] scale y = x0 + w, w the noise (per-pixel std s); the
  state x_t / sqrt(abar_t) = x0 + W(r_t^2), r_t^2 = (1 - abar_t)/abar_t, is a Brownian bridge between x0 (W = 0) and
  y (W(s^2) = w): with rho = min(r_t^2 / s^2, 1),

      x_t = sqrt(abar_t) (x0 + rho w + r_t sqrt(1 - rho) eps'),     eps' ~ N(0, I)

  (the correlation SVNR, Pearl et al. 2023, insists on; without it the net sees independent noise in x_t and y in
  training but identical noise at inference). Its marginal given x0 is the DDPM one, and the DDIM/ancestral
  posteriors q(x_s | x_t, x0) are exact for it (Markov property), so the ordinary samplers apply. t = N is drawn
  with probability ``entry_prob`` (the one-step estimate), else t ~ U{1..N}. ``steps=1`` returns x0_hat at N: the
  one-forward MMSE estimate (SPEC 3.7); more steps give a posterior sample (sharper, lower PSNR).
- ``"noise"`` (the seed's; forced for missing pixels): t ~ U{1..T}, x_t with independent noise, sampling from
  x_T ~ N(0, I).

Prediction and loss: ``prediction="eps"`` makes x0_hat = (x_t - sqrt(1 - abar_t) eps_hat)/sqrt(abar_t) a residual
estimate (DnCNN-style); with ``loss="x0"`` (the default for "matched") the MSE is taken on x0_hat, i.e. eps-MSE
weighted by r_t^2 -- the PSNR objective, not Ho's L_simple which over-weights the smallest noise levels.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .ddpm import (PREDICTIONS, bernoulli, draw_steps, estimate_sigma_per_image, from_model_space, gather,
                   match_channels, net_eps_model, per_image, prediction_target, schedule_abar, sigma_inputs,
                   to_model_space)
from .ddpm_match import _autocast
from .samplers import get_sampler, guided, randn_like, to_x0
from .schedules import matched_step, spaced_steps

Start = Literal["matched", "noise"]
Mode = Literal["stochastic", "expected"]


def conditioning_probability(x_t: torch.Tensor, c: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """p = 1 - exp(-d / tau), d = RMS over pixels of x_t - c per image (images in [-1, 1]); shape (N,), in [0, 1)."""
    d = (x_t.float() - c.float()).pow(2).flatten(1).mean(dim=1).sqrt()
    return 1 - torch.exp(-d / tau)


def make_condition(y_s: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """c = [y (C), second channel (sigma map or mask), flag = 0]."""
    return torch.cat([y_s, second.to(y_s.dtype), torch.zeros_like(y_s[:, :1])], dim=1)


def null_condition(like: torch.Tensor) -> torch.Tensor:
    """The null condition: zeros and the flag channel set to 1 (``like`` is a condition tensor)."""
    c = torch.zeros_like(like)
    c[:, -1] = 1
    return c


def bridge_state(x0: torch.Tensor, w: torch.Tensor, s: torch.Tensor, a_t: torch.Tensor,
                 eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t on the Brownian bridge from x0 to y = x0 + w (w of per-pixel std s), and its effective eps with
    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps_eff. ``a_t`` is abar_t (N, 1, 1, 1), float64."""
    r2 = ((1 - a_t) / a_t).to(x0.dtype)
    s2 = s.pow(2)
    rho = torch.where(s2 > 0, (r2 / s2.clamp_min(1e-20)).clamp(max=1.0), torch.ones_like(s2))
    r = r2.sqrt()
    noise = rho * w + r * (1 - rho).clamp_min(0).sqrt() * eps
    x_t = a_t.sqrt().to(x0.dtype) * (x0 + noise)
    return x_t, noise / r


class CDDPMTask:
    """Training task ``cddpm``: conditional DDPM on noisy (or incomplete) observations of clean patches.

    Args:
        noise: noise spec drawn per image (``gaussian:0..75``; ``missing:0.2..0.9`` for imputation).
        prob_conditioning: keep c with probability p = 1 - exp(-d / tau) (seed Eq. 14), else the null condition.
        tau: temperature of p.
        blind_prob: probability of zeroing the sigma channel (one model for blind and non-blind use).
        prediction: network output, ``"eps"``, ``"x0"`` or ``"v"``.
        start: ``"matched"`` (enter at the matched step, bridge states) or ``"noise"`` (full chain from noise).
        loss: ``"x0"`` (MSE of x0_hat) or ``"target"`` (MSE to the prediction target); None: x0 for matched.
        null_prob: probability of the null condition when ``prob_conditioning`` is off.
        entry_prob: probability of training at t = N exactly (matched start).
        gray_prob: fraction of colour patches turned into replicated gray (gray images through the colour model).
        schedule, T: the diffusion schedule.
    """

    def __init__(self, noise: str = "gaussian:0..75", prob_conditioning: bool = False, tau: float = 1.0,
                 blind_prob: float = 0.5, prediction: str = "eps", start: Start | None = None,
                 loss: Literal["x0", "target"] | None = None, null_prob: float = 0.1, entry_prob: float = 0.5,
                 gray_prob: float = 0.1, schedule: str = "linear", T: int = 1000):
        from ..noise import parse_noise
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")
        self.noise_spec, self.noise = noise, parse_noise(noise)
        self.kind = "missing" if self.noise.name == "missing" else "gaussian"
        start = start or ("noise" if self.kind == "missing" else "matched")
        if start not in ("matched", "noise"):
            raise ValueError(f"unknown start {start!r}; valid: matched, noise")
        if self.kind == "missing" and start == "matched":
            raise ValueError("missing pixels have no noise level to match: use start='noise'")
        self.start, self.prediction = start, prediction
        self.loss_kind = loss or ("x0" if start == "matched" else "target")
        if self.loss_kind not in ("x0", "target"):
            raise ValueError(f"unknown loss {loss!r}; valid: x0, target")
        self.prob_conditioning, self.tau = bool(prob_conditioning), float(tau)
        self.blind_prob, self.null_prob = float(blind_prob), float(null_prob)
        self.entry_prob, self.gray_prob = float(entry_prob), float(gray_prob)
        self.schedule, self.T = schedule, int(T)
        self.abar = schedule_abar(schedule, self.T)

    def net_kwargs_defaults(self, cfg: Any) -> dict[str, Any]:
        c = 1 if getattr(cfg, "color", "rgb") == "gray" else 3
        return {"in_channels": c, "out_channels": c, "cond_channels": c + 2}

    def _observe(self, x: torch.Tensor, generator: torch.Generator | None):
        """Noisy observation (y, sigma map, mask) of clean patches in [0, 1]. A fraction ``gray_prob`` of colour
        patches is made gray first, with the noise drawn on one channel and replicated (what a gray image fed to
        the colour model looks like). Gaussian noise is drawn in one batched call (no per-image host syncs)."""
        from ..noise import Gaussian, Range
        n, c = x.shape[:2]
        gray = None
        if c == 3 and self.gray_prob > 0:
            gray = bernoulli(n, self.gray_prob, generator, x.device).view(-1, 1, 1, 1)
            x = torch.where(gray, x.mean(dim=1, keepdim=True).expand_as(x), x)
        if type(self.noise) is Gaussian:
            sig = self.noise.sigma
            if isinstance(sig, Range):
                dev = generator.device if generator is not None else x.device
                u = torch.rand(n, 1, 1, 1, generator=generator, device=dev).to(x.device, x.dtype)
                sigma = sig.lo + (sig.hi - sig.lo) * u
            else:
                sigma = torch.full((n, 1, 1, 1), float(sig), device=x.device, dtype=x.dtype)
            z = randn_like(x, generator)
            if gray is not None:
                z = torch.where(gray, randn_like(x[:, :1], generator).expand_as(x), z)
            return x, x + sigma * z, sigma.expand_as(x), None
        noisy = self.noise.draw(x, generator)
        y, smap, mask = noisy.y, noisy.sigma_map, noisy.mask
        if gray is not None and bool(gray.any()):
            rows = gray.view(-1)
            g = self.noise.draw(x[rows][:, :1], generator)
            y, smap = y.clone(), smap.clone()
            y[rows] = g.y.expand(-1, c, -1, -1)
            smap[rows] = g.sigma_map.expand(-1, c, -1, -1)
            if mask is not None and g.mask is not None:
                mask = mask.clone()
                mask[rows] = g.mask
        return x, y, smap, mask

    def loss(self, net: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> torch.Tensor:
        x, y, smap, mask = self._observe(batch["x"], generator)
        n, c = x.shape[:2]
        if getattr(net, "cond_channels", c + 2) != c + 2:
            raise ValueError(f"cddpm needs a UNet with cond_channels = {c + 2} for {c}-channel images")
        device = x.device
        x0, y_s = to_model_space(x), to_model_space(y)
        eps = randn_like(x0, generator)
        s = 2 * smap                                                  # noise std in [-1, 1] units, per pixel
        if self.start == "matched":
            rms = s.double().pow(2).flatten(1).mean(dim=1).sqrt() / 2
            n_match = matched_step(self.abar.to(device), rms)
            t = torch.where(bernoulli(n, self.entry_prob, generator, device), n_match,
                            draw_steps(n, 1, n_match, generator, device))
            a_t = gather(self.abar, t, x0)
            x_t, eps_eff = bridge_state(x0, y_s - x0, s, a_t, eps)
        else:
            t = draw_steps(n, 1, self.T, generator, device)
            a_t = gather(self.abar, t, x0)
            x_t, eps_eff = a_t.sqrt().to(x0.dtype) * x0 + (1 - a_t).sqrt().to(x0.dtype) * eps, eps
        if self.kind == "missing":
            m = mask if mask is not None else torch.ones_like(x0[:, :1])
            cond = make_condition(y_s * m, m)
            d_ref = y_s * m
        else:
            sig = s.pow(2).mean(dim=1, keepdim=True).sqrt()
            blind = bernoulli(n, self.blind_prob, generator, device).view(-1, 1, 1, 1)
            cond = make_condition(y_s, torch.where(blind, torch.zeros_like(sig), sig))
            d_ref = y_s
        keep_p = conditioning_probability(x_t, d_ref, self.tau) if self.prob_conditioning else 1 - self.null_prob
        keep = bernoulli(n, keep_p, generator, device).view(-1, 1, 1, 1)
        cond = torch.where(keep, cond, null_condition(cond))
        out = net(x_t, t.to(torch.float32) / self.T, cond=cond)
        if self.loss_kind == "x0":
            return F.mse_loss(to_x0(out.float(), x_t.float(), a_t, self.prediction), x0.float())
        return F.mse_loss(out.float(), prediction_target(x0, eps_eff, a_t, self.prediction).float())

    def method_card(self) -> dict[str, Any]:
        return {"name": "cddpm", "noise": self.noise_spec, "kind": self.kind, "start": self.start,
                "schedule": self.schedule, "T": self.T, "prediction": self.prediction, "loss": self.loss_kind,
                "prob_conditioning": self.prob_conditioning, "tau": self.tau, "blind_prob": self.blind_prob,
                "null_prob": self.null_prob, "entry_prob": self.entry_prob, "gray_prob": self.gray_prob,
                "condition": "[y, 2 sigma (or mask), flag]; null = [0, 0, 1]", "image_range": "[-1, 1]",
                "time_input": "t / T"}


class _Conditional:
    """What the denoiser and the imputer share: the net, its card, the eps model with or without the trick."""

    def __init__(self, net: nn.Module, card: dict[str, Any], *, steps: int | None, sampler: str, samples: int,
                 eta: float, mode: Mode | None, tau: float | None, clip_x0: float | None, precision: str):
        method = card.get("method", card)
        self.net, self.method = net, method
        self.T, self.prediction = int(method["T"]), method.get("prediction", "eps")
        self.start: Start = method.get("start", "matched")
        self.abar = schedule_abar(method.get("schedule", "linear"), self.T)
        get_sampler(sampler)
        if mode not in (None, "stochastic", "expected"):
            raise ValueError(f"unknown mode {mode!r}; valid: stochastic, expected")
        if samples < 1 or (steps is not None and steps < 1):
            raise ValueError("samples and steps must be >= 1")
        # one step is the MMSE estimate for a matched start, and for an x0-predicting net from pure noise
        self.steps = steps if steps is not None else (1 if self.start == "matched" or self.prediction == "x0" else 50)
        self.sampler, self.samples, self.eta, self.mode = sampler, int(samples), float(eta), mode
        self.tau = float(tau if tau is not None else method.get("tau", 1.0))
        self.clip_x0, self.precision = clip_x0, precision

    def eps_model(self, cond: torch.Tensor, ref: torch.Tensor, generator: Any) -> Callable:
        base = net_eps_model(self.net, self.abar, self.T, self.prediction)
        null = null_condition(cond)
        with_cond = lambda x, t, c: base(x, t, cond=c)                           # noqa: E731
        if self.mode is None:
            return lambda x, t: with_cond(x, t, cond)
        if self.mode == "expected":
            p = lambda x, t: conditioning_probability(x, ref, self.tau).view(-1, 1, 1, 1).to(x.dtype)  # noqa: E731
            return guided(with_cond, p, cond, null)

        def stochastic(x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
            keep = _bernoulli_rows(conditioning_probability(x, ref, self.tau), generator, x.device)
            return with_cond(x, t, torch.where(keep.view(-1, 1, 1, 1), cond, null))
        return stochastic

    def run(self, x: torch.Tensor, start: int, cond: torch.Tensor, ref: torch.Tensor, generator: Any,
            progress: Callable[[float], None] | None) -> torch.Tensor:
        options: dict[str, Any] = {"eta": self.eta} if self.sampler == "ddim" else {}
        device = x.device
        with _autocast(device, self.precision):
            return get_sampler(self.sampler)(self.eps_model(cond, ref, generator), x, self.abar,
                                             spaced_steps(start, self.steps), generator, progress=progress,
                                             clip_x0=self.clip_x0, **options).float()


def _bernoulli_rows(p: torch.Tensor, generator: Any, device: torch.device) -> torch.Tensor:
    """One Bernoulli(p_i) per row, row i from its own generator when a list is given."""
    if generator is None or isinstance(generator, torch.Generator):
        return bernoulli(p.shape[0], p, generator, device)
    return torch.cat([bernoulli(1, p[i:i + 1], g, device) for i, g in enumerate(generator)])


class CDDPMDenoiser(_Conditional):
    """``method(y, sigma=None, *, generator=None, progress=None) -> x_hat`` with a conditional DDPM (Gaussian-type).

    ``sigma`` None: blind (sigma channel zero; the entry step comes from ``estimate.estimate_sigma``). ``steps=1``
    (the default for a matched-start model) is the one-forward MMSE estimate x0_hat at the entry step.
    """

    def __init__(self, net: nn.Module, card: dict[str, Any], *, steps: int | None = None, sampler: str = "ddim",
                 samples: int = 1, eta: float = 0.0, mode: Mode | None = None, tau: float | None = None,
                 offset: int = 0, clip_x0: float | None = 1.0, precision: str = "auto"):
        super().__init__(net, card, steps=steps, sampler=sampler, samples=samples, eta=eta, mode=mode, tau=tau,
                         clip_x0=clip_x0, precision=precision)
        if self.method.get("kind", "gaussian") == "missing":
            raise ValueError("this is an imputation model: use cddpm.impute(y, mask)")
        self.offset = int(offset)

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        n, device = y.shape[0], next(self.net.parameters()).device
        s_img, smap = sigma_inputs(y.to(device), sigma)
        blind = s_img is None
        if blind and self.start == "matched":
            s_img = estimate_sigma_per_image(y)
        y_in, back = match_channels(y.to(device, torch.float32), self.net.in_channels)
        rows = y_in.shape[0] // n
        y_s = to_model_space(y_in)
        sig = torch.zeros_like(y_s[:, :1]) if blind else 2 * smap.repeat_interleave(rows, dim=0)
        cond = make_condition(y_s, sig)
        if self.start == "matched":
            starts = [max(1, min(self.T, matched_step(self.abar, float(s_img[i])) + self.offset)) for i in range(n)]
        else:
            starts = [self.T] * n
        out = torch.empty_like(y_s)
        done = 0
        for start in sorted(set(starts)):
            idx = [i for i in range(n) if starts[i] == start]
            rws = [i * rows + r for i in idx for r in range(rows)]
            gen = per_image(generator, idx, rows)
            acc = torch.zeros_like(y_s[rws])
            for k in range(self.samples):
                if self.start == "matched":
                    x = self.abar[start].sqrt().item() * y_s[rws]
                else:
                    x = randn_like(y_s[rws], gen)

                def prog(f: float, k: int = k, m: int = len(idx)) -> None:
                    if progress is not None:
                        progress((done + (k + f) / self.samples * m) / n)
                acc += self.run(x, start, cond[rws], y_s[rws], gen, prog)
            out[rws] = acc / self.samples
            done += len(idx)
        return back(from_model_space(out)).to(y.device, torch.float32)


class Imputer(_Conditional):
    """``imputer(y, mask, *, generator=None, progress=None) -> x_hat``: fill the pixels where ``mask`` is 0.

    ``mask``: N x 1 x H x W or N x C x H x W, values > 0.5 observed (1 = observed, 0 = missing); the net is
    conditioned on the pixels observed in every channel. Sampling starts from x_T ~ N(0, I) (``steps`` DDIM steps;
    default 1 for an x0-predicting net, whose first output is the MMSE fill, else 50; ``samples`` draws averaged). Every observed value of ``y`` is returned unchanged, bit for bit, and
    the values of ``y`` at missing pixels are never read (they may be anything, NaN included).
    """

    def __init__(self, net: nn.Module, card: dict[str, Any], *, steps: int | None = None, sampler: str = "ddim",
                 samples: int = 1, eta: float = 0.0, mode: Mode | None = None, tau: float | None = None,
                 clip_x0: float | None = 1.0, precision: str = "auto"):
        super().__init__(net, card, steps=steps, sampler=sampler, samples=samples, eta=eta, mode=mode, tau=tau,
                         clip_x0=clip_x0, precision=precision)

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, mask: torch.Tensor, *,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        n, device = y.shape[0], next(self.net.parameters()).device
        observed = mask > 0.5
        m = observed.all(dim=1, keepdim=True).to(device, torch.float32)
        y_in, back = match_channels(y.to(device, torch.float32), self.net.in_channels)
        rows = y_in.shape[0] // n
        m_in = m.repeat_interleave(rows, dim=0)
        y_s = torch.where(m_in > 0, to_model_space(y_in), torch.zeros_like(y_in))
        cond = make_condition(y_s, m_in)
        gen = per_image(generator, list(range(n)), rows)
        acc = torch.zeros_like(y_s)
        for k in range(self.samples):
            x = randn_like(y_s, gen)
            prog = None if progress is None else (lambda f, k=k: progress((k + f) / self.samples))
            acc += self.run(x, self.T, cond, y_s, gen, prog)
        x_hat = back(from_model_space(acc / self.samples)).to(y.device, torch.float32)
        return torch.where(observed.to(y.device), y.float(), x_hat)


def _load(weights: str | Sequence[str], device: str | torch.device, net: nn.Module | None,
          card: dict[str, Any] | None) -> tuple[nn.Module, dict[str, Any]]:
    """The injected (net, card), else the first stem of ``weights`` present in the weights folder."""
    if net is not None:
        if card is None:
            raise ValueError("an injected net needs its card (the 'method' dict of CDDPMTask.method_card())")
        return net.eval(), card
    from ..errors import DiffDenoiseError
    from ..train.checkpoint import load_net
    stems = [weights] if isinstance(weights, str) else list(weights)
    for i, stem in enumerate(stems):
        try:
            loaded, loaded_card = load_net(stem, device)
            return loaded.eval(), loaded_card
        except DiffDenoiseError:
            if i == len(stems) - 1:
                raise
    raise ValueError("no weights named")


def build(device: str | torch.device = "cpu", steps: int | None = None, sampler: str = "ddim", samples: int = 1,
          *, eta: float = 0.0, offset: int = 0, weights: str | Sequence[str] = "cddpm-gaussian",
          net: nn.Module | None = None, card: dict[str, Any] | None = None, **options: Any) -> CDDPMDenoiser:
    """Registry builder of ``cddpm`` (weights ``cddpm-gaussian``; or an injected ``net`` with its ``card``)."""
    net, card = _load(weights, device, net, card)
    return CDDPMDenoiser(net, card, steps=steps, sampler=sampler, samples=samples, eta=eta, offset=offset,
                         **options)


def build_prob(device: str | torch.device = "cpu", steps: int | None = None, sampler: str = "ddim",
               samples: int = 1, mode: Mode = "stochastic", *, eta: float = 0.0, offset: int = 0,
               weights: str | Sequence[str] = "cddpm-gaussian",
               net: nn.Module | None = None, card: dict[str, Any] | None = None, **options: Any) -> CDDPMDenoiser:
    """Registry builder of ``cddpm-prob``: the same denoiser with probabilistic conditioning at every step.

    Uses the ``cddpm-gaussian`` weights: trained with a null-condition rate (``null_prob``), so the unconditional
    branch the trick blends in exists; a model trained with the trick itself (``prob_conditioning=True``) can be
    named by ``weights``.
    """
    net, card = _load(weights, device, net, card)
    return CDDPMDenoiser(net, card, steps=steps, sampler=sampler, samples=samples, eta=eta, mode=mode,
                         offset=offset, **options)


def build_impute(device: str | torch.device = "cpu", steps: int | None = None, sampler: str = "ddim",
                 samples: int = 1, *, eta: float = 0.0, weights: str = "cddpm-missing",
                 net: nn.Module | None = None, card: dict[str, Any] | None = None, **options: Any) -> Imputer:
    """Builder of the ``cddpm`` imputer of ``diffdenoise.impute.IMPUTERS`` (weights ``cddpm-missing``; or an
    injected ``net`` with its ``card``)."""
    net, card = _load(weights, device, net, card)
    return Imputer(net, card, steps=steps, sampler=sampler, samples=samples, eta=eta, **options)


def impute(y: torch.Tensor, mask: torch.Tensor, *, device: str | torch.device = "cpu", steps: int | None = None,
           sampler: str = "ddim", samples: int = 1,
           generator: torch.Generator | Sequence[torch.Generator] | None = None,
           progress: Callable[[float], None] | None = None, **options: Any) -> torch.Tensor:
    """Fill missing pixels (mask 0) of ``y`` with the ``cddpm-missing`` model (for the CLI ``impute`` command)."""
    return build_impute(device, steps, sampler, samples, **options)(y, mask, generator=generator, progress=progress)
