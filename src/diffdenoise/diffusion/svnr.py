"""SVNR: spatially variant noise removal with denoising diffusion (Pearl et al. 2023; SPEC 3.6, seed 002).

Process (variance exploding, in model space: images scaled to [-1, 1], so a std ``s`` on [0, 1] is ``2 s`` here)::

    x_t = x0 + sqrt(g_t) eps,        g_t = lam (1 - abar_t),   abar from the linear beta schedule, t in [0, T]

``g`` is tabulated at t = 0..T (``g_0 = 0``) and read at continuous times by linear interpolation
(:func:`variance_at`); it is strictly increasing, so its inverse (:func:`time_of_variance`) is the inverse of that
piecewise-linear function and ``time_of_variance(g, variance_at(g, t)) = t`` up to float error.

Time map (paper Sec. 3.3): a noisy image ``y = x0 + s eps_T`` with a per-pixel std ``s`` is the state of the process
at the per-pixel time ``t*_p = g^{-1}(4 s_p^2)``.  Each channel keeps its own time (so per-channel noise levels are
modelled exactly); the NETWORK sees one time map per pixel, the max over channels (SPEC 3.6), as the UNet's ``t``
input of shape N x 1 x H x W, normalised to ``t / T``.  The UNet (``nets.unet.UNet``) embeds it per pixel.

Network: ``UNet(in_channels=C, out_channels=C, cond_channels=C)`` fed ``x_t`` and the condition ``y``
(``condition="y+std"`` adds the current per-channel std ``sqrt(g_t)``: cond_channels = 2C).  The loss is always on
x0 (the target is x0): pixels of one image sit at very different times, and an eps loss would weigh a pixel's x0
error by ``1 / g_t``, which varies by orders of magnitude inside one time map (and is undefined where t = 0), while
the x0 loss weighs every pixel alike, which is also what PSNR measures.  How the net's output ``F`` becomes
``x0_hat`` is ``prediction``: ``"eps"`` (default) ``x0_hat = x_t - sqrt(g_t) F``, a residual that is the identity
for the zero-initialised output layer, exact at t = 0 and well conditioned over the small times that real noise maps
occupy (t* < 120 of 1000 for stds below 100/255); ``"x0"``: ``x0_hat = F``.  Pixels at t = 0 are never changed by
the sampler, whatever the network says there.

Training (:class:`SVNRTask`; paper Sec. 3.4): draw x0 and a noise map ``s`` (a mixture of noise models, see
``DEFAULT_NOISE``), ``y = x0 + s eps_T``, ``t*`` from ``s``; a shift ``t0 ~ U(0, max t*)`` per image and
``t_p = max(t*_p - t0, 0)``; then the state correlated with ``y`` the way the forward process makes it::

    eps_t = sqrt(g_t / g_t*) eps_T + sqrt(1 - g_t / g_t*) eps',     x_t = x0 + sqrt(g_t) eps_t

(``g_t / g_t* := 0`` where ``t* = 0``).  Then ``Cov(x_t - x0, y - x0) = g_t`` per pixel: exactly the covariance of
the Markov forward chain, where ``y = x_t + sqrt(g_t* - g_t) z`` with ``z`` independent of ``x_t``.  ``naive=True``
draws ``eps_t`` independently of ``eps_T`` (the ablation the paper argues against: the net then meets at inference
a correlation it never saw in training).

Sampling (:func:`sample_svnr`): start at ``x = y`` with the time map; ``K`` steps, step k moves every pixel from
``t*_p (K - k) / K`` to ``t*_p (K - k - 1) / K`` (uniform in each pixel's own time, so all pixels reach 0 together
at the last step) with the posterior of the VE chain given the estimate ``x0_hat``::

    x_s = (g_s / g_t) x_t + (e / g_t) x0_hat + sqrt(g_s e / g_t) z,     e = g_t - g_s

Pixels with ``t* = 0`` are never changed.  The last step has ``g_s = 0``, so the output (x at time 0) equals the
last ``x0_hat`` wherever ``t* > 0`` and ``y`` elsewhere.  Since ``y`` only depends on ``x_s`` through ``x_t``, this
posterior is also the one given ``y``.  ``steps=1`` is the one-forward MMSE estimate at ``t*`` (SPEC 3.7).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DiffDenoiseError
from ..runtime import autocast, check_precision
from .samplers import randn_like
from .schedules import alphas_cumprod, make_betas

Condition = Literal["y", "y+std"]
CONDITIONS = ("y", "y+std")
Prediction = Literal["eps", "x0"]
PREDICTIONS = ("eps", "x0")
MAP_SOURCES = ("observed", "exact")
GeneratorArg = torch.Generator | Sequence[torch.Generator] | None

# Training noise: one component per image (weights as in DenoiseTask mixtures).  Stds in 8-bit units; a
# "linear:" prefix applies the model to linear light (sRGB EOTF) and maps its std back to display values by the
# slope of the inverse curve (first-order propagation), the camera-like Poisson-Gaussian of SPEC 3.6.
DEFAULT_NOISE: list[list[Any]] = [
    ["poisson_gaussian:0..0.03,0..15", 1.0],
    ["linear:poisson_gaussian:0..0.01,0..1", 1.0],
    ["spatial:0..10,10..75", 1.0],
    ["gaussian:0..55", 0.5],
]


# --- the VE schedule as pure functions -------------------------------------------------------------------------

def ve_variances(lam: float = 5.0, T: int = 1000, schedule: str = "linear") -> torch.Tensor:
    """g_0..g_T with g_t = lam (1 - abar_t) (SPEC 3.6); shape (T + 1,), float64, g_0 = 0, strictly increasing."""
    return float(lam) * (1 - alphas_cumprod(make_betas(schedule, int(T))))


def variance_at(g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """g at continuous times ``t`` (any shape, clamped to [0, T]) by linear interpolation of the table; float64."""
    g = g.to(t.device, torch.float64)
    T = g.numel() - 1
    t = t.to(torch.float64).clamp(0, T)
    i = t.floor().clamp(max=T - 1)
    frac = t - i
    i = i.long()
    return g[i] + frac * (g[i + 1] - g[i])


def time_of_variance(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`variance_at`: continuous t in [0, T] with g(t) = v (v clamped to [0, g_T]); float64."""
    g = g.to(v.device, torch.float64)
    T = g.numel() - 1
    v = torch.minimum(v.to(torch.float64).clamp_min(0), g[-1])
    i = (torch.searchsorted(g, v.contiguous(), right=True) - 1).clamp(0, T - 1)
    lo, hi = g[i], g[i + 1]
    return i.to(torch.float64) + (v - lo) / (hi - lo)


