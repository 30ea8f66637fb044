"""Denoiser wrappers for the classical filters: the builders ``registry.METHODS`` names.

Every builder returns a :class:`ClassicalDenoiser` around one function of :mod:`.filters`, following the denoiser
call of DESIGN.md: ``method(y, sigma=None, *, generator=None, progress=None) -> x_hat``.  The filters take one
global sigma per image, so

- ``sigma`` a number: used for every image of the batch;
- ``sigma`` a tensor map (N x 1 x H x W or N x C x H x W, a leading 1 broadcasts): each image uses the root mean
  square of its map, sqrt(mean s^2), the std of the map's average noise power;
- ``sigma`` None: each image's sigma is estimated by :func:`diffdenoise.estimate.estimate_sigma` (PCA by default).

Images are filtered one at a time on the CPU; the result is float32 on y's device, not clipped.  The filters are
deterministic, so ``generator`` is accepted and unused.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import DiffDenoiseError
from ..estimate import estimate_sigma
from . import filters
from .filters import ImageFilter


class ClassicalDenoiser:
    """Adapts ``f(y: H x W x C ndarray, sigma: float) -> x_hat`` to the batched tensor denoiser call."""

    def __init__(self, fn: ImageFilter, sigma_method: str = "pca"):
        self.fn = fn
        self.sigma_method = sigma_method      # estimator used when sigma is None

    def __repr__(self) -> str:
        return f"ClassicalDenoiser({self.fn.__name__})"

    def sigmas(self, y: torch.Tensor, sigma: float | torch.Tensor | None) -> list[float]:
        """One sigma per image of the batch (see the module docstring)."""
        n = y.shape[0]
        if sigma is None:
            values = [estimate_sigma(y[i:i + 1], self.sigma_method) for i in range(n)]
        elif isinstance(sigma, torch.Tensor) and sigma.ndim > 0:
            s = sigma.detach().to("cpu", torch.float64)
            if s.ndim == 4 and s.shape[0] in (1, n):
                rms = s.square().mean(dim=(1, 2, 3)).sqrt()
            elif s.ndim == 1 and s.shape[0] in (1, n):
                rms = s
            else:
                raise DiffDenoiseError(f"sigma map of shape {tuple(sigma.shape)} does not fit a batch of shape "
                                       f"{tuple(y.shape)}; expected N x 1 x H x W or N x C x H x W")
            values = rms.expand(n).tolist()
        else:
            values = [float(sigma)] * n
        for v in values:
            if not np.isfinite(v) or v < 0:
                raise DiffDenoiseError(f"sigma must be a finite number >= 0, got {v}")
        return values

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] not in (1, 3):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise DiffDenoiseError(f"expected an N x C x H x W tensor with C = 1 or 3, got {shape}")
        sigmas = self.sigmas(y, sigma)
        out = []
        for i, s in enumerate(sigmas):
            img = y[i].detach().to("cpu", torch.float32).permute(1, 2, 0).numpy()
            out.append(self.fn(img, s))
            if progress is not None:
                progress((i + 1) / len(sigmas))
        x_hat = torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())
        return x_hat.to(y.device)


def _builder(fn: ImageFilter, check: Callable[[], None] | None = None) -> Callable[..., ClassicalDenoiser]:
    def build(device: str | torch.device = "cpu") -> ClassicalDenoiser:
        if check is not None:
            check()
        return ClassicalDenoiser(fn)
    build.__name__ = f"{fn.__name__}_method"
    build.__doc__ = (f"Build the {fn.__name__!r} denoiser (runs on the CPU whatever ``device``; the output "
                     f"follows y's device).")
    return build


def _require_bm3d() -> None:
    try:
        import bm3d  # noqa: F401
    except ImportError:
        raise DiffDenoiseError(filters.BM3D_MISSING) from None


gaussian_method = _builder(filters.gaussian)
median_method = _builder(filters.median)
bilateral_method = _builder(filters.bilateral)
wavelet_method = _builder(filters.wavelet)
tv_method = _builder(filters.tv)
nlm_method = _builder(filters.nlm)
bm3d_method = _builder(filters.bm3d, check=_require_bm3d)
