"""PSNR and SSIM (SPEC §1): closed forms, scikit-image's reference SSIM, and the edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from diffdenoise.metrics import psnr, ssim


@pytest.mark.parametrize("d", [1, 5, 40])
@pytest.mark.parametrize("shape", [(16, 24), (16, 24, 1), (16, 24, 3)])
def test_psnr_constant_offset_is_closed_form(d, shape):
    x = np.full(shape, 100, np.uint8)
    y = (x.astype(np.int64) + d).astype(np.uint8)
    assert psnr(x, y) == pytest.approx(10 * math.log10(255 ** 2 / d ** 2), abs=1e-12)
    assert psnr(y, x) == pytest.approx(psnr(x, y), abs=1e-12)


def test_psnr_counts_every_channel_and_pixel():
    x = np.zeros((8, 8, 3), np.uint8)
    y = x.copy()
    y[0, 0, 2] = 255                                # one wrong value out of 192: mse = 255^2 / 192
    assert psnr(x, y) == pytest.approx(10 * math.log10(192), abs=1e-12)
    y[-1, -1, 0] = 255                              # the border counts too (no crop)
    assert psnr(x, y) == pytest.approx(10 * math.log10(96), abs=1e-12)


def test_psnr_has_no_uint8_overflow():
    x = np.zeros((4, 4), np.uint8)
    y = np.full((4, 4), 255, np.uint8)
    assert psnr(x, y) == pytest.approx(0.0, abs=1e-12)


def test_psnr_of_identical_images_is_inf():
    x = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    assert psnr(x, x.copy()) == math.inf


def test_psnr_peak():
    x = np.zeros((4, 4))
    y = np.full((4, 4), 0.1)
    assert psnr(x, y, peak=1.0) == pytest.approx(20.0, abs=1e-9)


def _fixture(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, shape).astype(np.uint8)
    noise = rng.normal(0, 20, shape)
    y = np.clip(np.rint(x + noise), 0, 255).astype(np.uint8)
    return x, y


def _reference(x, y, channel_axis):
    return structural_similarity(x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255, channel_axis=channel_axis)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_gray_matches_skimage(seed):
    x, y = _fixture((40, 33), seed)
    expected = _reference(x, y, None)
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)
    assert ssim(x[:, :, None], y[:, :, None]) == pytest.approx(expected, abs=1e-12)   # H x W x 1 is gray


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_rgb_matches_skimage_and_averages_channels(seed):
    x, y = _fixture((37, 45, 3), seed)
    expected = _reference(x, y, 2)
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)
    per_channel = [_reference(x[:, :, c], y[:, :, c], None) for c in range(3)]
    assert ssim(x, y) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_ssim_independent_formula_on_a_smooth_pair():
    """Wang et al. 2004 with a Gaussian window (sigma 1.5, truncate 3.5 -> 11 taps), K1 0.01, K2 0.03, written out."""
    from scipy.ndimage import gaussian_filter
    x, y = _fixture((30, 30), 3)
    a, b = x.astype(np.float64), y.astype(np.float64)
    f = lambda z: gaussian_filter(z, 1.5, truncate=3.5)  # noqa: E731
    mu_a, mu_b = f(a), f(b)
    var_a, var_b, cov = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2, f(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    pad = 5                                             # scikit-image averages away from the window's reach
    assert ssim(x, y) == pytest.approx(s[pad:-pad, pad:-pad].mean(), abs=1e-9)


@pytest.mark.parametrize("shape", [(20, 20), (20, 20, 1), (20, 20, 3)])
def test_ssim_of_identical_images_is_one(shape):
    x = np.random.default_rng(5).integers(0, 256, shape).astype(np.uint8)
    assert ssim(x, x.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_decreases_with_noise():
    x = np.random.default_rng(6).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    rng = np.random.default_rng(7)
    scores = [ssim(x, np.clip(np.rint(x + rng.normal(0, s, x.shape)), 0, 255).astype(np.uint8)) for s in (5, 15, 40)]
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("fn", [psnr, ssim])
@pytest.mark.parametrize("shapes", [((8, 8), (8, 9)), ((8, 8, 3), (8, 8, 1)), ((8, 8, 3), (8, 8))])
def test_shape_mismatch_raises(fn, shapes):
    a, b = (np.zeros(s, np.uint8) for s in shapes)
    with pytest.raises(ValueError, match="shapes differ"):
        fn(a, b)