def time_map(sigma: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-pixel start time t* = g^{-1}((2 sigma)^2) of a std map on the [0, 1] scale (same shape, float64)."""
    return time_of_variance(g, (2 * sigma.to(torch.float64)) ** 2)


def net_time(t: torch.Tensor, T: int) -> torch.Tensor:
    """The UNet's time input: the max over channels of a per-channel time map, over T: N x 1 x H x W float32."""
    return (t.amax(dim=1, keepdim=True) / T).float()


def correlated_state(x0: torch.Tensor, eps_T: torch.Tensor, g_t: torch.Tensor, g_star: torch.Tensor,
                     generator: GeneratorArg = None, naive: bool = False) -> torch.Tensor:
    """x_t = x0 + sqrt(g_t) eps_t with eps_t = sqrt(g_t/g*) eps_T + sqrt(1 - g_t/g*) eps' (``naive``: eps_t = eps').

    ``y = x0 + sqrt(g*) eps_T`` is the observation; ``g_t <= g*`` per pixel; where g* = 0 the ratio is taken as 0.
    """
    fresh = randn_like(x0, generator)
    if naive:
        eps_t = fresh
    else:
        r = torch.where(g_star > 0, g_t / g_star.clamp_min(1e-300), torch.zeros_like(g_t)).clamp(0, 1)
        eps_t = r.sqrt().to(x0.dtype) * eps_T + (1 - r).sqrt().to(x0.dtype) * fresh
    return x0 + g_t.sqrt().to(x0.dtype) * eps_t


def to_x0(out: torch.Tensor, x_t: torch.Tensor, g_t: torch.Tensor, prediction: Prediction) -> torch.Tensor:
    """x0_hat from the network output: ``x_t - sqrt(g_t) out`` (``"eps"``) or ``out`` itself (``"x0"``)."""
    if prediction == "eps":
        return x_t - g_t.sqrt().to(x_t.dtype) * out
    if prediction == "x0":
        return out
    raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")


# --- the sampler ------------------------------------------------------------------------------------------------

X0Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sample_svnr(x0_model: X0Model, y: torch.Tensor, t_star: torch.Tensor, g: torch.Tensor, steps: int = 25,
                generator: GeneratorArg = None, *, progress: Callable[[float], None] | None = None,
                callback: Callable[[dict[str, Any]], None] | None = None) -> torch.Tensor:
    """Reverse VE chain from ``x = y`` at the per-pixel times ``t_star`` down to 0 in ``steps`` steps (module doc).

    ``x0_model(x_t, t) -> x0_hat`` with ``t`` the current continuous time per pixel and channel (shape of
    ``t_star`` broadcast to ``y``); ``y`` and the output are in model space.  ``callback`` receives, after every
    step, ``{"step": k, "t": t, "x": x_s, "x0_hat": x0_hat}`` (for figures).  Pixels with ``t_star = 0`` keep
    their value of ``y`` bit for bit.
    """
    K = int(steps)
    if K < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t_star = t_star.to(y.device, torch.float64).expand_as(y)
    x = y.clone()
    for k in range(K):
        t = t_star * ((K - k) / K)
        s = t_star * ((K - k - 1) / K) if k < K - 1 else torch.zeros_like(t_star)
        g_t, g_s = variance_at(g, t), variance_at(g, s)
        x0_hat = x0_model(x, t).to(x.dtype)
        active = g_t > 0
        safe = torch.where(active, g_t, torch.ones_like(g_t))
        e = g_t - g_s
        x_s = (g_s / safe).to(x.dtype) * x + (e / safe).to(x.dtype) * x0_hat
        if k < K - 1:
            x_s = x_s + (g_s * e / safe).clamp_min(0).sqrt().to(x.dtype) * randn_like(x, generator)
        x = torch.where(active, x_s, x)
        if callback is not None:
            callback({"step": k, "t": s, "x": x, "x0_hat": x0_hat})
        if progress is not None:
            progress((k + 1) / K)
    return x


# --- the denoiser -----------------------------------------------------------------------------------------------

def _per_image_generators(generator: GeneratorArg, idx: Sequence[int], repeat: int = 1) -> GeneratorArg:
    from .ddpm import per_image
    return per_image(generator, idx, repeat)


@dataclass
class SVNRResult:
    """What :meth:`SVNR.run` returns (tensors on y's device, image layout of y)."""
    x_hat: torch.Tensor                         # N x C x H x W, [0, 1] scale, not clipped
    time_map: torch.Tensor                      # N x 1 x H x W, t* / T (max over channels): what the net sees first
    sigma_map: torch.Tensor                     # N x C x H x W std map used ([0, 1] scale)
    evaluations: int = 0                        # network forwards
    trajectory: list[dict[str, Any]] = field(default_factory=list)   # per step: t/T map, x and x0_hat in [0, 1]


def _sigma_map(y: torch.Tensor, sigma: float | torch.Tensor | None) -> torch.Tensor:
    """The per-pixel std map N x C x H x W for ``y`` (broadcast from N x 1 x H x W or a scalar; None: estimate)."""
    if sigma is None:
        from ..estimate import estimate_noise_map          # written separately; needed only when blind
        sigma = estimate_noise_map(y)
    if not torch.is_tensor(sigma):
        return torch.full_like(y, float(sigma))
    s = sigma.to(y.device, torch.float32)
    if s.numel() == 1:
        return torch.full_like(y, float(s.reshape(())))
    if s.dim() == 4 and s.shape[0] == y.shape[0] and s.shape[-2:] == y.shape[-2:] and s.shape[1] in (1, y.shape[1]):
        return s.expand_as(y).clone()
    if s.dim() == 1 and s.shape[0] == y.shape[0]:                # one std per image
        return s.view(-1, 1, 1, 1).expand_as(y).clone()
    raise DiffDenoiseError(f"sigma map of shape {tuple(s.shape)} does not fit the image {tuple(y.shape)} "
                           f"(expected N x 1 x H x W or N x C x H x W)")


class SVNR:
    """The SVNR denoiser around one trained UNet: ``svnr(y, sigma=None, *, generator=None, progress=None)``.

    Args:
        net: a UNet with ``in_channels = out_channels = C`` and ``cond_channels = C`` (``2C`` for ``"y+std"``).
        lam, T, schedule: the VE process the net was trained with (weights card, ``method``).
        condition: ``"y"`` or ``"y+std"``; prediction: ``"eps"`` or ``"x0"`` (what the net was trained with).
        steps: reverse steps K (network evaluations per sample); 1 = the one-forward MMSE estimate.
        samples: posterior samples averaged (an approximation of the posterior mean); evaluations = steps * samples.
        precision: ``"auto"`` (the net under bf16 autocast on CUDA, float32 on the CPU), ``"fp32"`` or ``"bf16"``; the
            chain's own arithmetic stays in float32/float64.

    ``sigma``: a per-pixel std map (N x 1|C x H x W, [0, 1] scale, used as given), a float (constant map) or None
    (blind: ``diffdenoise.estimate.estimate_noise_map(y)``).  A C-channel image on a net of the other channel count
    is adapted (gray replicated to colour and averaged back; colour fed one channel at a time to a gray net).
    """

    def __init__(self, net: nn.Module, *, lam: float = 5.0, T: int = 1000, schedule: str = "linear",
                 condition: Condition = "y", prediction: Prediction = "eps", steps: int = 25, samples: int = 1,
                 precision: str = "auto"):
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}; valid: {', '.join(CONDITIONS)}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")
        self.prediction = prediction
        if int(steps) < 1 or int(samples) < 1:
            raise DiffDenoiseError(f"svnr: steps and samples must be >= 1, got steps={steps}, samples={samples}")
        self.net, self.condition = net, condition
        self.lam, self.T, self.schedule = float(lam), int(T), schedule
        self.steps, self.samples = int(steps), int(samples)
        self.precision = check_precision(precision)
        self.g = ve_variances(self.lam, self.T, schedule)
        self.channels = int(getattr(net, "in_channels", 3))

    @classmethod
    def from_card(cls, net: nn.Module, card: dict[str, Any], **options: Any) -> "SVNR":
        m = card.get("method", {})
        if m.get("name", "svnr") != "svnr":
            raise DiffDenoiseError(f"weights trained for {m.get('name')!r}, not svnr")
        return cls(net, lam=m.get("lam", 5.0), T=m.get("T", 1000), schedule=m.get("schedule", "linear"),
                   condition=m.get("condition", "y"), prediction=m.get("prediction", "eps"), **options)

    @classmethod
    def from_weights(cls, stem: str, device: str | torch.device = "cpu", **options: Any) -> "SVNR":
        """Load ``weights/<stem>`` (safetensors + card) with ``train.checkpoint.load_net``."""
        net, card = _load(stem, device)
        return cls.from_card(net, card, **options)

    def _x0_model(self, y_m: torch.Tensor) -> X0Model:
        def x0_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            g_t = variance_at(self.g, t)
            cond = y_m
            if self.condition == "y+std":
                cond = torch.cat([y_m, g_t.sqrt().to(y_m.dtype)], dim=1)
            with autocast(x_t.device, self.precision):
                out = self.net(x_t, net_time(t, self.T), cond=cond).float()
            return to_x0(out, x_t, g_t, self.prediction)
        return x0_model

    @torch.no_grad()
    def run(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *, generator: GeneratorArg = None,
            progress: Callable[[float], None] | None = None, return_trajectory: bool = False) -> SVNRResult:
        """Denoise and return the estimate with the time map (and, if asked, every intermediate state)."""
        if y.dim() != 4:
            raise DiffDenoiseError(f"svnr takes an N x C x H x W tensor, got shape {tuple(y.shape)}")
        y = y.float()
        s = _sigma_map(y, sigma)
        n, c = y.shape[:2]
        net_c = self.channels
        if c == net_c:
            y_in, s_in, back, gens = y, s, (lambda v: v), generator
        elif c == 1:
            y_in, s_in = y.expand(-1, net_c, -1, -1), s.expand(-1, net_c, -1, -1)
            back, gens = (lambda v: v.mean(dim=1, keepdim=True)), generator
        elif net_c == 1:
            y_in, s_in = y.reshape(n * c, 1, *y.shape[-2:]), s.reshape(n * c, 1, *y.shape[-2:])
            back = lambda v: v.reshape(n, c, *v.shape[-2:])          # noqa: E731
            gens = _per_image_generators(generator, range(n), repeat=c)
        else:
            raise DiffDenoiseError(f"cannot feed a {c}-channel image to a {net_c}-channel svnr model")

        y_m = 2 * y_in - 1
        if self.g.device != y.device:
            self.g = self.g.to(y.device)
        t_star = time_map(s_in, self.g)
        trajectory: list[dict[str, Any]] = []

        def record(state: dict[str, Any]) -> None:
            trajectory.append({"step": state["step"], "t": back(net_time(state["t"], self.T)),
                               "x": back((state["x"] + 1) / 2), "x0_hat": back((state["x0_hat"] + 1) / 2)})

        total = self.steps * self.samples
        acc = torch.zeros_like(y_m)
        for i in range(self.samples):
            report = None if progress is None else (lambda f, i=i: progress((i + f) / self.samples))
            acc += sample_svnr(self._x0_model(y_m), y_m, t_star, self.g, self.steps, gens, progress=report,
                               callback=record if (return_trajectory and i == 0) else None)
        x_hat = back((acc / self.samples + 1) / 2)
        return SVNRResult(x_hat=x_hat, time_map=back(net_time(t_star, self.T)), sigma_map=s, evaluations=total,
                          trajectory=trajectory)

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *, generator: GeneratorArg = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        return self.run(y, sigma, generator=generator, progress=progress).x_hat.to(y.dtype)


