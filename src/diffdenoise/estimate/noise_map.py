"""Signal-dependent noise: fit the Poisson-Gaussian law and estimate per-pixel noise-std maps.

Model (SPEC §2): ``s^2 = a x + b^2`` with ``x`` the clean intensity in [0, 1], ``a`` the shot (Poisson) gain and
``b`` the read-noise std.  The fit follows the idea of Foi et al. 2008 ("Practical Poissonian-Gaussian noise
modeling and fitting for single-image raw-data", IEEE TIP 17(10)): measure the local mean and the local noise
variance where the image is flat, group the measurements by intensity level, and regress variance on level.

Here the noise is measured by Immerkær's mask ``N`` (:func:`~diffdenoise.estimate.sigma.laplacian_difference`),
whose response ``r`` cancels locally linear signal and has std ``6 s`` on noise of std ``s``; the level is a 7 x 7
box mean.  Pixels whose local gradient is in the upper half (edges, texture) are left out, the rest are put into
equal-count bins of level, each bin gives a robust variance (MAD of ``r / 6``, squared) and the line is fitted by
iteratively reweighted least squares (weights n_k / var_k^2, the inverse variance of a sample variance, times
Tukey bisquare weights on the standardised residuals).  Pixels next to a value of exactly 0 or 1 (clipped, as in
8-bit files) are not used.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import DiffDenoiseError
from .sigma import as_hwc, laplacian_difference

MapMethod = Literal["pg", "local"]
MAP_METHODS: tuple[str, ...] = ("pg", "local")

_LEVEL_WINDOW = 7       # box for the local mean (level)
_N_BINS = 24            # equal-count intensity bins for the regression
_MIN_PER_BIN = 50       # fewer flat pixels than this per bin: fewer bins
_LOCAL_BLOCK = 16       # block side of the "local" map's robust std
_MAD_TO_STD = 1.0 / 0.6745


def _flat_measurements(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(level, r / 6) at interior pixels of flat, unclipped regions, all channels pooled."""
    from scipy import ndimage
    levels, residuals = [], []
    for ch in range(y.shape[2]):
        z = y[:, :, ch]
        level = ndimage.uniform_filter(z, _LEVEL_WINDOW, mode="reflect")
        gy, gx = np.gradient(level)
        grad = np.hypot(gx, gy)[1:-1, 1:-1]
        r = laplacian_difference(z) / 6.0
        clipped = ndimage.maximum_filter((z <= 0.0) | (z >= 1.0), size=_LEVEL_WINDOW)[1:-1, 1:-1]
        keep = (grad <= np.median(grad)) & ~clipped
        levels.append(level[1:-1, 1:-1][keep])
        residuals.append(r[keep])
    return np.concatenate(levels), np.concatenate(residuals)


