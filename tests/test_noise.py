"""Noise models: one contract suite over every model, then analytic checks (empirical variance = sigma_map^2),
spec strings and ranges."""
import math

import pytest
import torch

from diffdenoise.errors import DiffDenoiseError
from diffdenoise.noise import (NOISE_MODELS, Camera, Gaussian, Noisy, PoissonGaussian, Range, from_linear,
                               get_noise_model, inverse_smoothstep, parse_noise, smoothstep, spec, to_linear)
from diffdenoise.noise.camera import bayer_masks, demosaic, jpeg_roundtrip, mosaic

SPECS = [
    "gaussian:25", "gaussian:0..55", "poisson_gaussian:0.01,2", "poisson_gaussian:0.01,2,exact=true",
    "spatial:5,50", "camera", "camera:gamma=srgb,jpeg=true,highlights=false",
    "camera:shot=0.002,read=1e-05,colour=mean", "camera:mode=full", "impulse:0.1", "speckle:0.2", "missing:0.3",
]


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def smooth_image(n, c, h=24, w=20):
    yy = torch.linspace(0.1, 0.9, h)[:, None]
    xx = torch.linspace(0.2, 0.8, w)[None, :]
    base = 0.5 * yy + 0.5 * xx
    img = torch.stack([(base + 0.1 * k) % 1.0 for k in range(n * c)]).reshape(n, c, h, w)
    return img.float()


