"""Classical denoisers as plain functions ``f(y, sigma) -> x_hat`` (SPEC §3.1).

``y`` is a float H x W x C array (C = 1 or 3; an H x W array is taken as C = 1), ``sigma`` the noise std on the
[0, 1] scale; the result is float32 of y's shape, not clipped.  ``sigma <= 0`` returns a copy of y.  Nothing is
clipped before filtering: every backend here accepts values outside [0, 1] (unclipped synthetic noise) as they are.

Each filter turns sigma into its own parameter by a one-line rule.  The NLM rule was fitted by
``benchmarks/tune_nlm.py``; the others are rules of thumb placed at or near the best value of a one-off grid search
(not kept as a script) on four 256 x 256 ``bsds500/train`` crops at sigma = 10, 25, 50 in 8-bit units, so each is a
fair baseline rather than a tuned one.

OpenCV, scikit-image and scipy are imported inside the functions (``import diffdenoise`` needs torch and numpy
only); ``bm3d`` is optional (non-commercial licence).
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import numpy as np

from ..errors import DiffDenoiseError

ImageFilter = Callable[[np.ndarray, float], np.ndarray]

BM3D_MISSING = "bm3d needs the optional package: pip install bm3d (non-commercial licence)"


def _image_filter(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Shared input/output handling: H x W (x C) float -> contiguous float32 H x W x C in, y's shape out."""
    @functools.wraps(fn)
    def wrapper(y: np.ndarray, sigma: float, **kwargs) -> np.ndarray:
        y = np.asarray(y)
        shape = y.shape
        img = np.ascontiguousarray(y[:, :, None] if y.ndim == 2 else y, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] not in (1, 3):
            raise ValueError(f"expected an H x W, H x W x 1 or H x W x 3 array, got shape {shape}")
        sigma = float(sigma)
        if not np.isfinite(sigma):
            raise ValueError(f"sigma must be finite, got {sigma}")
        if sigma <= 0:
            return img.reshape(shape).copy()
        out = fn(img, sigma, **kwargs)
        return np.ascontiguousarray(out, dtype=np.float32).reshape(shape)
    return wrapper


