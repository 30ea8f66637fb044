"""Real-world denoising by interpolation diffusion (Yang, Liang & Su 2023, "Real-World Denoising via Diffusion
Model"; seed ``000_05e932849f806b45.txt``; SPEC 3.5).

The degradation is not Gaussian: the forward process interpolates linearly between a clean image ``x0`` and its
really (or realistically) noisy partner ``y``:

    x_t = D(x0, t) = (1 - t/T) x0 + (t/T) y,      t = 0..T   (alpha = t/T; x_0 = x0, x_T = y)

A UNet ``S(x_t, t)`` (the shared backbone, :class:`diffdenoise.nets.unet.UNet`, fed t/T in [0, 1]) predicts ``x0``;
training minimises the Charbonnier loss ``mean sqrt((S - x0)^2 + 1e-6)`` with ``t ~ U{1..T}``.  Reverse samplers
start from ``x_T = y`` and visit a decreasing sub-sequence ``T = t_0 > t_1 > ... > t_k > 0`` (``steps`` <= T of
them; ``schedules.spaced_steps``), moving t -> s:

- origin sampling (paper's Algorithm "origin"): ``x0_hat = S(x_t, t)``; ``x_s = D(x0_hat, s)``;
- improved sampling (cold diffusion, Bansal et al. 2022, Algorithm 2):
  ``x_s = x_t - D(x0_hat, t) + D(x0_hat, s) = x_t + ((t - s)/T) (x0_hat - y)``, i.e. ``x_t + (x0_hat - y)/T`` per
  unit step.  Errors of ``S`` enter only through the *difference* of two degradations, so they do not accumulate
  as in origin sampling.

With ``steps = 1`` both samplers return ``S(y, T)``: one forward pass, the MMSE-style estimate (SPEC 3.7).

Choices made here (the paper leaves them open):

- ``T = 20`` by default.  Since ``x_t`` depends on t only through ``alpha = t/T``, a net trained at T = 20 also
  serves T = 10, 5 and 1 exactly (their alpha grids are sub-grids of T = 20's) and sampling "at T' | 20" is running
  ``steps = T'`` on the T = 20 model.  The benchmark (``benchmarks/realdiff_table.py``) compares steps 1/5/10/20,
  and models trained per T (``--models``).  Fine-tuned alike (BENCHMARKS.md, "GPU round 9"), T = 1 was 0.1 dB
  better at one step on PolyU, but the shipped T = 20 model generalised better (SIDD) and keeps multi-step use.
  ``steps`` above a model's T are capped at T.
- ``condition_on_y = False`` (the paper's choice) by default.  Feeding ``y`` as extra channels makes training
  degenerate: for t < T the clean image is an exact function of the inputs, ``x0 = (x_t - (t/T) y)/(1 - t/T)``, so
  the net learns that identity instead of denoising, and at inference every later step just returns the first
  estimate (multi-step sampling collapses to the one-step result).  The option exists for experiments.
- ``output = "residual"``: ``S(x_t, t) = x_t + UNet(x_t, t)`` (still an x0 predictor; the residual form trains
  much faster from the backbone's zero-initialised output layer).  ``"x0"``: ``S = UNet(x_t, t)``.
- Blind by design: ``sigma`` is accepted and ignored; the noise level is whatever ``y`` holds.

Beyond the paper, ``samples = K > 1`` draws K stochastic restorations (a parametric bootstrap around ``y``):

    x0_1 = S(y, T)                                          one deterministic forward
    s    = sqrt(box7(y - x0_1)^2)                           local noise std estimate, per pixel and channel
    x_T^(k) = y + jitter * s * z_k,  z_k ~ N(0, I)          k = 1..K, from the caller's generator
    x^(k)   = sampler(x_T^(k))                              the same deterministic chain, y in D replaced by x_T^(k)

and returns the per-pixel mean of the K restorations; ``last_uncertainty`` holds their per-pixel standard deviation
(unbiased, over K), shaped like ``y``.  ``samples = 1`` is deterministic (the generator is not used) and sets
``last_uncertainty`` to None.  :func:`uncertainty_heatmap` turns a std map into an H x W x 3 colour image.
``jitter`` = 0.1 keeps the restarts inside what the net handles like ``y`` itself: the mean of 2 then costs nothing
(FMDD 33.76 against 33.78 dB at one step, PolyU test 38.15 both), where 0.25 / 0.5 cost 0.2 / 1.2 dB on FMDD — the
gray model's wide-field result breaks when half its local noise std is added (benchmarks/realdiff_jitter.sh); the
std then maps where the output is most sensitive to the noise.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DiffDenoiseError
from .ddpm import draw_steps, match_channels, per_image
from .samplers import randn_like
from .schedules import spaced_steps

JITTER = 0.1    # restart noise of samples > 1, in units of the local noise std (module docstring)

Sampler = Literal["improved", "origin"]
Output = Literal["residual", "x0"]
X0Model = Callable[[torch.Tensor, int], torch.Tensor]

CHARBONNIER_EPS = 1e-6                 # the constant under the square root of the Charbonnier loss (SPEC 3.5)
STEM_COLOR, STEM_GRAY = "realdiff-color", "realdiff-gray"

# Default training noise for clean images (one model drawn per image; [spec, weight]).  Light-to-moderate levels,
# since real photos (PolyU: 31-41 dB, SIDD: 16-30 dB) are mostly far cleaner than gaussian:50.
DEFAULT_NOISE: list[list[Any]] = [
    ["camera", 0.3],
    ["camera:jpeg=true,quality=70..100", 0.2],
    ["poisson_gaussian:0..0.01,0..8", 0.25],
    ["gaussian:0..30", 0.25],
]


def interpolate(x0: torch.Tensor, y: torch.Tensor, t: int | torch.Tensor, T: int) -> torch.Tensor:
    """The forward process ``D(x0, t) = (1 - t/T) x0 + (t/T) y``; ``t`` an int or a per-image (N,) tensor."""
    if torch.is_tensor(t):
        a = (t.to(x0.device, torch.float64) / T).to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    else:
        a = float(t) / T
    return (1 - a) * x0 + a * y


def _check_steps(timesteps: Sequence[int], T: int) -> list[int]:
    steps = [int(t) for t in timesteps]
    if any(not 0 < t <= T for t in steps) or any(a <= b for a, b in zip(steps, steps[1:])):
        raise ValueError(f"timesteps must decrease within 1..{T}, got {steps}")
    return steps


def origin_sampling(x0_model: X0Model, x: torch.Tensor, y: torch.Tensor, T: int, timesteps: Sequence[int], *,
                    progress: Callable[[float], None] | None = None,
                    callback: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Origin sampling: ``x0_hat = S(x_t, t)``, ``x_s = D(x0_hat, s) = (1 - s/T) x0_hat + (s/T) y``, ending at s = 0.

    ``x`` is the state at ``timesteps[0]`` (``y`` itself when that is T); ``callback(i, t, x_t, x0_hat)`` is called
    before each move.  Returns x_0 (= the last x0_hat).
    """
    steps = _check_steps(timesteps, T)
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else 0
        x0 = x0_model(x, t)
        if callback is not None:
            callback(i, t, x, x0)
        x = interpolate(x0, y, s, T)
        if progress is not None:
            progress((i + 1) / len(steps))
    return x