def test_registry_covers_spec_section_2():
    assert set(NOISE_MODELS) == {"gaussian", "poisson_gaussian", "spatial", "camera", "impulse", "speckle",
                                 "missing"}
    for name in {s.split(":")[0] for s in SPECS}:
        assert get_noise_model(name).name == name


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("text", SPECS)
def test_contract(text, channels):
    model = parse_noise(text)
    x = smooth_image(3, channels)
    x_before = x.clone()
    d = model.draw(x, gens(10, 11, 12))
    assert isinstance(d, Noisy)
    assert d.y.shape == x.shape and d.y.dtype == torch.float32
    assert d.sigma_map.shape == x.shape and d.sigma_map.dtype == torch.float32
    assert torch.isfinite(d.y).all() and torch.isfinite(d.sigma_map).all() and (d.sigma_map >= 0).all()
    if d.mask is not None:
        assert d.mask.shape == (3, 1, *x.shape[2:]) and set(d.mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(x, x_before)

    again = model.draw(x, gens(10, 11, 12))
    assert torch.equal(d.y, again.y) and torch.equal(d.sigma_map, again.sigma_map)
    assert torch.equal(model.sample(x, gens(10, 11, 12)), d.y)
    assert not torch.equal(model.sample(x, gens(20, 21, 22)), d.y)

    for i, seed in enumerate((10, 11, 12)):
        alone = model.draw(x[i:i + 1], gens(seed))
        assert torch.equal(alone.y[0], d.y[i]) and torch.equal(alone.sigma_map[0], d.sigma_map[i])

    if model.random_map:
        with pytest.raises(DiffDenoiseError, match="draw"):
            model.sigma_map(x)
    else:
        torch.testing.assert_close(model.sigma_map(x), d.sigma_map)
    assert parse_noise(spec(model)) == model


def test_one_generator_is_shared_in_batch_order():
    model = Gaussian(0.1)
    x = torch.zeros(2, 1, 8, 8)
    y = model.sample(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    first, second = model.sample(x[:1], g), model.sample(x[:1], g)
    assert torch.equal(y, torch.cat([first, second]))


def test_wrong_number_of_generators():
    with pytest.raises(ValueError, match="one per image"):
        Gaussian(0.1).draw(torch.zeros(3, 1, 4, 4), gens(1, 2))


def test_bad_input_shape():
    with pytest.raises(DiffDenoiseError, match="N x C x H x W"):
        Gaussian(0.1).draw(torch.zeros(4, 4))


def _levels(values, n=1, size=192):
    """n x C x size x size image whose channel c is the constant values[c]."""
    return torch.tensor(values, dtype=torch.float32)[None, :, None, None].expand(n, -1, size, size).contiguous()


def _assert_variance_matches(y, x, s, rel=None, zero_mean=True):
    """Per channel, var(y - x) = mean(s^2) to sampling error (4 standard errors of a Gaussian variance)."""
    for c in range(x.shape[1]):
        e = (y - x)[:, c].flatten().double()
        n = e.numel()
        target = s[:, c].double().pow(2).mean()
        tol = rel if rel is not None else 4 * math.sqrt(2 / n)
        assert not zero_mean or abs(e.mean()) < 4 * math.sqrt(target / n) + 1e-12
        assert abs(e.var() / target - 1) < tol, (c, float(e.var()), float(target))


@pytest.mark.parametrize("text", ["gaussian:25", "poisson_gaussian:0.01,3", "poisson_gaussian:0.01,3,exact=true",
                                  "speckle:0.3"])
def test_empirical_variance_matches_map(text):
    model = parse_noise(text)
    x = _levels([0.1, 0.5, 0.9])
    d = model.draw(x, gens(0))
    torch.testing.assert_close(d.sigma_map, model.sigma_map(x))
    _assert_variance_matches(d.y, x, d.sigma_map)


def test_poisson_gaussian_values():
    model = parse_noise("poisson_gaussian:0.02,5")
    assert model.a == 0.02 and model.b == pytest.approx(5 / 255)
    x = _levels([0.25], size=4)
    torch.testing.assert_close(model.sigma_map(x), torch.full_like(x, math.sqrt(0.02 * 0.25 + (5 / 255) ** 2)))
    exact = PoissonGaussian(0.05, 0.0, exact=True).sample(x, gens(0))
    counts = exact / 0.05
    torch.testing.assert_close(counts, counts.round())          # a * integer counts when b = 0


def test_spatial_map_spans_range_and_whitens():
    model = parse_noise("spatial:5,50")
    x = _levels([0.3, 0.6, 0.5], n=2, size=128)
    d = model.draw(x, gens(4, 5))
    for s in d.sigma_map:
        assert s.min().item() == pytest.approx(5 / 255, abs=1e-6)
        assert s.max().item() == pytest.approx(50 / 255, abs=1e-6)
        assert torch.equal(s[0], s[1])                            # one map shared by the channels
    assert not torch.equal(d.sigma_map[0], d.sigma_map[1])
    z = ((d.y - x) / d.sigma_map).flatten().double()
    assert abs(z.mean()) < 4 / math.sqrt(z.numel())
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / z.numel())
    # Smooth: neighbouring pixels differ by a small fraction of the span.
    assert (d.sigma_map[..., 1:] - d.sigma_map[..., :-1]).abs().max() < 0.1 * 45 / 255


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("text", ["camera", "camera:shot=0.012,read=0.0003", "camera:gamma=srgb,shot=1e-4",
                                  "camera:mode=full"])
def test_camera_noise_matches_propagated_map_on_flat_gray(text, channels):
    model = parse_noise(text)
    x = torch.full((3, channels, 64, 64), 0.5)
    d = model.draw(x, gens(0, 1, 2))
    e = d.y - x
    empirical = e.std(dim=(2, 3))
    predicted = d.sigma_map.pow(2).mean(dim=(2, 3)).sqrt()
    ratio = empirical / predicted
    assert ((ratio > 0.67) & (ratio < 1.5)).all(), ratio
    assert e.mean(dim=(2, 3)).abs().max() < 0.05                # noise is nearly zero-mean at mid gray


def test_camera_output_stays_near_input():
    x = smooth_image(2, 3, 48, 48)
    # The default mode adds the noise alone, so this first check is now about mode=full (Brooks' output), where the
    # clean pipeline nearly inverts unprocessing on a smooth image.
    y = Camera(shot=1e-4, read=1e-7, mode="full").sample(x, gens(0, 1))
    assert (y - x).abs().mean() < 0.02
    for text in ("camera", "camera:mode=full"):
        y = parse_noise(text).sample(x, gens(0, 1))
        assert (y - x).abs().mean() < 0.1 and y.min() >= 0 and y.max() <= 1


def _sharp_image(n, c, h=48, w=40, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("text", ["camera:shot=0,read=0", "camera:shot=0,read=0,gamma=srgb,highlights=false"])
def test_camera_zero_noise_returns_the_input(text, channels):
    x = _sharp_image(3, channels)
    d = parse_noise(text).draw(x, gens(0, 1, 2))
    assert torch.equal(d.y, x)                                  # the pipeline's own error is not added
    assert (d.sigma_map == 0).all()
    # mode=full shows that error: bilinear demosaicking of the re-mosaicked sharp image.
    y_full = parse_noise(text + ",mode=full").sample(x, gens(0, 1, 2))
    assert (y_full - x).pow(2).mean() > 1e-3                    # below 30 dB


def test_camera_zero_noise_with_jpeg_is_jpeg_of_the_input():
    x = _sharp_image(2, 3)
    y = parse_noise("camera:shot=0,read=0,jpeg=true,quality=80").sample(x, gens(0, 1))
    assert torch.equal(y, jpeg_roundtrip(x, 80))                # JPEG is the one step that alters the content


@pytest.mark.parametrize("channels", [1, 3])
def test_camera_noise_mode_adds_the_pipeline_noise_only(channels):
    """y - x = ISP(noisy raw) - ISP(clean raw) with the same camera: mode=full's output minus its zero-noise output
    (same seeds give the same camera and noise field), wherever the final clip of x + noise is inactive."""
    x = _sharp_image(2, channels)
    y = parse_noise("camera:shot=0.004,read=1e-4").sample(x, gens(3, 4))
    noisy = parse_noise("camera:shot=0.004,read=1e-4,mode=full").sample(x, gens(3, 4))
    clean = parse_noise("camera:shot=0,read=0,mode=full").sample(x, gens(3, 4))
    inside = (y > 0) & (y < 1)
    assert inside.float().mean() > 0.8
    torch.testing.assert_close((y - x)[inside], (noisy - clean)[inside], atol=1e-6, rtol=0)


def test_camera_map_matches_noise_on_sharp_image():
    """The propagated map describes y - x in the default mode on a sharp image too (the map is evaluated at the clean
    pipeline's values); in mode=full y - x also holds the demosaicking error, far above the map."""
    x = 0.2 + 0.6 * _sharp_image(3, 3, 64, 64)
    for text, lo, hi in [("camera", 0.8, 1.25), ("camera:shot=0.012,read=3e-4", 0.8, 1.25),
                         ("camera:mode=full", 2.0, math.inf)]:
        d = parse_noise(text).draw(x, gens(0, 1, 2))
        ratio = (d.y - x).std(dim=(2, 3)) / d.sigma_map.pow(2).mean(dim=(2, 3)).sqrt()
        assert ((ratio > lo) & (ratio < hi)).all(), (text, ratio)


@pytest.mark.parametrize("shape", [(5, 3, 13, 17), (3, 3, 70, 75), (4, 1, 33, 31)])
@pytest.mark.parametrize("text", ["camera", "camera:gamma=srgb,mode=full,jpeg=true"])
def test_camera_batch_invariance_is_exact(text, shape):
    """The batch runs through the pipeline at once; image i must still equal its batch-of-one draw bit for bit, also
    at sizes where CPU kernels' vector blocks and thread chunks fall differently (odd sizes, several threads)."""
    model = parse_noise(text)
    x = _sharp_image(*shape)
    d = model.draw(x, gens(*range(shape[0])))
    for i in range(shape[0]):
        alone = model.draw(x[i:i + 1], gens(i))
        assert torch.equal(alone.y[0], d.y[i]) and torch.equal(alone.sigma_map[0], d.sigma_map[i])


def test_camera_one_generator_draws_images_in_batch_order():
    model = parse_noise("camera:jpeg=true")
    x = _sharp_image(2, 3)
    y = model.sample(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    first, second = model.sample(x[:1], g), model.sample(x[1:], g)
    assert torch.equal(y, torch.cat([first, second]))


def test_camera_draws_its_camera_per_image():
    x = torch.full((2, 3, 32, 32), 0.4)
    d = parse_noise("camera").draw(x, gens(7, 8))
    assert not torch.allclose(d.sigma_map[0], d.sigma_map[1])
    fixed = parse_noise("camera:shot=0.002,read=1e-5,colour=mean")
    assert not fixed.random_map
    m = fixed.draw(x, gens(7, 8)).sigma_map
    torch.testing.assert_close(m[0], m[1])


def test_camera_jpeg_gives_8bit_values():
    x = smooth_image(1, 3, 32, 32)
    y = parse_noise("camera:jpeg=true,quality=75").sample(x, gens(0))
    torch.testing.assert_close(y * 255, (y * 255).round(), atol=1e-4, rtol=0)


def test_demosaic_is_exact_on_constant_colour_and_interpolates():
    rgb = torch.tensor([0.7, 0.4, 0.2])[None, :, None, None].expand(1, 3, 7, 9)
    torch.testing.assert_close(demosaic(mosaic(rgb)), rgb)
    masks = bayer_masks(4, 4)
    assert masks.sum(1).eq(1).all() and masks[0, 1].sum() == 8    # RGGB: half the sites are green


def test_missing_mask():
    x = smooth_image(2, 3, 100, 100)
    d = parse_noise("missing:0.3").draw(x, gens(0, 1))
    n = d.mask.numel()
    assert abs(d.mask.mean().item() - 0.7) < 4 * math.sqrt(0.21 / n)
    assert torch.equal(d.y, x * d.mask)
    assert (d.sigma_map[d.mask.expand_as(x) == 1] == 0).all()
    assert (d.sigma_map[d.mask.expand_as(x) == 0] == 1).all()


def test_impulse_fraction_values_and_map():
    x = _levels([0.2, 0.5, 0.7], n=2, size=100)
    model = parse_noise("impulse:0.2")
    d = model.draw(x, gens(0, 1))
    hit = d.mask == 0
    n = hit.numel()
    assert abs(hit.float().mean().item() - 0.2) < 4 * math.sqrt(0.16 / n)
    corrupted = d.y.permute(1, 0, 2, 3)[:, hit.squeeze(1)]     # C x (number of hit pixels)
    assert set(corrupted.unique().tolist()) <= {0.0, 1.0}
    assert (corrupted == corrupted[:1]).all()                    # all channels of a pixel together
    assert torch.equal(d.y[~hit.expand_as(x)], x[~hit.expand_as(x)])
    _assert_variance_matches(d.y, x, d.sigma_map, rel=0.05, zero_mean=False)   # impulse noise has a bias


def test_spec_units_and_round_trip():
    assert parse_noise("gaussian:25").sigma == pytest.approx(25 / 255)
    assert parse_noise("gaussian:sigma=25") == parse_noise(" Gaussian : 25 ")
    assert parse_noise("spatial:5,50") == parse_noise("spatial:sigma_max=50,sigma_min=5")
    assert parse_noise("speckle:0.2").sigma == 0.2
    assert parse_noise("poisson_gaussian:0.01,2,true").exact
    assert parse_noise("gaussian:0..55").sigma == Range(0.0, 55 / 255)
    for text in SPECS + ["camera:quality=90,jpeg=true", "camera:shot=1e-4..0.01", "impulse:0..0.3",
                         "camera:mode=full,shot=0,read=0", "camera:mode=noise"]:
        model = parse_noise(text)
        assert parse_noise(spec(model)) == model
        assert spec(parse_noise(spec(model))) == spec(model) == str(model)
    assert spec(Gaussian(25 / 255)) == "gaussian:25"
    assert spec(Camera()) == "camera" == spec(parse_noise("camera:mode=noise"))   # defaults are not shown
    assert spec(Camera(mode="full", jpeg=True)) == "camera:jpeg=true,mode=full"
    assert parse_noise(Gaussian(0.1)) == Gaussian(0.1)


@pytest.mark.parametrize("text, message", [
    ("nope:3", "valid: camera, gaussian, impulse, missing, poisson_gaussian, spatial, speckle"),
    ("gaussian", "needs sigma"),
    ("gaussian:", "needs sigma"),
    ("gaussian:-1", ">= 0"),
    ("gaussian:abc", "number or a range"),
    ("gaussian:5,6", "at most 1"),
    ("gaussian:sigma=5,sigma=6", "twice"),
    ("gaussian:s=5", "no parameter 's'"),
    ("gaussian:9..3", "empty"),
    ("gaussian:inf", "finite"),
    ("poisson_gaussian:0.1", "needs b"),
    ("poisson_gaussian:exact=true,0.1,2", "before key=value"),
    ("impulse:1.5", "in [0, 1]"),
    ("missing:-0.1..0.5", "in [0, 1]"),
    ("spatial:50,5", "must not exceed"),
    ("camera:gamma=2.4", "one of"),
    ("camera:jpeg=perhaps", "true or false"),
    ("camera:quality=0", "in [1, 100]"),
    ("camera:mode=raw", "one of"),
])
def test_bad_specs_raise_one_line(text, message):
    with pytest.raises(DiffDenoiseError, match=None) as err:
        parse_noise(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_constructor_values():
    with pytest.raises(DiffDenoiseError):
        Gaussian(-0.1)
    with pytest.raises(DiffDenoiseError):
        Gaussian("0.1")
    with pytest.raises(DiffDenoiseError):
        PoissonGaussian(0.1, 0.0, exact=1)


def test_ranges_draw_per_image_and_are_deterministic():
    model = parse_noise("gaussian:0..55")
    assert model.random_map
    x = torch.full((6, 1, 64, 64), 0.5)
    seeds = (0, 1, 2, 3, 4, 5)
    d = model.draw(x, gens(*seeds))
    sigmas = d.sigma_map[:, 0, 0, 0]
    assert (d.sigma_map == sigmas[:, None, None, None]).all()     # one sigma per image, constant over it
    assert len(set(sigmas.tolist())) == 6
    assert ((sigmas >= 0) & (sigmas <= 55 / 255)).all()
    torch.testing.assert_close(model.draw(x, gens(*seeds)).sigma_map, d.sigma_map, rtol=0, atol=0)
    torch.testing.assert_close(model.draw(x[2:3], gens(2)).sigma_map[0], d.sigma_map[2], rtol=0, atol=0)
    empirical = (d.y - x).std(dim=(1, 2, 3))
    torch.testing.assert_close(empirical, sigmas, rtol=0.05, atol=1e-3)


def test_transfer_curves_invert():
    v = torch.linspace(-0.2, 1.2, 301)
    for curve in ("srgb", "2.2"):
        torch.testing.assert_close(to_linear(from_linear(v, curve), curve), v, atol=1e-5, rtol=1e-4)
    assert to_linear(torch.tensor(0.5)).item() == pytest.approx(0.21404, abs=1e-5)
    u = torch.linspace(0, 1, 101)
    torch.testing.assert_close(smoothstep(inverse_smoothstep(u)), u, atol=1e-5, rtol=0)


def test_observed_map_never_reads_the_clean_image():
    """observed_map(y) is the user's map: for Poisson-Gaussian the model map at the local mean of y (equal to the
    true map on a flat image), for signal-independent noise the map itself."""
    from diffdenoise.noise import parse_noise
    pg = parse_noise("poisson_gaussian:0.01,5")
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert pg.signal_dependent and torch.allclose(pg.observed_map(flat), pg.sigma_map(flat))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=g)
    d = pg.draw(x, g)
    obs = pg.observed_map(d.y)
    assert obs.shape == x.shape and not torch.allclose(obs, d.sigma_map, atol=1e-3)
    x2 = torch.rand(1, 3, 32, 32, generator=g)                      # another clean image, the same observation
    assert torch.equal(pg.observed_map(d.y), obs)
    gauss = parse_noise("gaussian:25")
    assert not gauss.signal_dependent
    assert torch.allclose(gauss.observed_map(x2), torch.full_like(x2, 25 / 255))