def _weights_file(stem: str):
    from ..train.checkpoint import weights_dir
    return weights_dir() / f"{stem}.json"


def _load(stem: str, device: str | torch.device) -> tuple[nn.Module, dict[str, Any]]:
    from ..train.checkpoint import load_net
    if not _weights_file(stem).exists():
        raise DiffDenoiseError(f"svnr needs weights {_weights_file(stem)} (train with configs/{stem}.json)")
    net, card = load_net(stem, device)
    return net.eval(), card


class SVNRByChannels:
    """What :func:`build` returns: the ``svnr-color`` or ``svnr-gray`` model chosen by the image's channel count
    (the other one, adapted, when only one is present), each loaded on first use."""

    def __init__(self, stems: dict[int, str], device: str | torch.device = "cpu", **options: Any):
        self.stems, self.device, self.options = dict(stems), device, options
        self._models: dict[str, SVNR] = {}
        if not any(_weights_file(s).exists() for s in self.stems.values()):
            names = " or ".join(str(_weights_file(s)) for s in self.stems.values())
            raise DiffDenoiseError(f"svnr needs weights {names} (train with configs/svnr-*.json)")

    def model_for(self, channels: int) -> SVNR:
        order = [self.stems[channels]] if channels in self.stems else []
        order += [s for c, s in sorted(self.stems.items()) if s not in order]
        stem = next((s for s in order if _weights_file(s).exists()), order[0])
        if stem not in self._models:
            self._models[stem] = SVNR.from_weights(stem, self.device, **self.options)
        return self._models[stem]

    def run(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, **kwargs: Any) -> SVNRResult:
        return self.model_for(y.shape[1]).run(y, sigma, **kwargs)

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *, generator: GeneratorArg = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        return self.model_for(y.shape[1])(y, sigma, generator=generator, progress=progress)


