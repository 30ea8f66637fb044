"""Tiled inference: the grid and its window, agreement with untiled runs, no seams, constants kept, determinism,
sigma maps cut in the right place, pass-through of small images, the registry's ``tile`` option."""
import math

import pytest
import torch

from diffdenoise import tiling
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets import build_net
from diffdenoise.nets.unet import UNet
from diffdenoise.tiling import Tiled, auto_tile, axis_weights, tile_starts


def gen(seed):
    return torch.Generator().manual_seed(seed)


def psnr(a, b):
    return 10 * math.log10(1.0 / (a - b).pow(2).mean().item())


def smooth_image(h, w, c=3):
    """A smooth colour pattern in [0.1, 0.9]."""
    r = torch.linspace(0, 1, h).view(h, 1)
    q = torch.linspace(0, 1, w).view(1, w)
    chans = [0.5 + 0.4 * torch.sin(2.0 * r + 3.0 * q + k) * torch.cos(1.5 * q - r + 0.5 * k) for k in range(c)]
    return torch.stack(chans).unsqueeze(0)


def as_method(fn):
    """A plain function of y as a denoiser with the common call."""
    def method(y, sigma=None, *, generator=None, progress=None):
        return fn(y)
    return method


def tiny_dncnn(depth=5):
    """Random-init DnCNN with BatchNorm statistics set: receptive-field radius ``depth`` pixels."""
    net = build_net("dncnn", channels=3, depth=depth, width=8)
    g = gen(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net.eval()


def tiny_realdiff(**options):
    """realdiff over a tiny UNet whose zero-initialised layers are filled, so its output is not the identity."""
    from diffdenoise.diffusion.realdiff import build
    net = UNet(3, 3, size="tiny", channels=(8, 16))
    g = gen(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return build(net=net, card={"T": 4}, **options)


def test_grid_covers_with_the_overlap_and_aligned_starts():
    for length in (100, 129, 300, 511, 1000):
        for tile, overlap, multiple in ((64, 16, 1), (96, 32, 8), (128, 32, 16)):
            starts = tile_starts(length, tile, overlap, multiple)
            size = min(tile, length)
            assert starts[0] == 0 and starts[-1] + size == length
            assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))
            assert all(s % multiple == 0 for s in starts[:-1])
            _, total = axis_weights(length, starts, tile)
            assert total.min() > 0.99                          # every pixel fully weighted
    assert tile_starts(50, 64, 16) == [0]
    with pytest.raises(DiffDenoiseError, match="too small"):
        tile_starts(300, 32, 32)


def test_window_ramps_are_complementary():
    w = tiling.window(64, 0, 32)
    assert torch.all(w[:32] == 1) and torch.all(w[-8:] == 0)     # outer quarter of the overlap: no weight
    ramp = w[32:]
    torch.testing.assert_close(ramp + ramp.flip(0), torch.ones(32))


def test_constant_stays_constant():
    y = torch.full((1, 3, 150, 170), 0.37)
    out = Tiled(as_method(lambda v: v), tile=64, overlap=20)(y)
    assert (out - 0.37).abs().max() < 1e-6
    out = Tiled(as_method(lambda v: torch.full_like(v, 0.8)), tile=48, overlap=16)(torch.rand(2, 1, 100, 77))
    assert (out - 0.8).abs().max() < 1e-6


def test_cnn_tiled_matches_untiled():
    net = tiny_dncnn(depth=5)                                  # radius 5 <= overlap // 4 = 8
    method = as_method(net)
    y = (smooth_image(120, 150) + 0.1 * torch.randn(1, 3, 120, 150, generator=gen(2))).clamp(0, 1)
    with torch.no_grad():
        whole = net(y)
    tiled = Tiled(method, tile=48, overlap=32)
    out = tiled(y)
    assert tiled.last_tile == (48, 48)
    assert psnr(out, whole) > 50
    assert (out - whole).abs().max() < 1e-4                    # the same up to float rounding
    other = Tiled(method, tile=80, overlap=32)(y)              # deterministic: any tile size, the same result
    assert (other - out).abs().max() < 1e-4


