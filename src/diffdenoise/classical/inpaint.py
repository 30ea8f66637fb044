"""Classical inpainting: fill the missing pixels of an image from the observed ones.

The baselines for missing-pixel imputation (SPEC 3.4, ``missing:p``), beside the classical denoisers.  Plain
functions ``f(y, mask) -> x_hat``:

- ``y``: float H x W x C array (C = 1 or 3; an H x W array is taken as C = 1); the values at missing pixels are
  ignored;
- ``mask``: H x W array, True (or nonzero) where the pixel is **observed**, the library's mask convention
  (``noise.Missing`` draws it that way);
- returns float32 of y's shape, not clipped, with every observed pixel equal to ``y`` bit for bit.

Methods:

- :func:`telea`: Telea 2004, "An image inpainting technique based on the fast marching method" (J. Graphics
  Tools 9(1)): pixels are filled in fast-marching order from the hole boundary inward, each as a weighted first-order
  extrapolation of the known pixels within ``radius``.  ``cv2.inpaint(..., cv2.INPAINT_TELEA)``.
- :func:`navier_stokes`: Bertalmio, Bertozzi & Sapiro 2001, "Navier-Stokes, fluid dynamics, and image and video
  inpainting" (CVPR): isophotes are continued into the hole by transporting the image smoothness along them.
  ``cv2.inpaint(..., cv2.INPAINT_NS)``.
- :func:`biharmonic`: the missing pixels solve the biharmonic equation Laplacian^2 u = 0 with the observed pixels as
  boundary values (Damelin & Hoang 2018, "On surface completion and image inpainting by biharmonic functions:
  numerical aspects", Int. J. Math. Math. Sci.).  ``skimage.restoration.inpaint_biharmonic``.

Settings (``benchmarks/inpaint_settings.py``, on ``bsds500/train`` images, never on a test set):

- OpenCV takes 32-bit float single-channel planes, so both OpenCV methods run per channel on float32 (16-bit
  inputs keep their precision).  Its Telea code is not scale-invariant on float input: planes in [0, 1] come back
  wrong (about 9 dB at 50 % missing), so planes are passed in 16-bit units (x 65535), where Telea beats OpenCV's
  8-bit path by 0.4 dB (Navier-Stokes gives the same result at any scale).
- ``radius`` 2 px: the best of {1, 2, 3, 5, 8} for both OpenCV methods at 50 % and 80 % missing.
- scikit-image solves one sparse system per connected hole region; from about 60 % missing the holes join into
  one region the size of the image and the direct solve takes minutes for a 768 x 512 image, so
  :func:`biharmonic` solves overlapping blocks (``block`` x ``block`` cores, each with a ``halo`` of context whose
  result is discarded).  The biharmonic solution is global in principle, but with observed pixels scattered
  through the halo the far field hardly matters: on the first ``bsds500/train`` image at 80 % missing, 64-px
  blocks with an 8-px halo give 27.616 dB against 27.613 dB for the whole-image solve (the two outputs agree to
  63.7 dB PSNR) in 4.8 s instead of 34.1 s (``benchmarks/results/cpu/inpaint_settings.json``).

OpenCV and scikit-image are imported inside the functions (``import diffdenoise`` needs torch and numpy only).
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch

from ..errors import DiffDenoiseError

Inpaint = Callable[[np.ndarray, np.ndarray], np.ndarray]

OPENCV_SCALE = 65535.0  # float planes go to OpenCV in 16-bit units (see the module docstring)
RADIUS = 2              # OpenCV neighbourhood radius, pixels (see the module docstring)
BLOCK, HALO = 64, 8    # biharmonic block core and context, pixels (see the module docstring)


def _inpaint_fn(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Shared handling: H x W (x C) float and H x W mask in; observed pixels copied back exactly; y's shape out."""
    @functools.wraps(fn)
    def wrapper(y: np.ndarray, mask: np.ndarray, **kwargs) -> np.ndarray:
        y = np.asarray(y)
        shape = y.shape
        img = np.ascontiguousarray(y[:, :, None] if y.ndim == 2 else y, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] not in (1, 3):
            raise ValueError(f"expected an H x W, H x W x 1 or H x W x 3 array, got shape {shape}")
        observed = np.asarray(mask)
        if observed.ndim == 3 and observed.shape[2] == 1:
            observed = observed[:, :, 0]
        if observed.shape != img.shape[:2]:
            raise ValueError(f"mask of shape {observed.shape} does not fit an image of shape {shape}")
        observed = observed.astype(bool)
        if observed.all():
            return img.reshape(shape).copy()
        if not observed.any():
            raise DiffDenoiseError("every pixel is marked missing: there is nothing to inpaint from")
        holed = np.where(observed[:, :, None], img, np.float32(0))    # never read what lies in the holes
        out = np.asarray(fn(holed, observed, **kwargs), dtype=np.float32).reshape(img.shape)
        out = np.where(observed[:, :, None], img, out)
        return np.ascontiguousarray(out, dtype=np.float32).reshape(shape)
    return wrapper


