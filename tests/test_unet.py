"""The diffusion backbone: shapes, per-pixel time, class and condition inputs (CPU, tiny preset)."""
from __future__ import annotations

import pytest
import torch

from diffdenoise.nets.unet import PRESETS, UNet


def _randomised(net: UNet) -> UNet:
    """Zero-initialised output layers make every net output 0 at init: give all weights random values."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


@pytest.mark.parametrize("size", [(17, 23), (32, 32), (1, 5), (9, 64)])
def test_any_size_keeps_shape(size):
    net = _randomised(UNet(3, 2, cond_channels=4, size="tiny", num_classes=5))
    x = torch.randn(2, 3, *size)
    out = net(x, torch.tensor([0.1, 0.9]), cond=torch.randn(2, 4, *size), label=torch.tensor([0, 5]))
    assert out.shape == (2, 2, *size) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_per_pixel_time_matches_scalar_for_constant_map():
    net = _randomised(UNet(1, 1, cond_channels=1, size="tiny"))
    x, c = torch.randn(2, 1, 19, 13), torch.randn(2, 1, 19, 13)
    t = torch.tensor([0.05, 0.7])
    scalar = net(x, t, cond=c)
    per_pixel = net(x, t.view(2, 1, 1, 1).expand(2, 1, 19, 13).contiguous(), cond=c)
    assert torch.allclose(scalar, per_pixel, atol=1e-5, rtol=1e-5)
    assert torch.allclose(scalar, net(x, t.view(2, 1, 1, 1), cond=c), atol=1e-6)
    varying = torch.rand(2, 1, 19, 13)
    assert not torch.allclose(net(x, varying, cond=c), scalar, atol=1e-4)


def test_time_label_and_condition_change_the_output():
    net = _randomised(UNet(1, 1, cond_channels=1, size="tiny", num_classes=3))
    x, c = torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
    base = net(x, torch.tensor([0.3]), cond=c, label=torch.tensor([1]))
    assert not torch.allclose(base, net(x, torch.tensor([0.6]), cond=c, label=torch.tensor([1])))
    assert not torch.allclose(base, net(x, torch.tensor([0.3]), cond=c, label=torch.tensor([2])))
    assert not torch.allclose(base, net(x, torch.tensor([0.3]), cond=-c, label=torch.tensor([1])))
    null = net(x, torch.tensor([0.3]), cond=c)                       # label None = the null label
    assert torch.equal(null, net(x, torch.tensor([0.3]), cond=c, label=torch.tensor([3])))


def test_zero_initialised_output_and_errors():
    net = UNet(3, 3, size="tiny")
    assert torch.count_nonzero(net(torch.randn(1, 3, 8, 8), torch.tensor([0.5]))) == 0
    with pytest.raises(ValueError, match="cond_channels=0"):
        net(torch.randn(1, 3, 8, 8), torch.tensor([0.5]), cond=torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="time map"):
        net(torch.randn(1, 3, 8, 8), torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="unknown UNet size"):
        UNet(3, 3, size="huge")
    with pytest.raises(ValueError, match="unknown UNet option"):
        UNet(3, 3, size="tiny", widht=3)


def test_presets_and_overrides():
    counts = {s: sum(p.numel() for p in UNet(3, 3, size=s).parameters()) for s in PRESETS}
    assert counts["tiny"] < 300_000 < 2_000_000 < counts["small"] < 4_000_000 < counts["base"]
    net = UNet(3, 3, size="tiny", channels=[8, 16, 32], attn_levels=[2], head_channels=8)   # JSON gives lists
    assert net(torch.randn(1, 3, 12, 12), torch.tensor([0.2])).shape == (1, 3, 12, 12)


def test_backward_and_bf16_autocast():
    net = UNet(3, 3, cond_channels=2, size="tiny", num_classes=2, channels=(8, 16))
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, torch.rand(2, 1, 8, 8), cond=torch.randn(2, 2, 8, 8), label=torch.tensor([0, 1]))
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("cond", [0, 3])
def test_fold_to_gray_is_the_colour_net_on_replicated_gray(cond):
    """The folded gray net equals the colour net run on gray replicated to RGB, its outputs averaged back."""
    from diffdenoise.nets.unet import fold_to_gray
    colour = _randomised(UNet(3, 3, cond_channels=cond, size="tiny")).double()
    gray = UNet(1, 1, cond_channels=cond // 3, size="tiny").double().eval()
    gray.load_state_dict(fold_to_gray(colour.state_dict(), cond))
    x, t = torch.rand(2, 1, 12, 10, dtype=torch.float64), torch.tensor([0.3, 0.8], dtype=torch.float64)
    c = torch.rand(2, 1, 12, 10, dtype=torch.float64) if cond else None
    want = colour(x.expand(-1, 3, -1, -1), t, cond=None if c is None else c.expand(-1, 3, -1, -1)).mean(1, True)
    got = gray(x, t, cond=c)
    assert want.abs().max() > 0.01                       # a real function, not the zero output
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="3-in/3-out"):
        fold_to_gray(gray.state_dict())


@pytest.mark.parametrize("cond_to", [3, 0])
def test_narrow_condition_is_the_seed_with_zero_or_own_input_conditions(cond_to):
    """cddpm's condition [y (3), sigma, flag] narrowed to [y]: the seed with zeros in the dropped channels (its
    blind condition); narrowed to none: the seed given its own input as y, zeros elsewhere."""
    from diffdenoise.nets.unet import narrow_condition
    seed = _randomised(UNet(3, 3, cond_channels=5, size="tiny")).double()
    net = UNet(3, 3, cond_channels=cond_to, size="tiny").double().eval()
    net.load_state_dict(narrow_condition(seed.state_dict(), 3, 5, cond_to))
    x, y = torch.rand(2, 3, 12, 10, dtype=torch.float64), torch.rand(2, 3, 12, 10, dtype=torch.float64)
    t = torch.tensor([0.3, 0.8], dtype=torch.float64)
    zeros = torch.zeros(2, 2, 12, 10, dtype=torch.float64)
    if cond_to:
        want, got = seed(x, t, cond=torch.cat([y, zeros], 1)), net(x, t, cond=y)
    else:
        want, got = seed(x, t, cond=torch.cat([x, zeros], 1)), net(x, t)
    assert want.abs().max() > 0.01
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="cannot narrow"):
        narrow_condition(net.state_dict(), 3, 5, 3)
