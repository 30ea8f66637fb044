"""Transfer curves between display sRGB and linear light, shared by the camera model and by methods that model
noise in linear space (SVNR's Poisson-Gaussian, SPEC 3.6).

All functions take and return tensors of any shape.  The gamma curves are extended as odd functions
(``f(-v) = -f(v)``) so that unclipped noisy values below 0 stay finite and the pair stays invertible.
"""
from __future__ import annotations

from typing import Literal

import torch

Curve = Literal["srgb", "2.2"]
CURVES: tuple[str, ...] = ("srgb", "2.2")


def to_linear(x: torch.Tensor, curve: Curve = "srgb") -> torch.Tensor:
    """Display value -> linear light: the sRGB EOTF (IEC 61966-2-1, piecewise with a linear toe) or a pure
    power 2.2 (the approximation Brooks et al. 2019 use when unprocessing)."""
    a = x.abs()
    if curve == "srgb":
        lin = torch.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    elif curve == "2.2":
        lin = a ** 2.2
    else:
        raise ValueError(f"unknown curve {curve!r}; valid: {', '.join(CURVES)}")
    return torch.copysign(lin, x)


def from_linear(v: torch.Tensor, curve: Curve = "srgb") -> torch.Tensor:
    """Linear light -> display value; the inverse of :func:`to_linear`."""
    a = v.abs()
    if curve == "srgb":
        out = torch.where(a <= 0.0031308, a * 12.92, 1.055 * a.clamp(min=1e-12) ** (1 / 2.4) - 0.055)
    elif curve == "2.2":
        out = a.clamp(min=1e-12) ** (1 / 2.2)
    else:
        raise ValueError(f"unknown curve {curve!r}; valid: {', '.join(CURVES)}")
    return torch.copysign(out, v)


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """The global tone curve ``3x^2 - 2x^3`` Brooks et al. 2019 (Sec. 3.1) fit to camera pipelines; on [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_smoothstep(y: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of :func:`smoothstep` on [0, 1]: ``x = 1/2 - sin(asin(1 - 2y) / 3)``."""
    y = y.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)
