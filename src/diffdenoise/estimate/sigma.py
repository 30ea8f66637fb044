"""Global noise-level estimation: one std ``sigma`` (on the [0, 1] scale) for additive white Gaussian noise.

Three estimators (SPEC §4), each from its paper:

- ``"pca"`` — Chen, Zhu & Heng 2015, "An Efficient Statistical Method for Image Noise Level Estimation" (ICCV).
  Natural image patches lie near a low-dimensional subspace, so the smallest eigenvalues of the patch covariance
  carry noise only and all equal sigma^2; the signal adds a few large eigenvalues, which pull the mean above the
  median.  Dropping the largest eigenvalue one at a time, the first (largest) set of smallest eigenvalues whose
  mean no longer exceeds its median is taken as the noise set, and sigma^2 is its mean.
- ``"mad"`` — Donoho & Johnstone 1994: sigma = median(|HH1|) / 0.6745, HH1 the finest diagonal subband of an
  orthonormal wavelet transform (Daubechies db2 here), where a piecewise-smooth image leaves few large coefficients.
- ``"immerkaer"`` — Immerkær 1996, "Fast Noise Variance Estimation" (CVIU 64(2)):
  sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |y * N| with the mask N = [[1,-2,1],[-2,4,-2],[1,-2,1]], the difference
  of two Laplacians, which cancels locally linear signal.

Colour: ``"pca"`` takes each patch across all channels jointly (5 x 5 x 3 values; gray 7 x 7): the signal is strongly
correlated between channels and the noise is not, so far more eigenvalues are noise-only (on Kodak24 this cuts the
error at sigma = 5/255 from ~40% to ~1%; see ``benchmarks/estimate_noise.py``).  ``"mad"`` and ``"immerkaer"``
estimate each channel on its own and combine them as the root mean square, sqrt(mean_c sigma_c^2), i.e. the noise
power averaged over channels (the one number that equals each channel's sigma when they agree).

The default is ``"pca"``: the most accurate on Kodak24 by a wide margin (``benchmarks/estimate_noise.py``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import DiffDenoiseError

SigmaMethod = Literal["pca", "mad", "immerkaer"]
SIGMA_METHODS: tuple[str, ...] = ("pca", "mad", "immerkaer")

_PCA_PATCH = {1: 7, 3: 5}     # patch side by channel count: 49 or 75 values per patch
_PCA_MIN_SAMPLES = 20_000     # patches taken with stride 2 only when that still leaves this many


def as_hwc(y: np.ndarray | torch.Tensor) -> np.ndarray:
    """One image as a float64 H x W x C array, from an H x W (x C) array or a (1 x) C x H x W tensor."""
    if isinstance(y, torch.Tensor):
        if y.ndim == 4:
            if y.shape[0] != 1:
                raise ValueError(f"expected one image (1 x C x H x W), got a batch of shape {tuple(y.shape)}")
            y = y[0]
        if y.ndim != 3:
            raise ValueError(f"expected a C x H x W or 1 x C x H x W tensor, got shape {tuple(y.shape)}")
        return np.ascontiguousarray(y.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy())
    a = np.asarray(y, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"expected an H x W or H x W x C array, got shape {a.shape}")
    return a


def _combine_channels(sigmas: list[float]) -> float:
    """Root mean square over channels: sqrt(mean_c sigma_c^2)."""
    return float(np.sqrt(np.mean(np.square(sigmas))))


def _noise_eigen_set_mean(eigenvalues: np.ndarray) -> float:
    """Mean of the largest set of smallest eigenvalues whose mean is at most its median (Chen et al. 2015)."""
    lam = np.sort(eigenvalues)
    total = np.cumsum(lam)
    for k in range(lam.size, 0, -1):
        mean = total[k - 1] / k
        if mean <= np.median(lam[:k]):
            return float(mean)
    return float(lam[0])


def laplacian_difference(z: np.ndarray) -> np.ndarray:
    """Immerkær's mask N = [[1,-2,1],[-2,4,-2],[1,-2,1]] applied to a 2-D array, interior only ((H-2) x (W-2)).

    N cancels any locally linear signal; on white noise of std s its response has std 6 s (sum of N^2 = 36).
    """
    corners = z[:-2, :-2] + z[:-2, 2:] + z[2:, :-2] + z[2:, 2:]
    edges = z[:-2, 1:-1] + z[2:, 1:-1] + z[1:-1, :-2] + z[1:-1, 2:]
    return corners - 2.0 * edges + 4.0 * z[1:-1, 1:-1]


def sigma_pca(y: np.ndarray, patch: int | None = None) -> float:
    """Chen-Zhu-Heng PCA estimate for an H x W x C float array (channels taken jointly).

    ``patch``: side of the square patches; default 7 for gray and 5 for colour (5 x 5 x 3 = 75 values), which
    is as accurate as 7 x 7 x 3 on Kodak24 at a third of the cost.
    """
    h, w, c = y.shape
    patch = patch or _PCA_PATCH.get(c, 5)
    if h < patch or w < patch:
        raise DiffDenoiseError(f"image {w}x{h} is smaller than the {patch}x{patch} patch of the PCA noise estimator; "
                               f"give the noise level (--sigma)")
    stride = 2 if ((h - patch) // 2 + 1) * ((w - patch) // 2 + 1) >= _PCA_MIN_SAMPLES else 1
    windows = np.lib.stride_tricks.sliding_window_view(y, (patch, patch), axis=(0, 1))[::stride, ::stride]
    patches = torch.from_numpy(np.ascontiguousarray(windows).reshape(-1, c * patch * patch))
    patches -= patches.mean(dim=0)
    # torch for the big product (numpy's threaded OpenBLAS stalls on a busy machine), numpy for the small eigh
    cov = (patches.T @ patches).numpy() / patches.shape[0]
    eigenvalues = np.linalg.eigvalsh(cov)
    return float(np.sqrt(max(_noise_eigen_set_mean(eigenvalues), 0.0)))


def sigma_mad(y: np.ndarray) -> float:
    """Donoho-Johnstone MAD of the finest diagonal db2 subband, per channel, combined by RMS."""
    import pywt
    sigmas = []
    for ch in range(y.shape[2]):
        _, (_, _, hh) = pywt.dwt2(y[:, :, ch], "db2", mode="periodization")
        sigmas.append(np.median(np.abs(hh)) / 0.6745)
    return _combine_channels(sigmas)


def sigma_immerkaer(y: np.ndarray) -> float:
    """Immerkær's Laplacian-difference estimate, per channel, combined by RMS."""
    h, w, _ = y.shape
    if h < 3 or w < 3:
        raise DiffDenoiseError(f"image {w}x{h} is too small for the 3x3 Immerkær mask; give the noise level (--sigma)")
    sigmas = [np.sqrt(np.pi / 2.0) * np.abs(laplacian_difference(y[:, :, ch])).sum() / (6.0 * (w - 2) * (h - 2))
              for ch in range(y.shape[2])]
    return _combine_channels(sigmas)


_ESTIMATORS = {"pca": sigma_pca, "mad": sigma_mad, "immerkaer": sigma_immerkaer}


def estimate_sigma(y: np.ndarray | torch.Tensor, method: SigmaMethod = "pca") -> float:
    """Estimate the std of additive white Gaussian noise in one image, on the [0, 1] scale.

    ``y``: an H x W or H x W x C array, or a C x H x W / 1 x C x H x W tensor (one image; for a batch call it per
    image).  ``method``: ``"pca"`` (default, most accurate), ``"mad"`` or ``"immerkaer"`` (see the module docstring).
    The image is not clipped; values outside [0, 1] (unclipped synthetic noise) are used as they are.
    """
    try:
        fn = _ESTIMATORS[method]
    except KeyError:
        raise DiffDenoiseError(f"unknown sigma estimator {method!r}; valid: {', '.join(SIGMA_METHODS)}") from None
    return fn(as_hwc(y))