@_image_filter
def gaussian(y: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; width max(0.3, 10 sigma) px (1 px at sigma = 25/255, 2 px at 50/255)."""
    import cv2
    width = max(0.3, 10.0 * sigma)
    return cv2.GaussianBlur(y, (0, 0), width, borderType=cv2.BORDER_REFLECT)


@_image_filter
def median(y: np.ndarray, sigma: float) -> np.ndarray:
    """Median filter per channel; size 3 x 3 below sigma = 20/255, 5 x 5 below 40/255, 7 x 7 above."""
    from scipy import ndimage
    size = 3 if sigma < 20 / 255 else 5 if sigma < 40 / 255 else 7
    return ndimage.median_filter(y, size=(size, size, 1), mode="reflect")


@_image_filter
def bilateral(y: np.ndarray, sigma: float) -> np.ndarray:
    """OpenCV bilateral filter; spatial std 3 px, range std k sigma (1 + 2.5 sigma), k = 2 gray, 3 RGB.

    OpenCV's colour range distance is the sum of |difference| over the three channels, hence the larger k.
    """
    import cv2
    k = 2.0 if y.shape[2] == 1 else 3.0
    return cv2.bilateralFilter(y, -1, k * sigma * (1.0 + 2.5 * sigma), 3.0, borderType=cv2.BORDER_REFLECT)


@_image_filter
def wavelet(y: np.ndarray, sigma: float) -> np.ndarray:
    """BayesShrink soft thresholds (scikit-image ``denoise_wavelet``), db2, 5 levels (fewer if small); RGB in YCbCr."""
    import pywt
    from skimage.restoration import denoise_wavelet
    levels = max(1, min(5, pywt.dwt_max_level(min(y.shape[:2]), "db2")))
    with warnings.catch_warnings():   # images under 6 px: pywt warns that one level already meets the border
        warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        return denoise_wavelet(y, sigma=sigma, wavelet="db2", mode="soft", method="BayesShrink", rescale_sigma=True,
                               wavelet_levels=levels, convert2ycbcr=y.shape[2] == 3, channel_axis=-1)


@_image_filter
def tv(y: np.ndarray, sigma: float) -> np.ndarray:
    """Total variation, Chambolle's projection (scikit-image), per channel; weight 2 sigma^1.4 (0.8 sigma at 25/255)."""
    from skimage.restoration import denoise_tv_chambolle
    return denoise_tv_chambolle(y, weight=2.0 * sigma ** 1.4, channel_axis=-1)


def nlm_h(sigma: float, channels: int) -> float:
    """NLM filtering parameter h(sigma), both on the [0, 1] scale: h = c sigma^p.

    Fitted by ``benchmarks/tune_nlm.py`` (least squares in log-log on the best h per sigma, 8-bit sigma 5-75, on
    bsds500/train colour and bsd400 gray crops): colour c = 0.259, p = 0.710 (h = 0.81 sigma at 5/255, 0.51 sigma
    at 25/255, 0.37 sigma at 75/255); gray c = 0.407, p = 0.866.  The rule is within 0.02 dB of the per-sigma best.
    """
    c, p = (0.407, 0.866) if channels == 1 else (0.259, 0.710)
    return c * sigma ** p


@_image_filter
def nlm(y: np.ndarray, sigma: float, h: float | None = None) -> np.ndarray:
    """Non-local means (Buades, Coll & Morel 2005): patch 7 x 7, search window 21 x 21 (patch_distance 10).

    scikit-image ``denoise_nl_means`` in fast mode, patch distances averaged over channels, with the expected
    noise term 2 sigma^2 subtracted (its ``sigma`` argument); ``h`` defaults to :func:`nlm_h`.  Chosen over
    OpenCV's ``fastNlMeansDenoising[Colored]``, which needs uint8 (clipped) input and, each at its best h, lost
    0.9-1.7 dB on colour and 0.2-0.5 dB on gray at sigma 15-50 on the tuning images (``benchmarks/tune_nlm.py``);
    it is about 1.7x faster (4.2 s against 2.5 s for a 768 x 512 colour image on a busy 2-core CPU).
    """
    from skimage.restoration import denoise_nl_means
    h = nlm_h(sigma, y.shape[2]) if h is None else float(h)
    return denoise_nl_means(y, patch_size=7, patch_distance=10, h=h, sigma=sigma, fast_mode=True, channel_axis=-1)


# Opponent colour transform of CBM3D (Dabov et al. 2007, ICIP, "Color image denoising via sparse 3D collaborative
# filtering with grouping constraint in luminance-chrominance space"): rows give luminance and two chrominances.
_OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0.0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]])


@_image_filter
def bm3d(y: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (Dabov et al. 2007) for gray, CBM3D for RGB, with the ``bm3d`` package; unclipped input is fine.

    RGB: y goes to the opponent space here, and ``bm3d.bm3d`` denoises the three planes with the per-plane noise
    stds sigma ||row||_2 (grouping found on the luminance), then the transform is inverted.  This is what
    ``bm3d.bm3d_rgb(y, sigma)`` does (same PSNR within 0.02 dB on Kodak crops) without its per-plane min-max
    normalisation, which divides by zero (NaN output) when a plane is constant, e.g. an RGB file holding a gray image.
    """
    try:
        import bm3d as bm3d_pkg
    except ImportError:
        raise DiffDenoiseError(BM3D_MISSING) from None
    try:
        if y.shape[2] == 1:
            return bm3d_pkg.bm3d(y[:, :, 0].astype(np.float64), sigma_psd=sigma)
        planes = y.astype(np.float64) @ _OPPONENT.T
        stds = sigma * np.sqrt(np.square(_OPPONENT).sum(axis=1))
        return bm3d_pkg.bm3d(planes, sigma_psd=list(stds)) @ np.linalg.inv(_OPPONENT).T
    except ValueError as e:           # e.g. "Image cannot be smaller than block size!"
        raise DiffDenoiseError(f"bm3d cannot denoise this {y.shape[0]}x{y.shape[1]} image: {e}") from None


FILTERS: dict[str, ImageFilter] = {"gaussian": gaussian, "median": median, "bilateral": bilateral,
                                   "wavelet": wavelet, "tv": tv, "nlm": nlm, "bm3d": bm3d}
