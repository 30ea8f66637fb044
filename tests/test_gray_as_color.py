"""A gray image fed to a colour DDPM: the replicated noise is made white in RGB (std sqrt(3) sigma, uncorrelated)."""
import torch

from diffdenoise.diffusion.ddpm_match import gray_as_color


def test_gray_as_color_makes_white_rgb_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.full((1, 1, 256, 256), 0.4)
    sigma = 0.1
    y = x + sigma * torch.randn(x.shape, generator=g)
    rgb, s = gray_as_color(y, torch.tensor([sigma], dtype=torch.float64), torch.Generator().manual_seed(1))
    assert rgb.shape == (1, 3, 256, 256)
    assert abs(float(s[0]) - sigma * 3 ** 0.5) < 1e-12
    e = (rgb - 0.4).flatten(2)[0]                      # 3 x P noise
    cov = e @ e.T / e.shape[1]
    target = (sigma * 3 ** 0.5) ** 2
    assert torch.allclose(torch.diagonal(cov), torch.full((3,), target), rtol=0.03)
    off = cov - torch.diag(torch.diagonal(cov))
    assert off.abs().max() < 0.03 * target
    assert torch.allclose(rgb.mean(dim=1, keepdim=True), y, atol=1e-6)  # the gray axis is y itself
