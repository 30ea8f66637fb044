"""PSNR and SSIM with the evaluation protocol of SPEC §1.

Both take images as uint8 (or any same-typed arrays) H x W (x C).  SSIM is Wang et al. 2004 with a Gaussian window
(sigma 1.5), K1 = 0.01, K2 = 0.03, computed per channel and averaged: exactly scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``, which is
what we call.
"""
from __future__ import annotations

import numpy as np


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")


def psnr(x: np.ndarray, y: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (no border crop)."""
    _check(x, y)
    mse = np.mean((np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def ssim(x: np.ndarray, y: np.ndarray, peak: float = 255.0) -> float:
    """Structural similarity, per channel then averaged (SPEC §1)."""
    from skimage.metrics import structural_similarity
    _check(x, y)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 3 and x.shape[2] == 1:
        x, y = x[:, :, 0], y[:, :, 0]
    return float(structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=peak, channel_axis=2 if x.ndim == 3 else None))