def _opencv(img: np.ndarray, observed: np.ndarray, radius: float, flag_name: str) -> np.ndarray:
    import cv2
    holes = (~observed).astype(np.uint8)                      # OpenCV's mask: nonzero = to be filled
    flag = getattr(cv2, flag_name)
    scaled = img * OPENCV_SCALE
    planes = [cv2.inpaint(np.ascontiguousarray(scaled[:, :, k]), holes, float(radius), flag)
              for k in range(img.shape[2])]
    return np.stack(planes, axis=2) / OPENCV_SCALE


@_inpaint_fn
def telea(y: np.ndarray, mask: np.ndarray, radius: float = RADIUS) -> np.ndarray:
    """Telea's fast-marching inpainting (OpenCV), neighbourhood ``radius`` pixels."""
    return _opencv(y, mask, radius, "INPAINT_TELEA")


@_inpaint_fn
def navier_stokes(y: np.ndarray, mask: np.ndarray, radius: float = RADIUS) -> np.ndarray:
    """Navier-Stokes inpainting of Bertalmio et al. (OpenCV), neighbourhood ``radius`` pixels."""
    return _opencv(y, mask, radius, "INPAINT_NS")


def _blocks(length: int, block: int) -> list[tuple[int, int]]:
    return [(s, min(s + block, length)) for s in range(0, length, block)]


@_inpaint_fn
def biharmonic(y: np.ndarray, mask: np.ndarray, block: int | None = BLOCK, halo: int = HALO) -> np.ndarray:
    """Biharmonic inpainting (scikit-image), solved on ``block``-pixel squares with ``halo`` pixels of context each;
    ``block=None`` (or 0) solves the whole image at once (exact, slow with large connected holes)."""
    from skimage.restoration import inpaint_biharmonic
    h, w, c = y.shape
    holes = ~mask
    if not block or (h <= block and w <= block):
        return inpaint_biharmonic(y, holes, channel_axis=-1)
    out = y.copy()
    for r0, r1 in _blocks(h, block):
        for c0, c1 in _blocks(w, block):
            if not holes[r0:r1, c0:c1].any():
                continue
            a0, a1, b0, b1 = max(0, r0 - halo), min(h, r1 + halo), max(0, c0 - halo), min(w, c1 + halo)
            if not mask[a0:a1, b0:b1].any():
                raise DiffDenoiseError(f"a {a1 - a0}x{b1 - b0} block has no observed pixel; use a larger block "
                                       "or block=None")
            part = inpaint_biharmonic(y[a0:a1, b0:b1], holes[a0:a1, b0:b1], channel_axis=-1)
            out[r0:r1, c0:c1] = part[r0 - a0:r1 - a0, c0 - b0:c1 - b0]
    return out


INPAINTERS: dict[str, Inpaint] = {"telea": telea, "ns": navier_stokes, "biharmonic": biharmonic}


class ClassicalInpainter:
    """Adapts ``f(y: H x W x C ndarray, mask: H x W) -> x_hat`` to the batched imputer call
    ``imputer(y, mask, *, generator=None, progress=None) -> x_hat`` (``diffdenoise.impute``).

    ``y``: N x C x H x W float tensor; ``mask``: N x 1 x H x W or N x C x H x W, values > 0.5 observed.  A pixel is
    filled where any channel is missing; every observed value of ``mask`` is returned unchanged.  Images are
    inpainted one at a time on the CPU; the result is float32 on y's device.  Deterministic: ``generator`` is unused.
    """

    def __init__(self, fn: Callable[..., np.ndarray], **options: float | int | None):
        self.fn, self.options = fn, options

    def __repr__(self) -> str:
        return f"ClassicalInpainter({self.fn.__name__})"

    def __call__(self, y: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] not in (1, 3):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise DiffDenoiseError(f"expected an N x C x H x W tensor with C = 1 or 3, got {shape}")
        n, c, h, w = y.shape
        if mask.ndim != 4 or mask.shape[0] != n or mask.shape[1] not in (1, c) or tuple(mask.shape[2:]) != (h, w):
            raise DiffDenoiseError(f"mask of shape {tuple(mask.shape)} does not fit images of shape {tuple(y.shape)}"
                                   f"; expected N x 1 x H x W or N x C x H x W")
        observed = mask.detach().to("cpu") > 0.5
        out = []
        for i in range(n):
            img = y[i].detach().to("cpu", torch.float32).permute(1, 2, 0).numpy()
            out.append(self.fn(img, observed[i].all(dim=0).numpy(), **self.options))
            if progress is not None:
                progress((i + 1) / n)
        x_hat = torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy()).to(y.device)
        return torch.where(observed.to(y.device), y.float(), x_hat)


def telea_method(device: str | torch.device = "cpu", radius: float = RADIUS) -> ClassicalInpainter:
    """Build the ``telea`` imputer (CPU whatever ``device``; the output follows y's device)."""
    return ClassicalInpainter(telea, radius=radius)


def ns_method(device: str | torch.device = "cpu", radius: float = RADIUS) -> ClassicalInpainter:
    """Build the ``ns`` (Navier-Stokes) imputer (CPU whatever ``device``; the output follows y's device)."""
    return ClassicalInpainter(navier_stokes, radius=radius)


def biharmonic_method(device: str | torch.device = "cpu", block: int | None = BLOCK, halo: int = HALO
                      ) -> ClassicalInpainter:
    """Build the ``biharmonic`` imputer (CPU whatever ``device``; the output follows y's device)."""
    return ClassicalInpainter(biharmonic, block=block, halo=halo)