def improved_sampling(x0_model: X0Model, x: torch.Tensor, y: torch.Tensor, T: int, timesteps: Sequence[int], *,
                      progress: Callable[[float], None] | None = None,
                      callback: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None
                      ) -> torch.Tensor:
    """Improved sampling (cold diffusion Algorithm 2): ``x_s = x_t - D(x0_hat, t) + D(x0_hat, s)``, which for the
    linear D is ``x_t + ((t - s)/T) (x0_hat - y)`` (``(x0_hat - y)/T`` per unit step).  Same arguments as
    :func:`origin_sampling`."""
    steps = _check_steps(timesteps, T)
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else 0
        x0 = x0_model(x, t)
        if callback is not None:
            callback(i, t, x, x0)
        x = x + ((t - s) / T) * (x0 - y)
        if progress is not None:
            progress((i + 1) / len(steps))
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"improved": improved_sampling, "origin": origin_sampling}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise DiffDenoiseError(f"unknown realdiff sampler {name!r}; valid: {', '.join(SAMPLERS)}") from None


def check_options(steps: int | None, sampler: str, samples: int) -> None:
    """Raise a DiffDenoiseError for a bad ``steps`` / ``sampler`` / ``samples`` option."""
    get_sampler(sampler)
    if steps is not None and (isinstance(steps, bool) or int(steps) < 1):
        raise DiffDenoiseError(f"realdiff: steps must be >= 1, got {steps}")
    if isinstance(samples, bool) or int(samples) < 1:
        raise DiffDenoiseError(f"realdiff: samples must be >= 1, got {samples}")


