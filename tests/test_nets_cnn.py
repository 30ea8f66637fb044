"""CNN baselines: shapes for odd sizes, gray and RGB, parameter counts, the Haar pair, the registry."""
import pytest
import torch

from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets import NETS, build_net
from diffdenoise.nets.cnn import HaarDWT, HaarIWT

CNNS = ["dncnn", "rednet", "mwcnn", "pridnet"]


@pytest.mark.parametrize("name", CNNS)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_odd_sizes(name, channels):
    net = build_net(name, channels=channels).eval()
    for h, w in [(17, 23), (5, 9)]:
        y = torch.rand(2, channels, h, w)
        with torch.no_grad():
            x_hat = net(y)
        assert x_hat.shape == y.shape and x_hat.dtype == torch.float32
        assert torch.isfinite(x_hat).all()


@pytest.mark.parametrize("name", CNNS)
def test_parameter_counts(name):
    n = sum(p.numel() for p in build_net(name, channels=3).parameters())
    print(f"{name}: {n / 1e6:.3f}M parameters (RGB)")
    if name == "dncnn":
        assert 0.55e6 < n < 0.57e6
    else:
        assert 1e6 <= n <= 8e6


def test_haar_pair_is_orthonormal_and_inverse():
    x = torch.randn(2, 3, 6, 10, dtype=torch.float64)
    dwt, iwt = HaarDWT().double(), HaarIWT().double()
    z = dwt(x)
    assert z.shape == (2, 12, 3, 5)
    torch.testing.assert_close(iwt(z), x)
    torch.testing.assert_close(z.norm(), x.norm())
    # constant image: all energy in the LL band (channel 4c), value 2 * constant
    c = dwt(torch.full((1, 1, 4, 4), 0.5, dtype=torch.float64))
    torch.testing.assert_close(c[:, 0], torch.ones(1, 2, 2, dtype=torch.float64))
    assert c[:, 1:].abs().max() == 0


def test_residual_nets_start_near_identity_shape_only_for_batch_one():
    # batch of one image in train mode must also work (BatchNorm with spatial statistics)
    net = build_net("dncnn", channels=1, depth=5, width=8).train()
    out = net(torch.rand(1, 1, 12, 12))
    out.mean().backward()


def test_registry():
    assert set(CNNS) | {"unet"} == set(NETS)
    with pytest.raises(DiffDenoiseError, match="valid: .*dncnn"):
        build_net("nope")
    with pytest.raises(DiffDenoiseError, match="dncnn"):
        build_net("dncnn", bogus=1)


def test_ffdnet_takes_a_level_or_a_map_and_any_size():
    from diffdenoise.nets.cnn import FFDNet
    torch.manual_seed(0)
    net = FFDNet(channels=3, depth=4, width=16).eval()
    y = torch.rand(2, 3, 13, 10)
    with torch.no_grad():
        by_float = net(y, 0.1)
        by_map = net(y, torch.full((2, 1, 13, 10), 0.1))
        by_values = net(y, torch.tensor([0.1, 0.2]))
    assert by_float.shape == y.shape and torch.allclose(by_float, by_map, atol=1e-6)
    assert torch.allclose(by_values[0], by_float[0], atol=1e-6) and not torch.allclose(by_values[1], by_float[1])
    first, middle, last = (13 * 9 + 1) * 96, 13 * (96 * 96 * 9 + 2 * 96), (96 * 9 + 1) * 12     # 15 layers, 96 ch
    assert sum(p.numel() for p in FFDNet(3, depth=15, width=96).parameters()) == first + middle + last
