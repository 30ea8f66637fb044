"""Geometric self-ensemble: denoise the image under n of the 8 flips/rotations of the square, undo each, average.

A trained denoiser's errors differ between orientations of the same image while the signal does not, so the mean
of the n restorations has lower error (EDSR, Lim et al. 2017, "x8"; DRUNet reports it too).  It costs n network
passes and works with any method of the common call; ``ensemble=1`` is the plain method.  The first four elements
keep the image's shape (identity, flip, rotate 180, both), the rest transpose it.
"""
from __future__ import annotations

from typing import Callable

import torch

from .errors import DiffDenoiseError
from .registry import Wrapper

# (quarter turns, flip of the last axis) in the order they are used
ELEMENTS = ((0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True))
SIZES = (1, 2, 4, 8)


def check_size(n: object) -> None:
    """Raise a DiffDenoiseError unless ``n`` is a valid ensemble size (before anything slow is built)."""
    if n not in SIZES:
        raise DiffDenoiseError(f"ensemble must be one of {', '.join(map(str, SIZES))}, got {n!r}")


def forward(x: torch.Tensor, element: tuple[int, bool]) -> torch.Tensor:
    k, flip = element
    x = x.flip(-1) if flip else x
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def inverse(x: torch.Tensor, element: tuple[int, bool]) -> torch.Tensor:
    k, flip = element
    x = torch.rot90(x, -k, dims=(-2, -1)) if k else x
    return x.flip(-1) if flip else x


class SelfEnsemble(Wrapper):
    """``method`` averaged over ``n`` dihedral transforms (module docstring).  A per-pixel ``sigma`` map is
    transformed with the image; ``last_uncertainty`` of a sampling method comes back as the root mean of the
    members' variances, in the input's orientation."""

    def __init__(self, method: Callable[..., torch.Tensor], n: int):
        check_size(n)
        self.method, self.n = method, int(n)
        self.last_uncertainty: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"SelfEnsemble({self.method!r}, n={self.n})"

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None, progress: Callable[[float], None] | None = None
                 ) -> torch.Tensor:
        total: torch.Tensor | None = None
        var: torch.Tensor | None = None
        for i, e in enumerate(ELEMENTS[:self.n]):
            s = forward(sigma, e) if isinstance(sigma, torch.Tensor) and sigma.dim() == 4 else sigma
            step = None if progress is None else (lambda f, i=i: progress((i + f) / self.n))
            out = inverse(self.method(forward(y, e), s, generator=generator, progress=step), e)
            total = out if total is None else total + out
            std = getattr(self.method, "last_uncertainty", None)
            if isinstance(std, torch.Tensor):
                v = inverse(std, e).square()
                var = v if var is None else var + v
        self.last_uncertainty = None if var is None else (var / self.n).sqrt()
        assert total is not None
        return total / self.n