def build(device: str | torch.device = "cpu", steps: int = 1, samples: int = 1, naive: bool = False,
          precision: str = "auto") -> SVNRByChannels:
    """Registry builder for ``svnr``: weights ``svnr-color`` / ``svnr-gray`` (``naive=True``: the ablation trained
    without the correlation correction, ``svnr-color-naive`` / ``svnr-gray-naive``); ``precision``: ``auto`` (bf16
    autocast on CUDA), ``fp32`` or ``bf16``.

    Default ``steps=1`` (the one-forward MMSE estimate at each pixel's own time), not the paper's 25: on CBSD68 with
    Poisson-Gaussian noise it scores 38.04 dB against 33.57 dB at 25 steps (benchmarks/steps_table.py, H200). A
    multi-step chain returns a draw from the posterior, whose expected error is twice the MMSE (-3 dB) even for a
    perfect model; ``steps=25`` gives that sample."""
    suffix = "-naive" if naive else ""
    return SVNRByChannels({3: "svnr-color" + suffix, 1: "svnr-gray" + suffix}, device, steps=int(steps),
                          samples=int(samples), precision=precision)


# --- training ---------------------------------------------------------------------------------------------------

def _uniform(value: Any, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A parameter per image, (N, 1, 1, 1): a float repeated, or a Range drawn uniformly (no host sync)."""
    from ..noise import Range
    if isinstance(value, Range):
        dev = generator.device if generator is not None else device
        u = torch.rand(n, generator=generator, device=dev).to(device)
        return (value.lo + (value.hi - value.lo) * u).view(n, 1, 1, 1)
    return torch.full((n, 1, 1, 1), float(value), device=device)


def smooth_fields(n: int, h: int, w: int, generator: torch.Generator | None, device: torch.device,
                  blobs: int = 4) -> torch.Tensor:
    """N smooth random fields N x 1 x H x W, each rescaled to span [0, 1], drawn as one batch (no host sync).

    Each is a sum of ``blobs`` isotropic Gaussian bumps (uniform centres, widths 8-40 % of the longer side,
    amplitudes U(0, 1)) plus a 3 x 3 normal field upsampled bicubically with weight U(0, 0.5): the slowly varying
    maps of SVNR's training (Pearl et al. 2023, Sec. 5), same family as ``noise.Spatial`` draws one image at a time.
    """
    dev = generator.device if generator is not None else device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=dev).to(device)

    scale = float(max(h, w))
    yy = (torch.arange(h, device=device, dtype=torch.float32) / scale).view(1, 1, h, 1)
    xx = (torch.arange(w, device=device, dtype=torch.float32) / scale).view(1, 1, 1, w)
    cy, cx = rand(n, blobs, 1, 1) * (h / scale), rand(n, blobs, 1, 1) * (w / scale)
    width, amp = 0.08 + 0.32 * rand(n, blobs, 1, 1), rand(n, blobs, 1, 1)
    field = (amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))).sum(dim=1, keepdim=True)
    low = torch.randn((n, 1, 3, 3), generator=generator, device=dev).to(device)
    field = field + 0.5 * rand(n, 1, 1, 1) * F.interpolate(low, size=(h, w), mode="bicubic", align_corners=True)
    lo = field.amin(dim=(2, 3), keepdim=True)
    span = field.amax(dim=(2, 3), keepdim=True) - lo
    return torch.where(span > 1e-12, (field - lo) / span.clamp_min(1e-12), torch.full_like(field, 0.5))


def _display_slope(v: torch.Tensor, h: float = 1e-4) -> torch.Tensor:
    """d from_linear / dv (sRGB), by a central difference of ``noise.colour.from_linear``."""
    from ..noise import from_linear
    return (from_linear(v + h) - from_linear(v - h)) / (2 * h)


def noise_std_map_fn(model: Any, n: int, h: int, w: int, generator: torch.Generator | None,
                     device: torch.device, linear: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """Draw one noise model's random parameters for ``n`` images and return ``f(v) -> std map`` ([0, 1] scale, shape
    of ``v``), batched for the Gaussian family (gaussian, poisson_gaussian, spatial).

    Why a function: the same draw (same ``a``, ``b``, same spatial field) must give both the exact map ``f(x)``
    that makes the noise and the map a user could know, ``f(local mean of y)`` (:meth:`SVNRTask.inputs`).
    ``linear``: the model acts on linear light ``to_linear(v)`` and its std is carried back to display values by the
    slope of ``from_linear`` (first order).  Other models: ``model.draw(v).sigma_map`` (drawn at each call).
    """
    from ..noise import Gaussian, PoissonGaussian, Spatial, to_linear
    if isinstance(model, Gaussian):
        sigma = _uniform(model.sigma, n, generator, device)
        base = lambda v: sigma.expand_as(v)                                                   # noqa: E731
    elif isinstance(model, PoissonGaussian):
        a, b = _uniform(model.a, n, generator, device), _uniform(model.b, n, generator, device)
        base = lambda v: (a * v.clamp(min=0) + b ** 2).sqrt()                                  # noqa: E731
    elif isinstance(model, Spatial):
        lo, hi = _uniform(model.sigma_min, n, generator, device), _uniform(model.sigma_max, n, generator, device)
        lo, hi = torch.minimum(lo, hi), torch.maximum(lo, hi)
        field = lo + (hi - lo) * smooth_fields(n, h, w, generator, device)
        base = lambda v: field.expand_as(v)                                                   # noqa: E731
    else:
        base = lambda v: model.draw(v, generator).sigma_map.to(v.dtype)                       # noqa: E731

    def f(v: torch.Tensor) -> torch.Tensor:
        u = to_linear(v) if linear else v
        s = base(u)
        if linear:
            s = s * _display_slope(u.clamp(min=0))
        return s.contiguous()
    return f


def noise_std_map(model: Any, x: torch.Tensor, generator: torch.Generator | None, linear: bool = False
                  ) -> torch.Tensor:
    """The exact per-pixel std map (shape of x, [0, 1] scale) of one draw of a noise model (``noise_std_map_fn``).

    Poisson-Gaussian ``exact=true`` uses the same (Gaussian) map.
    """
    return noise_std_map_fn(model, x.shape[0], x.shape[2], x.shape[3], generator, x.device, linear)(x)


class SVNRTask:
    """Training task ``svnr`` (Pearl et al. 2023, Sec. 3.4; module docstring).

    Args:
        noise: noise spec or mixture (``"spec"``, ``["spec", ...]`` or ``[["spec", weight], ...]``), one component
            per image; a ``"linear:"`` prefix applies the model in linear light.  Only the std map is used:
            ``y = x + s n`` with Gaussian ``n`` (the paper's model).  Default ``DEFAULT_NOISE``.
        lam, T, schedule: the VE process ``g_t = lam (1 - abar_t)``.
        condition: ``"y"`` (cond = y) or ``"y+std"`` (also the current per-channel std ``sqrt(g_t)``).
        prediction: ``"eps"`` (x0_hat = x_t - sqrt(g_t) F) or ``"x0"`` (x0_hat = F); the loss is on x0_hat.
        naive: draw the noise of ``x_t`` independently of ``y``'s (the ablation).
        loss: ``"mse"``, ``"l1"`` or ``"charbonnier"`` between x0_hat and x0 (model space).
        map_from: which std map sets the time map the network sees.  ``"observed"`` (default): the map a user can
            know, the drawn model evaluated at the 5 x 5 local mean of ``y`` (``NoiseModel.observed_map``), while
            ``y`` itself is made with the exact map.  ``"exact"``: the map of the clean image; for signal-dependent
            noise it reveals ``x`` (``s^2 = a x + b^2``), so a net trained on it learns to read the image off the
            map and fails on the maps available at test time (BENCHMARKS.md, "the Poisson-Gaussian map leak").
    """

    def __init__(self, noise: str | Sequence[Any] | None = None, lam: float = 5.0, T: int = 1000,
                 schedule: str = "linear", condition: Condition = "y", prediction: Prediction = "eps",
                 naive: bool = False, loss: Literal["mse", "l1", "charbonnier"] = "mse",
                 map_from: Literal["observed", "exact"] = "observed"):
        from ..noise import parse_noise, spec
        from ..train.tasks import LOSSES, _parse_mixture
        if condition not in CONDITIONS:
            raise DiffDenoiseError(f"unknown condition {condition!r}; valid: {', '.join(CONDITIONS)}")
        if prediction not in PREDICTIONS:
            raise DiffDenoiseError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")
        if loss not in LOSSES:
            raise DiffDenoiseError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if map_from not in MAP_SOURCES:
            raise DiffDenoiseError(f"unknown map_from {map_from!r}; valid: {', '.join(MAP_SOURCES)}")
        self.map_from = map_from
        specs, weights = _parse_mixture(DEFAULT_NOISE if noise is None else noise)
        self.components: list[tuple[Any, bool]] = []
        for text in specs:
            linear = text.strip().lower().startswith("linear:")
            self.components.append((parse_noise(text.strip()[7:] if linear else text), linear))
        self.specs = [("linear:" if lin else "") + spec(m) for m, lin in self.components]
        total = sum(weights)
        self.weights = [w / total for w in weights]
        self.lam, self.T, self.schedule = float(lam), int(T), schedule
        self.condition, self.prediction, self.naive, self.loss_kind = condition, prediction, bool(naive), loss
        self.g = ve_variances(self.lam, self.T, schedule)
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, mixture weights) on ``device``, copied once: no host-device transfer (and sync) per step."""
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = (self.g.to(device), torch.tensor(self.weights, device=device))
        return self._on_device[key]

    def net_kwargs_defaults(self, cfg: Any) -> dict[str, Any]:
        c = 1 if cfg.color == "gray" else 3
        return {"in_channels": c, "out_channels": c, "cond_channels": c * (2 if self.condition == "y+std" else 1)}

    def method_card(self) -> dict[str, Any]:
        noise: Any = [[s, w] for s, w in zip(self.specs, self.weights)]
        return {"name": "svnr", "lam": self.lam, "T": self.T, "schedule": self.schedule, "prediction": self.prediction,
                "target": "x0", "condition": self.condition, "naive": self.naive, "noise": noise,
                "loss": self.loss_kind, "map_from": self.map_from,
                "image_range": "[-1, 1]", "time_input": "per-pixel t / T, N x 1 x H x W, max over channels"}

    def _map_fns(self, x: torch.Tensor, generator: torch.Generator | None
                 ) -> tuple[torch.Tensor | None, list[Callable[[torch.Tensor], torch.Tensor]]]:
        """(component picked per image or None, one map function per component) for a batch."""
        n, _, h, w = x.shape
        fns = [noise_std_map_fn(model, n, h, w, generator, x.device, linear) for model, linear in self.components]
        if len(fns) == 1:
            return None, fns
        dev = generator.device if generator is not None else x.device
        pick = torch.multinomial(self._tables(dev)[1], n, replacement=True,
                                 generator=generator).to(x.device).view(-1, 1, 1, 1)
        return pick, fns

    @staticmethod
    def _apply(pick: torch.Tensor | None, fns: list[Callable[[torch.Tensor], torch.Tensor]], v: torch.Tensor
               ) -> torch.Tensor:
        if pick is None:
            return fns[0](v)
        s = torch.zeros_like(v)
        for m, f in enumerate(fns):
            s = torch.where(pick == m, f(v), s)
        return s

    def noise_map(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The exact std map of every image (one mixture component drawn per image), [0, 1] scale, shape of x."""
        pick, fns = self._map_fns(x, generator)
        return self._apply(pick, fns, x)

    def inputs(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One training example per image, in model space: x0, y, t* and t (float64 per channel), x_t.

        ``y = x0 + 2 s eps_T`` with the exact map ``s``; ``t*`` comes from the map named by ``map_from``.  With an
        observed map ``g(t*)`` differs from the true ``(2 s)^2``, and ``x_t`` is built from y's actual noise
        ``d = y - x0``: ``x_t = x0 + r d + sqrt(g_t (1 - r)) eps'`` with ``r = g_t / g(t*)``, which is the
        correlation-aware state when the map is exact and equals ``y`` at ``t = t*``, the state sampling starts from.
        """
        x0 = 2 * x.float() - 1
        g = self._tables(x0.device)[0]
        pick, fns = self._map_fns(x.float(), generator)
        s_true = self._apply(pick, fns, x.float())
        g_true = variance_at(g, time_map(s_true, g))
        eps_T = randn_like(x0, generator)
        y = x0 + g_true.sqrt().to(x0.dtype) * eps_T
        if self.map_from == "observed":
            from ..noise import local_mean            # the box NoiseModel.observed_map evaluates the map at
            t_star = time_map(self._apply(pick, fns, local_mean((y.detach() + 1) / 2)), g)
        else:
            t_star = time_map(s_true, g)
        g_star = variance_at(g, t_star)
        n = x0.shape[0]
        dev = generator.device if generator is not None else x0.device
        u = torch.rand(n, generator=generator, device=dev).to(x0.device, torch.float64).view(n, 1, 1, 1)
        t0 = u * t_star.amax(dim=(1, 2, 3), keepdim=True)
        t = (t_star - t0).clamp_min(0)
        g_t = variance_at(g, t)
        if self.map_from == "observed":
            eps_T = torch.where(g_star > 0, (y - x0) / g_star.clamp_min(1e-300).sqrt().to(x0.dtype),
                                torch.zeros_like(y))
        x_t = correlated_state(x0, eps_T, g_t, g_star, generator, naive=self.naive)
        x_t = torch.where(g_star > 0, x_t, y)          # t* = 0: sampling never changes the pixel, it stays y
        return {"x0": x0, "y": y, "t_star": t_star, "t": t, "g_t": g_t, "g_star": g_star, "x_t": x_t}

    def loss(self, net: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> torch.Tensor:
        from ..train.tasks import pixel_loss
        d = self.inputs(batch["x"], generator)
        cond = d["y"]
        if self.condition == "y+std":
            cond = torch.cat([cond, d["g_t"].sqrt().to(cond.dtype)], dim=1)
        out = net(d["x_t"], net_time(d["t"], self.T), cond=cond)
        return pixel_loss(to_x0(out.float(), d["x_t"], d["g_t"], self.prediction), d["x0"], self.loss_kind)


__all__ = ["SVNR", "SVNRByChannels", "SVNRResult", "SVNRTask", "DEFAULT_NOISE", "MAP_SOURCES", "build",
           "correlated_state", "noise_std_map", "noise_std_map_fn", "sample_svnr", "smooth_fields", "time_map",
           "to_x0", "time_of_variance", "variance_at", "ve_variances", "net_time"]
