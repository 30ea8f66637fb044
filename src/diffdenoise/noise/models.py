"""The synthetic degradations of SPEC section 2 (all but ``camera``, which has its own module).

Units: parameters are stored on the [0, 1] scale; the spec string speaks the units named in each docstring
(``unit=255`` marks a std given in 8-bit units in specs).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DiffDenoiseError
from .base import Noisy, NoiseModel, Range, _Rng, flag, number


@dataclass(frozen=True)
class Gaussian(NoiseModel):
    """Additive white Gaussian noise ``y = x + sigma n``, ``n ~ N(0, I)`` (the protocol of SPEC section 1).

    Spec: ``gaussian:SIGMA`` with SIGMA in 8-bit units (``gaussian:25`` is sigma = 25/255); ``gaussian:0..55``
    draws sigma per image.
    """
    name = "gaussian"
    example = "gaussian:25"
    sigma: float | Range = number(unit=255.0, lo=0.0)

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        s = self._expected_map(x)
        return Noisy(x + s * rng.randn(*x.shape).to(x.dtype), s)

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.sigma)


@dataclass(frozen=True)
class PoissonGaussian(NoiseModel):
    """Heteroscedastic Poissonian-Gaussian noise (Foi et al. 2008, Eq. 1-3): ``var(y | x) = a x + b^2``.

    Default: the Gaussian approximation ``y = x + sqrt(a x + b^2) n``.  ``exact=True``: true shot noise,
    ``y = a Poisson(x / a) + b n``, same mean and variance (Foi's Eq. 2 with quantum efficiency ``1/a``).
    Spec: ``poisson_gaussian:A,B[,exact=true]`` with A on the [0, 1] scale (variance per unit intensity, e.g.
    0.01) and B, the signal-independent std, in 8-bit units.  ``x`` is clipped at 0 inside the variance.
    """
    name = "poisson_gaussian"
    example = "poisson_gaussian:0.01,2"
    signal_dependent = True
    a: float | Range = number(lo=0.0)
    b: float | Range = number(unit=255.0, lo=0.0)
    exact: bool = flag(False)

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        s = self._expected_map(x)
        if not self.exact:
            return Noisy(x + s * rng.randn(*x.shape).to(x.dtype), s)
        if self.a > 0:
            shot = self.a * rng.poisson(x.clamp(min=0) / self.a).to(x.dtype)
        else:
            shot = x.clamp(min=0)
        return Noisy(shot + self.b * rng.randn(*x.shape).to(x.dtype), s)

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(self.a * x.clamp(min=0) + self.b ** 2)


def smooth_random_field(h: int, w: int, rng: _Rng) -> torch.Tensor:
    """A smooth random field on 1 x 1 x H x W, rescaled to span exactly [0, 1].

    Sum of 4 isotropic Gaussian blobs (uniform centres, widths 8-40 % of the longer side, amplitudes U(0, 1)) and a
    low-frequency normal field on a 2x2 to 4x4 grid upsampled bicubically, weight U(0, 0.5): the kind of slowly
    varying noise maps SVNR (Pearl et al. 2023, Sec. 5) trains on.
    """
    scale = float(max(h, w))
    yy = (torch.arange(h, device=rng.device, dtype=torch.float32) / scale)[:, None]
    xx = (torch.arange(w, device=rng.device, dtype=torch.float32) / scale)[None, :]
    field = torch.zeros(h, w, device=rng.device)
    for _ in range(4):
        cy, cx = rng.uniform(0.0, h / scale), rng.uniform(0.0, w / scale)
        width, amp = rng.uniform(0.08, 0.4), rng.uniform(0.0, 1.0)
        field += amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
    grid = 2 + min(int(rng.uniform(0.0, 3.0)), 2)
    low = F.interpolate(rng.randn(1, 1, grid, grid), size=(h, w), mode="bicubic", align_corners=True)
    field = field[None, None] + rng.uniform(0.0, 0.5) * low
    span = field.max() - field.min()
    if span <= 1e-12:
        return torch.full_like(field, 0.5)
    return (field - field.min()) / span


@dataclass(frozen=True)
class Spatial(NoiseModel):
    """Spatially variant Gaussian noise ``y = x + s n`` with a smooth random std map ``s`` spanning
    ``[sigma_min, sigma_max]`` (SVNR, Pearl et al. 2023; see :func:`smooth_random_field`).

    The map is one channel, shared by all channels.  It is random per image, so :meth:`sigma_map` raises; ``draw``
    returns the exact map.  Spec: ``spatial:MIN,MAX`` in 8-bit units (``spatial:5,50``).
    """
    name = "spatial"
    example = "spatial:5,50"
    always_random_map = True
    sigma_min: float | Range = number(unit=255.0, lo=0.0)
    sigma_max: float | Range = number(unit=255.0, lo=0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.sigma_min, float) and isinstance(self.sigma_max, float) and self.sigma_min > self.sigma_max:
            raise DiffDenoiseError(f"spatial: sigma_min ({self.sigma_min * 255:g}) must not exceed sigma_max "
                                   f"({self.sigma_max * 255:g})")

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        lo, hi = sorted((self.sigma_min, self.sigma_max))   # ranges may resolve in either order
        field = smooth_random_field(x.shape[2], x.shape[3], rng).to(x.dtype)
        s = (lo + (hi - lo) * field).expand_as(x).contiguous()
        return Noisy(x + s * rng.randn(*x.shape).to(x.dtype), s)


@dataclass(frozen=True)
class Impulse(NoiseModel):
    """Salt-and-pepper noise: each pixel (all channels together) is replaced with probability ``p`` by 0 or 1,
    equally likely.

    ``sigma_map`` is the std of the corruption ``e = y - x`` under this model,
    ``sqrt(p/2 ((1-x)^2 + x^2) - (p/2)^2 (1 - 2x)^2)`` (not Gaussian: a summary for methods that want a map).
    ``draw`` also returns ``mask`` (0 at replaced pixels).  Spec: ``impulse:P`` with P a fraction in [0, 1].
    """
    name = "impulse"
    example = "impulse:0.1"
    p: float | Range = number(lo=0.0, hi=1.0)

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        n, _, h, w = x.shape
        hit = rng.rand(n, 1, h, w) < self.p
        salt = (rng.rand(n, 1, h, w) < 0.5).to(x.dtype)
        y = torch.where(hit, salt, x)
        return Noisy(y, self._expected_map(x), (~hit).to(x.dtype))

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        second = 0.5 * p * ((1 - x) ** 2 + x ** 2)
        mean = 0.5 * p * (1 - 2 * x)
        return torch.sqrt((second - mean ** 2).clamp(min=0))


@dataclass(frozen=True)
class Speckle(NoiseModel):
    """Multiplicative Gaussian speckle ``y = x (1 + sigma n)``, so the std is ``sigma |x|``.

    Spec: ``speckle:SIGMA`` with SIGMA dimensionless (relative std, e.g. ``speckle:0.2``), not in 8-bit units.
    """
    name = "speckle"
    example = "speckle:0.2"
    sigma: float | Range = number(lo=0.0)

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        return Noisy(x * (1 + self.sigma * rng.randn(*x.shape).to(x.dtype)), self._expected_map(x))

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigma * x.abs()


@dataclass(frozen=True)
class Missing(NoiseModel):
    """Missing pixels for imputation (SPEC 3.4): each pixel (all channels together) is dropped with probability
    ``p``; ``y = x * mask`` (missing pixels are 0) and ``draw`` returns ``mask`` (1 = observed).

    The map is 0 where observed and 1 (the whole [0, 1] range: nothing known) where missing.  It depends on the
    random mask, so :meth:`sigma_map` raises.  Spec: ``missing:P`` with P a fraction in [0, 1].
    """
    name = "missing"
    example = "missing:0.5"
    always_random_map = True
    p: float | Range = number(lo=0.0, hi=1.0)

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        n, c, h, w = x.shape
        mask = (rng.rand(n, 1, h, w) >= self.p).to(x.dtype)
        return Noisy(x * mask, (1 - mask).expand(n, c, h, w).contiguous(), mask)