def _check_output(output: str) -> None:
    if output not in ("residual", "x0"):
        raise DiffDenoiseError(f"realdiff: unknown output {output!r}; valid: residual, x0")


def charbonnier(x_hat: torch.Tensor, x: torch.Tensor, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """``mean sqrt((x_hat - x)^2 + eps)`` in float32 (Charbonnier et al. 1994; the paper's training loss)."""
    return ((x_hat.float() - x.float()).square() + eps).sqrt().mean()


class RealDiffTask:
    """Training task ``realdiff`` (see the module docstring).

    Args:
        T: number of interpolation steps; ``t ~ U{1..T}`` per image, the net sees ``t / T``.
        noise: synthetic noise for rows from clean-only sources: a spec, a list of specs (equal weights) or of
            ``[spec, weight]`` pairs, one model drawn per image (the format of the ``denoise`` task).  Rows from a
            paired source (PolyU) use their real noisy partner.
        condition_on_y: also feed ``y`` as condition channels (off in the paper; see the module docstring).
        output: ``"residual"`` (S = x_t + UNet) or ``"x0"`` (S = UNet).
        eps: the Charbonnier constant under the square root.
        quantize: synthetic ``y`` clipped to [0, 1] and rounded to 8 bits, like the real inputs (DenoiseTask).
    """

    def __init__(self, T: int = 20, noise: str | Sequence[Any] | None = None, condition_on_y: bool = False,
                 output: Output = "residual", eps: float = CHARBONNIER_EPS, quantize: bool = False):
        from ..train.tasks import DenoiseTask        # its noise mixture (one model drawn per image) is reused as is
        if int(T) < 1:
            raise DiffDenoiseError(f"realdiff: T must be >= 1, got {T}")
        _check_output(output)
        self.T, self.condition_on_y, self.output, self.eps = int(T), bool(condition_on_y), output, float(eps)
        self.corrupter = DenoiseTask(noise=DEFAULT_NOISE if noise is None else noise, quantize=quantize)

    def net_kwargs_defaults(self, cfg: Any) -> dict[str, Any]:
        c = 1 if cfg.color == "gray" else 3
        return {"in_channels": c, "out_channels": c, "cond_channels": c if self.condition_on_y else 0}

    def noisy(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
        """``y`` for every row: the real partner on paired rows, a draw of the noise mixture on the others."""
        x = batch["x"]
        if "y" not in batch:
            return self.corrupter.corrupt(x, generator)
        paired = batch.get("paired")
        if paired is None or bool(paired.all()):
            return batch["y"]
        y = batch["y"].clone()
        rows = (~paired).nonzero().squeeze(1)
        y[rows] = self.corrupter.corrupt(x[rows], generator)
        return y

    def predict(self, net: nn.Module, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``S(x_t, t)`` for integer steps ``t`` (N,)."""
        out = net(x_t, t.to(torch.float32) / self.T, cond=y if self.condition_on_y else None).float()
        return x_t.float() + out if self.output == "residual" else out

    def loss(self, net: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> torch.Tensor:
        x0 = batch["x"]
        y = self.noisy(batch, generator)
        t = draw_steps(x0.shape[0], 1, self.T, generator, x0.device)
        x_t = interpolate(x0, y, t, self.T)
        return charbonnier(self.predict(net, x_t, t, y), x0, self.eps)

    def method_card(self) -> dict[str, Any]:
        return {"name": "realdiff", "T": self.T, "prediction": "x0", "output": self.output,
                "condition_on_y": self.condition_on_y, "loss": "charbonnier", "eps": self.eps,
                "noise": [[s, w] for s, w in zip(self.corrupter.specs, self.corrupter.weights)],
                "quantize": self.corrupter.quantize, "image_range": "[0, 1]", "time_input": "t / T", "blind": True}


def local_noise_std(residual: torch.Tensor, size: int = 7) -> torch.Tensor:
    """sqrt of the ``size`` x ``size`` box mean of ``residual^2`` per channel (borders: mean over the window part
    inside the image)."""
    from ..noise import local_mean
    return local_mean(residual.square(), size).sqrt()


class RealDiff:
    """``method(y, sigma=None, *, generator=None, progress=None) -> x_hat`` over one trained realdiff UNet.

    ``sigma`` is ignored (blind).  ``steps``: how many of the T steps to visit (None: all T; 1: one forward).
    ``samples``, ``jitter``: the stochastic restorations of the module docstring; ``last_uncertainty`` holds the
    per-pixel std of the last call (None when ``samples`` = 1).  ``precision``: ``"auto"`` (bf16 autocast on CUDA),
    ``"fp32"`` or ``"bf16"``.  Input of another channel count than the net's: gray on a colour net is replicated
    and averaged back, colour on a gray net runs channel by channel.
    """

    def __init__(self, net: nn.Module, T: int, *, condition_on_y: bool = False, output: Output = "residual",
                 steps: int | None = None, sampler: Sampler = "improved", samples: int = 1, jitter: float = JITTER,
                 precision: Literal["auto", "fp32", "bf16"] = "auto"):
        check_options(steps, sampler, samples)
        _check_output(output)
        self.net, self.T = net.eval(), int(T)
        self.condition_on_y, self.output = bool(condition_on_y), output
        self.steps, self.sampler, self.samples = steps, sampler, int(samples)
        self.jitter, self.precision = float(jitter), precision
        self.last_uncertainty: torch.Tensor | None = None

    @classmethod
    def from_card(cls, net: nn.Module, card: dict[str, Any], **options: Any) -> "RealDiff":
        method = card.get("method", card)
        return cls(net, int(method["T"]), condition_on_y=bool(method.get("condition_on_y", False)),
                   output=method.get("output", "residual"), **options)

    @classmethod
    def from_weights(cls, stem: str, device: str | torch.device = "cpu", **options: Any) -> "RealDiff":
        from ..train.checkpoint import load_net
        net, card = load_net(stem, device)
        if card.get("method", {}).get("name") != "realdiff":
            raise DiffDenoiseError(f"weights {stem} were not trained by the realdiff task")
        return cls.from_card(net, card, **options)

    @property
    def channels(self) -> int:
        return int(self.net.in_channels)

    @property
    def timesteps(self) -> list[int]:
        return spaced_steps(self.T, self.steps)

    def x0_model(self, y: torch.Tensor) -> X0Model:
        """``S(x_t, t)`` for an int step, in float32, under the chosen precision; ``y`` is the condition when the
        net takes one."""
        device = y.device
        autocast = device.type == "cuda" and self.precision in ("auto", "bf16")

        def model(x: torch.Tensor, t: int) -> torch.Tensor:
            time = torch.full((x.shape[0],), float(t) / self.T, device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = self.net(x, time, cond=y if self.condition_on_y else None).float()
            return x + out if self.output == "residual" else out
        return model

    def chain(self, y: torch.Tensor, progress: Callable[[float], None] | None = None) -> torch.Tensor:
        """The deterministic reverse chain from ``x_T = y`` (y already in the net's channel layout)."""
        return get_sampler(self.sampler)(self.x0_model(y), y, y, self.T, self.timesteps, progress=progress)

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        device = next(self.net.parameters()).device
        n = y.shape[0]
        y_in, back = match_channels(y.to(device, torch.float32), self.channels)
        rows = y_in.shape[0] // n
        if self.samples == 1:
            self.last_uncertainty = None
            return back(self.chain(y_in, progress)).to(y.device, torch.float32)

        k_total = self.samples
        total = 1 + k_total * len(self.timesteps)          # forwards, for progress
        x0_first = self.x0_model(y_in)(y_in, self.T)
        scale = self.jitter * local_noise_std(y_in - x0_first)
        if progress is not None:
            progress(1 / total)
        gens = per_image(generator, range(n), rows)
        mean = torch.zeros_like(y, dtype=torch.float32, device=device)
        m2 = torch.zeros_like(mean)
        for k in range(k_total):
            start = y_in + scale * randn_like(y_in, gens)

            def prog(f: float, k: int = k) -> None:
                if progress is not None:
                    progress((1 + (k + f) * len(self.timesteps)) / total)
            x = back(self.chain(start, prog))
            delta = x - mean                                  # Welford's running mean and sum of squares
            mean += delta / (k + 1)
            m2 += delta * (x - mean)
        self.last_uncertainty = (m2 / (k_total - 1)).sqrt().to(y.device)
        return mean.to(y.device)


class RealDiffMethod:
    """The registry's ``realdiff``: picks ``realdiff-color`` or ``realdiff-gray`` by the input's channel count
    (the other one when only one is present), loading each on first use; otherwise a :class:`RealDiff`."""

    def __init__(self, stems: dict[int, str], device: str | torch.device, **options: Any):
        self.stems, self.device, self.options = stems, device, options
        self.loaded: dict[str, RealDiff] = {}
        self.last_uncertainty: torch.Tensor | None = None

    def model_for(self, channels: int) -> RealDiff:
        stem = self.stems.get(channels) or next(iter(self.stems.values()))
        if stem not in self.loaded:
            self.loaded[stem] = RealDiff.from_weights(stem, self.device, **self.options)
        return self.loaded[stem]

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        model = self.model_for(y.shape[1])
        x_hat = model(y, sigma, generator=generator, progress=progress)
        self.last_uncertainty = model.last_uncertainty
        return x_hat


def build(device: str | torch.device = "cpu", steps: int | None = None, sampler: Sampler = "improved",
          samples: int = 1, *, jitter: float = JITTER, precision: Literal["auto", "fp32", "bf16"] = "auto",
          net: nn.Module | None = None, card: dict[str, Any] | None = None) -> RealDiff | RealDiffMethod:
    """Registry builder of ``realdiff`` (blind: sigma is ignored).  An injected ``net`` (with its ``card``, or at
    least ``{"T": ...}``) gives a :class:`RealDiff` directly; otherwise ``weights/realdiff-color`` and/or
    ``weights/realdiff-gray``, chosen per call by channel count."""
    options = dict(steps=steps, sampler=sampler, samples=samples, jitter=jitter, precision=precision)
    check_options(steps, sampler, samples)
    if net is not None:
        if card is None:
            raise DiffDenoiseError("an injected realdiff net needs its card (at least {'T': ...})")
        return RealDiff.from_card(net.to(device), card, **options)
    from ..train.checkpoint import weights_dir
    folder = weights_dir()
    stems = {c: stem for c, stem in ((3, STEM_COLOR), (1, STEM_GRAY)) if (folder / f"{stem}.json").exists()}
    if not stems:
        raise DiffDenoiseError(f"realdiff needs trained weights: neither {folder / STEM_COLOR}.safetensors nor "
                               f"{folder / STEM_GRAY}.safetensors exists (train configs/realdiff-color.json or "
                               f"configs/realdiff-gray.json)")
    return RealDiffMethod(stems, device, **options)


def uncertainty_heatmap(std: torch.Tensor | np.ndarray, vmax: float | None = None) -> np.ndarray:
    """A per-pixel std map as an H x W x 3 float32 colour image in [0, 1] (OpenCV's inferno colour map, the one the
    web app's maps use).

    ``std``: H x W, C x H x W or 1 x C x H x W (channels combined by their RMS).  ``vmax``: the std shown at the top
    of the ramp, on the [0, 1] scale; None = the 99th percentile of the map (so a few outliers do not wash it out).
    """
    a = std.detach().float().cpu().numpy() if torch.is_tensor(std) else np.asarray(std, dtype=np.float64)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise DiffDenoiseError(f"uncertainty_heatmap takes one image, got a batch of {a.shape[0]}")
        a = a[0]
    if a.ndim == 3:
        a = np.sqrt(np.mean(np.square(a, dtype=np.float64), axis=0))
    if a.ndim != 2:
        raise DiffDenoiseError(f"uncertainty_heatmap takes an H x W or C x H x W map, got shape {a.shape}")
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0)
    top = float(np.percentile(a, 99)) if vmax is None else float(vmax)
    if not math.isfinite(top) or top <= 0:
        top = float(a.max()) if a.max() > 0 else 1.0
    import cv2
    levels = np.rint(np.clip(a / top, 0.0, 1.0) * 255.0).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)
    return np.ascontiguousarray(bgr[:, :, ::-1], dtype=np.float32) / 255.0