def _binned_variances(level: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-count bin of level: median level, robust variance of r, count."""
    n_bins = int(min(_N_BINS, max(1, level.size // _MIN_PER_BIN)))
    order = np.argsort(level)
    bins = np.array_split(order, n_bins)
    mid = np.array([np.median(level[b]) for b in bins])
    var = np.array([(np.median(np.abs(r[b])) * _MAD_TO_STD) ** 2 for b in bins])
    count = np.array([b.size for b in bins], dtype=np.float64)
    return mid, var, count


def _robust_line(xk: np.ndarray, vk: np.ndarray, nk: np.ndarray, iters: int = 5) -> tuple[float, float]:
    """Fit vk = slope * xk + intercept by IRLS: weights nk / vk^2 times Tukey bisquare on scaled residuals."""
    base = nk / np.maximum(vk, 1e-12) ** 2
    robust = np.ones_like(xk)
    design = np.stack([xk, np.ones_like(xk)], axis=1)
    slope, intercept = 0.0, float(np.median(vk))
    for _ in range(iters):
        w = base * robust
        if np.count_nonzero(w > 0) < 2 or np.ptp(xk[w > 0]) == 0:
            break
        sw = np.sqrt(w)
        slope, intercept = np.linalg.lstsq(design * sw[:, None], vk * sw, rcond=None)[0]
        pred = np.maximum(slope * xk + intercept, 1e-12)
        # standardised residual: a sample variance from n values has relative std sqrt(2 / n)
        z = (vk - pred) / (pred * np.sqrt(2.0 / nk))
        scale = 4.685 * max(np.median(np.abs(z)) * _MAD_TO_STD, 1.0)
        robust = np.clip(1.0 - (z / scale) ** 2, 0.0, None) ** 2
    return float(slope), float(intercept)


def fit_poisson_gaussian(y: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """Fit ``s^2 = a x + b^2`` to one noisy image; returns ``(a, b)`` on the [0, 1] scale, both >= 0.

    ``y``: an H x W (x C) array or a (1 x) C x H x W tensor.  Channels share one law (pooled measurements).
    A negative intercept gives ``b = 0`` (slope refitted through the origin); a negative slope gives ``a = 0``
    and ``b^2`` the weighted mean variance.
    """
    img = as_hwc(y)
    if img.shape[0] < _LEVEL_WINDOW or img.shape[1] < _LEVEL_WINDOW:
        raise DiffDenoiseError(f"image {img.shape[1]}x{img.shape[0]} is too small to fit a noise law")
    level, r = _flat_measurements(img)
    if level.size < 2 * _MIN_PER_BIN:
        raise DiffDenoiseError("too few flat, unclipped pixels to fit a Poisson-Gaussian noise law")
    xk, vk, nk = _binned_variances(level, r)
    a, b2 = _robust_line(xk, vk, nk)
    w = nk / np.maximum(vk, 1e-12) ** 2
    if a < 0:
        a, b2 = 0.0, float(np.sum(w * vk) / np.sum(w))
    elif b2 < 0:
        a, b2 = float(np.sum(w * xk * vk) / max(np.sum(w * xk * xk), 1e-12)), 0.0
    return max(a, 0.0), float(np.sqrt(max(b2, 0.0)))


def _pg_map(img: np.ndarray) -> np.ndarray:
    from scipy import ndimage
    a, b = fit_poisson_gaussian(img)
    smooth = np.stack([ndimage.gaussian_filter(img[:, :, c], 2.0, mode="reflect") for c in range(img.shape[2])], 2)
    return np.sqrt(np.maximum(a * np.clip(smooth, 0.0, 1.0) + b * b, 0.0))


def _local_map(img: np.ndarray) -> np.ndarray:
    """Robust std per 16 x 16 block (MAD of the Immerkær residual), bilinearly upsampled and smoothed."""
    import cv2
    from scipy import ndimage
    h, w, c = img.shape
    k = _LOCAL_BLOCK
    out = np.empty((h, w, c), dtype=np.float64)
    for ch in range(c):
        r = np.pad(np.abs(laplacian_difference(img[:, :, ch])) / 6.0, 1, mode="edge")
        ph, pw = -h % k, -w % k
        r = np.pad(r, ((0, ph), (0, pw)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
        blocks = r.reshape(r.shape[0] // k, k, r.shape[1] // k, k).transpose(0, 2, 1, 3).reshape(
            r.shape[0] // k, r.shape[1] // k, k * k)
        std = np.median(blocks, axis=2) * _MAD_TO_STD
        if min(std.shape) >= 3:
            std = ndimage.median_filter(std, size=3, mode="nearest")
        up = cv2.resize(std.astype(np.float32), (r.shape[1], r.shape[0]), interpolation=cv2.INTER_LINEAR)
        out[:, :, ch] = up[:h, :w]
    return out


_MAPS = {"pg": _pg_map, "local": _local_map}


def estimate_noise_map(y: np.ndarray | torch.Tensor, method: MapMethod = "pg") -> torch.Tensor:
    """Per-pixel noise std map (the [0, 1] scale), N x C x H x W float32 on y's device (1 x C x H x W for an array).

    ``y``: an N x C x H x W tensor (each image fitted on its own) or one H x W (x C) array.
    ``method``: ``"pg"`` — :func:`fit_poisson_gaussian`, evaluated as sqrt(a x + b^2) on a Gaussian-smoothed
    (std 2 px) copy of y clipped to [0, 1]; ``"local"`` — a robust local std: median absolute Immerkær residual
    per 16 x 16 block, median-filtered over 3 x 3 blocks and bilinearly upsampled (no noise law assumed).
    """
    try:
        fn = _MAPS[method]
    except KeyError:
        raise DiffDenoiseError(f"unknown noise-map method {method!r}; valid: {', '.join(MAP_METHODS)}") from None
    if isinstance(y, torch.Tensor):
        if y.ndim != 4:
            raise ValueError(f"expected an N x C x H x W tensor, got shape {tuple(y.shape)}")
        maps = [fn(as_hwc(y[i:i + 1])) for i in range(y.shape[0])]
        device = y.device
    else:
        maps, device = [fn(as_hwc(y))], torch.device("cpu")
    out = torch.from_numpy(np.stack(maps).transpose(0, 3, 1, 2).astype(np.float32))
    return out.to(device)
