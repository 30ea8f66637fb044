"""Classical baselines: every filter denoises, and the shared wrapper honours the denoiser contract."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffdenoise.classical import FILTERS, ClassicalDenoiser, filters
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.metrics import psnr
from diffdenoise.registry import METHODS, build_method

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24" / "kodim23.png"
CLASSICAL = sorted(name for name, spec in METHODS.items() if spec.family == "classical")
SIGMA = 25 / 255


def needs_package(name: str) -> None:
    if name == "bm3d":
        pytest.importorskip("bm3d")


def smooth_image(h: int = 64, w: int = 64, c: int = 3) -> np.ndarray:
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    planes = [0.5 + 0.3 * np.sin(2 * np.pi * (xx + 0.3 * k)) * np.cos(np.pi * (yy - 0.2 * k)) for k in range(c)]
    x = np.stack(planes, axis=2)
    x[h // 4: h // 2, w // 4: 3 * w // 4] += 0.15          # an edge, so that blurring has a cost
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def clean_crop() -> np.ndarray:
    """A 64 x 64 RGB crop of kodim23 (a synthetic image when the data folder is absent), H x W x 3 float32."""
    if KODAK.exists():
        from diffdenoise.imageio import read_image
        return np.ascontiguousarray(read_image(KODAK).data[200:264, 300:364])
    return smooth_image()


def to_nchw(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())


def add_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g)


def uint8(t: torch.Tensor) -> np.ndarray:
    return np.rint(t.clamp(0, 1).numpy() * 255).astype(np.uint8)


def test_registry_names_every_filter():
    assert set(CLASSICAL) == set(FILTERS)


@pytest.mark.parametrize("name", CLASSICAL)
def test_every_method_improves_psnr_at_sigma_25(name, clean_crop):
    needs_package(name)
    x = to_nchw(clean_crop)
    y = add_noise(x, SIGMA)
    x_hat = build_method(name)(y, SIGMA)
    assert x_hat.shape == y.shape and x_hat.dtype == torch.float32
    assert psnr(uint8(x), uint8(x_hat)) > psnr(uint8(x), uint8(y)) + 1.0


@pytest.mark.parametrize("name", CLASSICAL)
def test_constant_image_is_kept_and_not_clipped(name):
    needs_package(name)
    for y in (np.full((32, 32), 1.2, dtype=np.float32), np.full((32, 32, 3), 1.2, dtype=np.float32)):
        x_hat = FILTERS[name](y, 0.1)                 # H x W (gray) in, H x W out
        assert x_hat.shape == y.shape and x_hat.dtype == np.float32
        assert np.allclose(x_hat, 1.2, atol=1e-3)
        assert np.array_equal(FILTERS[name](y, 0.0), y)


@pytest.mark.parametrize("channels", [1, 3])
def test_wrapper_batch_gray_rgb_and_sigma_forms(channels):
    method = build_method("gaussian")
    x = to_nchw(smooth_image(40, 48, channels), smooth_image(40, 48, channels)[::-1])
    y = add_noise(x, SIGMA)
    ref = method(y, SIGMA)
    assert ref.shape == y.shape and ref.dtype == torch.float32 and ref.device == y.device
    # image i gives the same result alone as in the batch
    assert torch.allclose(method(y[1:], SIGMA), ref[1:])
    # a constant map, one channel or all channels, is the same as the number
    assert torch.allclose(method(y, torch.full((2, 1, 40, 48), SIGMA)), ref, atol=1e-6)
    assert torch.allclose(method(y, torch.full((2, channels, 40, 48), SIGMA)), ref, atol=1e-6)
    assert torch.allclose(method(y, torch.tensor(SIGMA)), ref)
    # a map uses its RMS per image
    ramp = torch.linspace(0.05, 0.15, 48).expand(2, 1, 40, 48)
    rms = float(ramp[0].square().mean().sqrt())
    assert torch.allclose(method(y, ramp), method(y, rms), atol=1e-6)
    # blind: the estimated sigma is close to the true one, so the output is close to the informed one
    blind = method(y, None)
    assert blind.shape == y.shape
    assert psnr(uint8(x), uint8(blind)) > psnr(uint8(x), uint8(ref)) - 0.5


def test_wrapper_progress_and_errors():
    method = build_method("median")
    y = add_noise(to_nchw(smooth_image(), smooth_image()), SIGMA)
    seen = []
    method(y, SIGMA, progress=seen.append)
    assert seen == [0.5, 1.0]
    with pytest.raises(DiffDenoiseError):
        method(y[:, :2], SIGMA)
    with pytest.raises(DiffDenoiseError):
        method(y, -0.1)
    with pytest.raises(DiffDenoiseError):
        method(y, torch.full((3, 1, 64, 64), SIGMA))
    assert repr(method) == "ClassicalDenoiser(median)"


def test_nlm_h_rule_is_smooth_and_increasing():
    hs = [filters.nlm_h(s / 255, 3) for s in range(1, 101)]
    assert all(b > a for a, b in zip(hs, hs[1:]))
    assert 0 < filters.nlm_h(25 / 255, 1) < 25 / 255 * 2


def test_bm3d_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)
    with pytest.raises(DiffDenoiseError, match="pip install bm3d"):
        build_method("bm3d")
    with pytest.raises(DiffDenoiseError, match="non-commercial"):
        ClassicalDenoiser(filters.bm3d)(torch.zeros(1, 1, 16, 16), 0.1)