def test_no_seams_on_a_smooth_input():
    """A UNet sees per-tile GroupNorm statistics and zero padding at the cut: hard seams without blending."""
    method = tiny_realdiff(steps=1)
    w = 222
    y = smooth_image(64, w)

    def ratio(x, border):
        dx = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(0, 1, 2))        # mean |d/dx| between columns j, j+1
        return (dx[border].mean() / dx[~border].mean()).item()

    starts = tile_starts(w, 96, 32, multiple=2)                           # the tiny UNet's multiple
    assert len(starts) == 3
    ramps, overlaps = torch.zeros(w - 1, dtype=torch.bool), torch.zeros(w - 1, dtype=torch.bool)
    for a, b in zip(starts, starts[1:]):
        o = a + 96 - b
        ramps[b + o // 4:a + 96 - o // 4 - 1] = True                       # where the weights change
        overlaps[max(b - 2, 0):a + 96 + 1] = True
    blended = ratio(Tiled(method, tile=96, overlap=32)(y), ramps & overlaps)
    seam = torch.zeros(w - 1, dtype=torch.bool)
    seam[110:113] = True                                                  # tiles [0, 112) and [112, 222), no overlap
    hard = ratio(Tiled(method, tile=112, overlap=0)(y), seam)
    print(f"border/interior gradient: blended {blended:.3f}, hard seams {hard:.3f}")
    assert blended < 1.2
    assert hard > 1.5                                                     # the measure does see a seam


def test_stochastic_method_repeatable_whatever_the_batch_and_uncertainty_stitched():
    method = tiny_realdiff(steps=1, samples=2)
    y = torch.rand(1, 3, 60, 76, generator=gen(3))                     # 2 x 2 tiles
    one = Tiled(method, tile=48, overlap=16, batch=1)
    a = one(y, generator=gen(7))
    u = one.last_uncertainty
    b = Tiled(method, tile=48, overlap=16, batch=4)(y, generator=gen(7))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    torch.testing.assert_close(a, one(y, generator=gen(7)), rtol=0, atol=0)
    assert not torch.allclose(a, one(y, generator=gen(8)))
    assert u is not None and u.shape == y.shape and torch.isfinite(u).all() and (u > 0).all()
    method(y, generator=gen(7))                                         # the same kind of map, untiled
    assert 0.2 < u.mean() / method.last_uncertainty.mean() < 5


def test_sigma_map_is_cut_with_the_tile():
    def echo(y, sigma=None, *, generator=None, progress=None):
        if torch.is_tensor(sigma):
            return sigma.expand_as(y).clone()
        return torch.full_like(y, -1.0 if sigma is None else float(sigma))

    y = torch.rand(2, 3, 90, 110, generator=gen(4))
    smap = torch.rand(2, 1, 90, 110, generator=gen(5))
    method = Tiled(echo, tile=48, overlap=16)
    torch.testing.assert_close(method(y, smap), smap.expand_as(y), rtol=0, atol=1e-6)
    cmap = torch.rand(2, 3, 90, 110, generator=gen(6))
    torch.testing.assert_close(method(y, cmap), cmap, rtol=0, atol=1e-6)
    assert torch.allclose(method(y, 0.1), torch.full_like(y, 0.1))             # scalar passed as is
    assert torch.allclose(method(y), torch.full_like(y, -1.0))                 # blind: None passed on
    noisy = (smooth_image(90, 110) + 0.05 * torch.randn(1, 3, 90, 110, generator=gen(7)))
    blind = Tiled(echo, tile=48, overlap=16, blind="sigma")                    # one estimate on the whole image
    out = blind(noisy)
    assert torch.allclose(out, torch.full_like(out, tiling.global_sigma(noisy)))
    assert abs(out[0, 0, 0, 0].item() - 0.05) < 0.01
    with pytest.raises(DiffDenoiseError, match="does not fit"):
        method(y, torch.rand(2, 1, 10, 10))


def test_small_image_goes_straight_through():
    calls = []

    def spy(y, sigma=None, *, generator=None, progress=None):
        calls.append((y.shape, sigma, generator, progress))
        return y * 2

    y, g, report = torch.rand(1, 3, 40, 50), gen(0), (lambda f: None)
    out = Tiled(spy, tile=64)(y, None, generator=g, progress=report)
    assert torch.equal(out, y * 2)
    assert calls == [(y.shape, None, g, report)]
    calls.clear()
    Tiled(spy, tile=None)(torch.rand(1, 1, 300, 300))
    assert len(calls) == 1


def test_progress_over_tiles():
    seen = []
    Tiled(as_method(lambda v: v), tile=32, overlap=8)(torch.rand(2, 1, 60, 60), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and 0 < seen[0] < 1


def test_blind_policy_and_cost_model(monkeypatch):
    from diffdenoise.diffusion.cddpm import CDDPMTask, build
    net = UNet(3, 3, cond_channels=5, size="tiny", channels=(8, 16))
    cddpm = build("cpu", net=net.eval(), card={"method": CDDPMTask().method_card()})
    assert Tiled(cddpm).blind == "sigma" and Tiled(tiny_realdiff()).blind == "pass"
    out = Tiled(cddpm, tile=32, overlap=8)(torch.rand(1, 3, 40, 50, generator=gen(0)), generator=gen(1))
    assert out.shape == (1, 3, 40, 50) and torch.isfinite(out).all()
    base = UNet(3, 3, size="base")
    cost = tiling.pixel_cost(base)
    assert tiling.net_multiple(base) == 8
    for budget in (2 ** 20, 2 ** 30, int(2.5 * 2 ** 30), 2 ** 40):
        side = auto_tile(cost, budget, 8)
        assert 128 <= side <= 1024 and side % 16 == 0
        assert side == 128 or cost(side * side) <= budget
    assert auto_tile(cost, tiling.CPU_CAP, 8) >= 768               # benchmark-sized images are not tiled
    assert auto_tile(cost, None) == 512
    monkeypatch.setattr(tiling, "available_memory", lambda device: 2 ** 30)     # 1 GiB free: a quarter for tiles
    side, multiple, batch = Tiled(as_method(lambda v: v)).plan(torch.rand(1, 3, 8, 8))
    assert batch == 1 and side == 256                    # 4 KiB per pixel for an unknown method


def test_registry_wraps_neural_methods_only(tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    from diffdenoise.learned import CNNDenoiser
    from diffdenoise.registry import build_method
    from diffdenoise.train import export_weights
    net = tiny_dncnn(depth=5)
    kwargs = {"channels": 3, "depth": 5, "width": 8}
    export_weights(net, "dncnn-color", {"net": {"name": "dncnn", "kwargs": kwargs}}, tmp_path)
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    method = build_method("dncnn", tile=48)
    assert isinstance(method, Tiled) and method.blind == "pass"
    assert isinstance(build_method("dncnn", tile=None), CNNDenoiser)
    assert isinstance(build_method("dncnn", tile=0), CNNDenoiser)
    assert isinstance(build_method("dncnn"), Tiled)
    assert not isinstance(build_method("gaussian"), Tiled)
    with pytest.raises(DiffDenoiseError, match="does not take"):
        build_method("dncnn", steps=3)
    y = smooth_image(100, 120)
    whole = build_method("dncnn", tile=None)(y)
    assert psnr(method(y), whole) > 50
