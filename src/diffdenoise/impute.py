"""Missing-pixel imputation: every method the ``impute`` command and ``benchmarks/impute_table.py`` can name.

The counterpart of the denoiser registry (``registry.METHODS``) for SPEC 3.4's ``missing:p`` degradation.  An
imputer follows one call::

    imputer(y, mask, *, generator=None, progress=None) -> x_hat

``y``: float32 N x C x H x W in [0, 1] (C = 1 or 3); its values at missing pixels are ignored.  ``mask``:
N x 1 x H x W (or N x C x H x W), **1 = observed, 0 = missing** (values > 0.5 count as observed), the convention
of ``noise.Missing``.  ``x_hat`` has y's shape and holds every observed value of ``y`` unchanged, bit for bit.

Methods: ``cddpm`` (the conditional DDPM of :mod:`diffdenoise.diffusion.cddpm` on ``[y m, m]``, weights
``cddpm-missing``) and the classical inpainting baselines of :mod:`diffdenoise.classical.inpaint` (``telea``,
``ns``, ``biharmonic``), which need no weights.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

import torch

from .errors import DiffDenoiseError
from .registry import MethodSpec, resolve, weights_present


class Imputer(Protocol):
    def __call__(self, y: torch.Tensor, mask: torch.Tensor, *, generator: Any = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor: ...


IMPUTERS: dict[str, MethodSpec] = {
    "cddpm": MethodSpec("cddpm", "conditional DDPM on [y m, m] (SPEC 3.4), DDIM from noise", "diffusion",
                        "diffdenoise.diffusion.cddpm:build_impute", weights=("cddpm-missing",),
                        options=("steps", "sampler", "samples"), stochastic=True),
    "telea": MethodSpec("telea", "fast-marching inpainting (Telea 2004; OpenCV)", "classical",
                        "diffdenoise.classical.inpaint:telea_method", options=("radius",)),
    "ns": MethodSpec("ns", "Navier-Stokes inpainting (Bertalmio et al. 2001; OpenCV)", "classical",
                     "diffdenoise.classical.inpaint:ns_method", options=("radius",)),
    "biharmonic": MethodSpec("biharmonic", "biharmonic inpainting (Damelin & Hoang 2018; scikit-image)", "classical",
                             "diffdenoise.classical.inpaint:biharmonic_method", options=("block", "halo")),
}
CLASSICAL = tuple(name for name, spec in IMPUTERS.items() if spec.family == "classical")


def get_imputer_spec(name: str) -> MethodSpec:
    try:
        return IMPUTERS[name]
    except KeyError:
        raise DiffDenoiseError(f"unknown imputation method {name!r}; valid: {', '.join(IMPUTERS)}") from None


def build_imputer(name: str, device: str | torch.device = "cpu", tile: int | str | None = "auto",
                  **options: Any) -> Imputer:
    """Build the named imputer; unknown options raise with the valid ones, absent weights with the classical
    alternatives.  ``tile``: the diffusion imputer runs over overlapping tiles of this side (``"auto"``: from
    memory; None or 0: whole image), the mask cut with the tiles (``diffdenoise.tiling``)."""
    spec = get_imputer_spec(name)
    bad = sorted(k for k in options if k not in spec.options)
    if bad:
        valid = ", ".join(spec.options) or "none"
        raise DiffDenoiseError(f"imputation method {name!r} does not take option(s) {', '.join(bad)}; valid: {valid}")
    if not weights_present(spec):
        from .train.checkpoint import weights_dir
        raise DiffDenoiseError(f"imputation method {name!r} needs the weights {spec.weights[0]!r}, not found in "
                               f"{weights_dir()}; use a classical method instead (no weights needed): "
                               f"--method {', '.join(CLASSICAL[:-1])} or {CLASSICAL[-1]}")
    method = resolve(spec.target)(device=device, **options)
    if spec.family == "classical" or not tile:
        return method
    return TiledImputer(method, tile)


class TiledImputer:
    """An imputer run over overlapping tiles by :class:`diffdenoise.tiling.Tiled` (the mask is cut with the tiles
    as a per-pixel map would be); observed pixels are put back after blending, so they stay exact."""

    def __init__(self, method: Imputer, tile: int | str = "auto", overlap: int = 32):
        from .tiling import Tiled
        self.method = method
        self.tiled = Tiled(method, tile, overlap, blind="pass")

    def __repr__(self) -> str:
        return f"TiledImputer({self.method!r}, tile={self.tiled.tile!r})"

    def __call__(self, y: torch.Tensor, mask: torch.Tensor, *, generator: Any = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        if mask.ndim != 4 or mask.shape[0] != y.shape[0] or tuple(mask.shape[2:]) != tuple(y.shape[2:]):
            raise DiffDenoiseError(f"mask of shape {tuple(mask.shape)} does not fit images of shape {tuple(y.shape)}")
        x_hat = self.tiled(y, mask.float(), generator=generator, progress=progress)
        return torch.where((mask > 0.5).to(y.device), y.float(), x_hat)
