"""Geometric self-ensemble: exact inverses, exact averages of a known non-equivariant method, maps carried along."""
import pytest
import torch

from diffdenoise.cli import main
from diffdenoise.ensemble import ELEMENTS, SelfEnsemble, forward, inverse
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import quantize, read_image, write_image, Image
from diffdenoise.metrics import psnr
from diffdenoise.registry import build_method


def test_every_element_is_undone_and_all_differ():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)   # non-square: transposes show
    seen = []
    for e in ELEMENTS:
        y = forward(x, e)
        assert torch.equal(inverse(y, e), x)
        seen.append(y.flatten().tolist() + list(y.shape))
    assert len({tuple(s) for s in seen}) == 8


def _column_ramp(y, sigma=None, *, generator=None, progress=None):
    """Adds 0.01 x column index: a method whose output depends on orientation."""
    return y + 0.01 * torch.arange(y.shape[-1], dtype=y.dtype).view(1, 1, 1, -1)


def test_ensemble_of_two_averages_a_ramp_to_its_mean():
    y = torch.rand(1, 3, 6, 9)
    out = SelfEnsemble(_column_ramp, 2)(y)
    torch.testing.assert_close(out, y + 0.01 * 8 / 2)          # ramp and its mirror average to (W - 1) / 2
    out8 = SelfEnsemble(_column_ramp, 8)(torch.rand(1, 1, 7, 7))
    assert out8.shape == (1, 1, 7, 7)


def test_sigma_maps_follow_the_image_and_uncertainty_comes_back_in_place():
    class EchoMap:
        last_uncertainty = None

        def __call__(self, y, sigma=None, *, generator=None, progress=None):
            self.last_uncertainty = sigma.expand_as(y) * 2
            return sigma.expand_as(y).clone()
    smap = torch.rand(1, 1, 5, 8)
    ens = SelfEnsemble(EchoMap(), 8)
    torch.testing.assert_close(ens(torch.zeros(1, 3, 5, 8), smap), smap.expand(1, 3, 5, 8))
    torch.testing.assert_close(ens.last_uncertainty, 2 * smap.expand(1, 3, 5, 8))


def test_bad_sizes_and_classical_methods_are_refused():
    with pytest.raises(DiffDenoiseError, match="ensemble must be"):
        SelfEnsemble(_column_ramp, 3)
    with pytest.raises(DiffDenoiseError, match="ensemble must be"):
        build_method("dncnn", ensemble=5)
    with pytest.raises(DiffDenoiseError, match="does not take"):
        build_method("nlm", ensemble=2)


def test_cli_ensemble_with_shipped_dncnn_is_no_worse(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False)[0, 0].numpy()
    y = (x + 25 / 255 * torch.randn(48, 48, generator=g).numpy()).clip(0, 1)
    noisy = write_image(tmp_path / "n.png", Image(y[..., None].astype("float32"), None, 8))
    outs = {}
    for n in (1, 8):
        outs[n] = tmp_path / f"d{n}.png"
        assert main(["denoise", str(noisy), "-o", str(outs[n]), "--method", "dncnn", "--ensemble", str(n),
                     "-q"]) == 0
    p = {n: psnr(quantize(read_image(f).data)[..., 0], quantize(x)) for n, f in outs.items()}
    assert p[8] > p[1] - 0.1 and p[1] > psnr(quantize(y), quantize(x)) + 3
