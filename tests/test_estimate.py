"""Noise-level estimation: global sigma, Poisson-Gaussian fit, noise maps (SPEC §4)."""
import numpy as np
import pytest
import torch

from diffdenoise.errors import DiffDenoiseError
from diffdenoise.estimate import SIGMA_METHODS, estimate_noise_map, estimate_sigma, fit_poisson_gaussian


def smooth_image(h: int = 128, w: int = 128, c: int = 3) -> np.ndarray:
    """A smooth synthetic H x W x C image in [0.1, 0.9]: low-frequency sinusoids, a different phase per channel."""
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    planes = [0.5 + 0.2 * np.sin(2 * np.pi * (xx + 0.3 * k)) * np.cos(np.pi * (yy - 0.2 * k)) + 0.15 * (xx - yy)
              for k in range(c)]
    return np.stack(planes, axis=2)


def ramp_image(h: int = 256, w: int = 256) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, w), (h, 1))[:, :, None]


@pytest.mark.parametrize("method", SIGMA_METHODS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma_8bit", [15, 25, 50])
def test_estimate_sigma_within_10_percent(method, channels, sigma_8bit):
    rng = np.random.default_rng(sigma_8bit)
    sigma = sigma_8bit / 255
    x = smooth_image(c=channels)
    y = x + sigma * rng.standard_normal(x.shape)
    assert abs(estimate_sigma(y, method) - sigma) / sigma < 0.10


def test_estimate_sigma_accepts_tensor_and_array_alike():
    rng = np.random.default_rng(0)
    y = (smooth_image() + 0.1 * rng.standard_normal((128, 128, 3))).astype(np.float32)
    t = torch.from_numpy(y).permute(2, 0, 1).unsqueeze(0)
    for method in SIGMA_METHODS:
        assert estimate_sigma(t, method) == pytest.approx(estimate_sigma(y, method), rel=1e-6)
    assert estimate_sigma(y[:, :, 0]) == pytest.approx(estimate_sigma(y[:, :, :1]))


def test_estimate_sigma_rejects_batch_and_unknown_method():
    with pytest.raises(ValueError):
        estimate_sigma(torch.zeros(2, 3, 32, 32))
    with pytest.raises(DiffDenoiseError, match="valid: pca"):
        estimate_sigma(np.zeros((32, 32, 3)), "nope")


@pytest.mark.parametrize("a, b, tol_a, tol_b", [(0.004, 0.03, 0.15, 0.10), (0.01, 0.02, 0.10, 0.35)])
def test_fit_poisson_gaussian_recovers_ramp_law(a, b, tol_a, tol_b):
    rng = np.random.default_rng(1)
    x = ramp_image()
    y = x + np.sqrt(a * x + b * b) * rng.standard_normal(x.shape)
    a_hat, b_hat = fit_poisson_gaussian(y)
    assert abs(a_hat - a) / a < tol_a
    assert abs(b_hat - b) / b < tol_b


def test_fit_poisson_gaussian_on_pure_gaussian_noise():
    rng = np.random.default_rng(2)
    x = ramp_image()
    y = x + 0.05 * rng.standard_normal(x.shape)
    a_hat, b_hat = fit_poisson_gaussian(y)
    assert a_hat < 0.001 and abs(b_hat - 0.05) / 0.05 < 0.08


def test_fit_poisson_gaussian_ignores_clipped_pixels():
    rng = np.random.default_rng(3)
    x = ramp_image()
    y = np.clip(x + np.sqrt(0.004 * x + 0.03 ** 2) * rng.standard_normal(x.shape), 0.0, 1.0)
    a_hat, b_hat = fit_poisson_gaussian(y)
    assert abs(a_hat - 0.004) / 0.004 < 0.25 and abs(b_hat - 0.03) / 0.03 < 0.25


@pytest.mark.parametrize("method", ["pg", "local"])
def test_noise_map_shape_device_and_level(method):
    rng = np.random.default_rng(4)
    x = np.stack([smooth_image(96, 80, 3), smooth_image(96, 80, 3)[::-1]])
    s = np.sqrt(0.004 * x + 0.02 ** 2)
    y = torch.from_numpy((x + s * rng.standard_normal(x.shape)).astype(np.float32)).permute(0, 3, 1, 2)
    m = estimate_noise_map(y, method)
    assert m.shape == y.shape and m.dtype == torch.float32 and m.device == y.device
    truth = torch.from_numpy(s.astype(np.float32)).permute(0, 3, 1, 2)
    assert float(((m - truth).abs() / truth).mean()) < (0.15 if method == "pg" else 0.25)


def test_noise_map_from_gray_array():
    rng = np.random.default_rng(5)
    y = smooth_image(64, 64, 1) + 0.1 * rng.standard_normal((64, 64, 1))
    m = estimate_noise_map(y[:, :, 0])
    assert m.shape == (1, 1, 64, 64)
    assert float(m.mean()) == pytest.approx(0.1, rel=0.15)
    with pytest.raises(DiffDenoiseError):
        estimate_noise_map(y, "nope")
