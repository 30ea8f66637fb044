"""SVNR (SPEC 3.6): the VE schedule and its inverse, the sampler's analytic truths, the correlation of the training
states with y, and the denoiser contract with a tiny random-init UNet."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from diffdenoise.diffusion import svnr
from diffdenoise.diffusion.svnr import (SVNR, SVNRTask, correlated_state, net_time, sample_svnr, time_map,
                                        time_of_variance, variance_at, ve_variances)
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets.unet import UNet

G = ve_variances(5.0, 1000, "linear")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_net(channels: int = 3, cond: int | None = None, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    net = UNet(channels, channels, channels if cond is None else cond, size="tiny").eval()
    for p in net.parameters():          # random, non-zero output layer: the net really depends on its inputs
        if p.dim() > 1 and torch.count_nonzero(p) == 0:
            torch.nn.init.normal_(p, std=0.05)
    return net


def test_schedule_and_inverse():
    assert G.shape == (1001,) and G[0] == 0 and bool((G[1:] > G[:-1]).all())
    assert G[-1] == pytest.approx(5.0 * (1 - torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000,
                                                                             dtype=torch.float64), 0)[-1]))
    t = torch.cat([torch.arange(0, 1001, dtype=torch.float64), torch.rand(5000, generator=gen(0),
                                                                           dtype=torch.float64) * 1000])
    assert torch.allclose(time_of_variance(G, variance_at(G, t)), t, rtol=0, atol=1e-7)
    v = torch.rand(1000, generator=gen(1), dtype=torch.float64) * float(G[-1])
    assert torch.allclose(variance_at(G, time_of_variance(G, v)), v, rtol=1e-12, atol=1e-15)
    # the time map of a std s on [0, 1] has g = (2 s)^2 (model space [-1, 1]); beyond g_T it clamps to T
    s = torch.tensor([0.0, 5 / 255, 25 / 255, 50 / 255, 10.0])
    t_star = time_map(s, G)
    assert t_star[0] == 0 and t_star[-1] == 1000
    assert torch.allclose(variance_at(G, t_star[1:4]), (2 * s[1:4].double()) ** 2, rtol=1e-10)


def _problem(seed: int = 0, shape=(2, 3, 12, 10)):
    """x0 in model space, a per-channel time map with a zero region, y = x0 + sqrt(g*) eps."""
    x0 = torch.rand(shape, generator=gen(seed)) * 2 - 1
    sigma = torch.rand(shape, generator=gen(seed + 1)) * 0.25
    sigma[:, :, :4, :5] = 0.0                                   # noiseless block: t* = 0
    t_star = time_map(sigma, G)
    y = x0 + variance_at(G, t_star).sqrt().float() * torch.randn(shape, generator=gen(seed + 2))
    return x0, y, t_star


@pytest.mark.parametrize("steps", [1, 2, 25])
def test_oracle_returns_x0_exactly(steps):
    """With x0_hat = x0 the last step is x = (0 / g_t) x + (g_t / g_t) x0 = x0: exact in floating point (0 * x = 0
    and g_t / g_t = 1 exactly); pixels with t* = 0 keep y, which equals x0 there."""
    x0, y, t_star = _problem()
    out = sample_svnr(lambda x_t, t: x0, y, t_star, G, steps, gen(3))
    assert torch.equal(out, x0)


def test_oracle_net_through_the_denoiser():
    """Same truth through SVNR.__call__ and the [0, 1] <-> [-1, 1] maps: equal to float rounding."""
    x = torch.rand(2, 3, 16, 16, generator=gen(4))

    class Oracle(torch.nn.Module):
        in_channels = 3

        def forward(self, x_t, t, cond=None):
            assert t.shape == (x_t.shape[0], 1, *x_t.shape[-2:])
            return 2 * x - 1

    class EpsOracle(Oracle):
        def forward(self, x_t, t, cond=None):            # the eps that makes x_t - sqrt(g_t) eps = x0
            sd = variance_at(G, t.double() * 1000).sqrt().float()
            return torch.where(sd > 0, (x_t - (2 * x - 1)) / sd.clamp_min(1e-30), torch.zeros_like(x_t))

    s = torch.rand(2, 1, 16, 16, generator=gen(5)) * 0.2
    y = x + s * torch.randn(x.shape, generator=gen(6))
    out = SVNR(Oracle(), prediction="x0", steps=5)(y, s, generator=gen(7))
    assert (out - x).abs().max() < 1e-6
    out = SVNR(EpsOracle(), prediction="eps", steps=5)(y, s, generator=gen(7))
    assert (out - x).abs().max() < 1e-5


def test_zero_time_pixels_never_change():
    x0, y, t_star = _problem(10)
    states = []
    wild = lambda x_t, t: torch.randn(x_t.shape, generator=gen(int(t.sum()) % 1000)) * 3   # noqa: E731
    out = sample_svnr(wild, y, t_star, G, 7, gen(11), callback=states.append)
    frozen = t_star == 0
    assert frozen.any() and (~frozen).any()
    assert len(states) == 7
    for st in states:
        assert torch.equal(st["x"][frozen], y[frozen])
    assert torch.equal(out[frozen], y[frozen])
    assert not torch.equal(out[~frozen], y[~frozen])


def test_constant_time_map_equals_scalar_time():
    net = tiny_net()
    x_t, cond = torch.randn(2, 3, 8, 8, generator=gen(0)), torch.randn(2, 3, 8, 8, generator=gen(1))
    t = torch.tensor([0.013, 0.4])
    with torch.no_grad():
        a = net(x_t, t, cond=cond)
        b = net(x_t, t.view(2, 1, 1, 1).expand(2, 1, 8, 8).contiguous(), cond=cond)
    assert torch.allclose(a, b, atol=1e-5)
    # net_time: max over channels, over T, one channel
    tt = torch.tensor([[1.0, 7.0, 3.0]]).view(1, 3, 1, 1).expand(1, 3, 2, 2).double()
    assert torch.equal(net_time(tt, 1000), torch.full((1, 1, 2, 2), 0.007))


@pytest.mark.parametrize("naive", [False, True])
def test_training_state_covariance_with_y(naive):
    """Cov(x_t - x0, y - x0) = g_t per pixel (= sqrt(g_t g*) * corr, corr = sqrt(g_t / g*)); naive: 0."""
    m = 40000
    g_star = torch.tensor([0.0, 0.004, 0.02, 0.08, 0.08, 0.3], dtype=torch.float64).view(1, 1, 1, 6)
    g_t = torch.tensor([0.0, 0.001, 0.02, 0.01, 0.07, 0.15], dtype=torch.float64).view(1, 1, 1, 6)
    x0 = torch.rand(1, 1, 1, 6, generator=gen(0)).expand(m, 1, 1, 6)
    eps_T = torch.randn(m, 1, 1, 6, generator=gen(1))
    y = x0 + g_star.sqrt().float() * eps_T
    x_t = correlated_state(x0, eps_T, g_t, g_star, gen(2), naive=naive)
    a, b = (x_t - x0).double(), (y - x0).double()
    cov = (a * b).mean(0)
    expected = torch.zeros_like(g_t[0]) if naive else g_t[0]
    tol = 5 * ((g_t * g_star + expected ** 2) / m).sqrt()[0] + 1e-9
    assert bool(((cov - expected).abs() <= tol).all()), (cov, expected)
    assert torch.allclose(a.pow(2).mean(0), g_t[0], rtol=0.05, atol=1e-9)    # Var(x_t - x0) = g_t either way


def test_task_states_match_the_formula():
    """The task's own draws: E[(x_t - x0)(y - x0)] = E[g_t] per pixel, t* from the map, t = max(t* - t0, 0)."""
    task = SVNRTask(noise="poisson_gaussian:0.02,5", map_from="exact")
    x = torch.rand(1, 3, 2, 2, generator=gen(0)).expand(20000, 3, 2, 2).contiguous()
    d = task.inputs(x, gen(1))
    s = torch.sqrt(0.02 * x + (5 / 255) ** 2)
    assert torch.allclose(d["t_star"], time_map(s, G), atol=1e-6)
    assert bool((d["t"] <= d["t_star"]).all()) and bool((d["t"] >= 0).all())
    assert bool((d["t"] == 0).any())                            # the pixel at max t* with the largest shift
    prod = ((d["x_t"] - d["x0"]) * (d["y"] - d["x0"])).double().mean(0)
    expected = d["g_t"].mean(0)
    assert torch.allclose(prod, expected, rtol=0.06, atol=2e-4)


def test_observed_map_training_states():
    """map_from="observed" (the default): the time map is a function of y alone (the map a user can know), y's noise
    still follows the exact map, x_t = y at t = t*, and with a map that does not depend on x (spatial) the observed
    and exact constructions agree."""
    from diffdenoise.noise import parse_noise
    task = SVNRTask(noise="poisson_gaussian:0.02,5")
    assert task.map_from == "observed" and task.method_card()["map_from"] == "observed"
    x = torch.rand(64, 3, 12, 12, generator=gen(0))
    d = task.inputs(x, gen(1))
    y01 = (d["y"] + 1) / 2
    expected = time_map(parse_noise("poisson_gaussian:0.02,5").observed_map(y01), G)
    assert torch.allclose(d["t_star"], expected, atol=1e-6)          # t* from y only: nothing of x leaks in
    noise = (d["y"] - d["x0"]) / 2                                   # [0, 1] scale
    s = torch.sqrt(0.02 * x + (5 / 255) ** 2)
    z = (noise / s).double()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02          # y made with the exact map
    assert bool((d["t"] <= d["t_star"]).all())
    r = (d["g_t"] / d["g_star"]).clamp(0, 1)                         # x_t = x0 + r (y - x0) + sqrt(g_t (1 - r)) e': y at r = 1
    e = (d["x_t"] - d["x0"] - r.float() * (d["y"] - d["x0"])).double()
    mid = (r < 0.999) & (d["g_t"] > 1e-6)
    z = e[mid] / (d["g_t"] * (1 - r))[mid].sqrt()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert abs((z * (d["y"] - d["x0"]).double()[mid]).mean()) < 0.01             # fresh noise: independent of y
    spatial = [SVNRTask(noise="spatial:5,50", map_from=m).inputs(x, gen(2)) for m in ("observed", "exact")]
    for key in ("y", "t_star", "x_t"):
        assert torch.allclose(spatial[0][key], spatial[1][key], atol=1e-5), key
    with pytest.raises(DiffDenoiseError):
        SVNRTask(map_from="oracle")


def test_task_loss_and_noise_maps():
    x = torch.rand(4, 3, 16, 16, generator=gen(0))
    task = SVNRTask()                                           # the default mixture (PG, linear PG, spatial, AWGN)
    s = task.noise_map(x, gen(1))
    assert s.shape == x.shape and bool((s >= 0).all()) and bool(torch.isfinite(s).all())
    spatial = svnr.noise_std_map(svnr.SVNRTask(noise="spatial:5,50").components[0][0], x, gen(2))
    assert spatial.amin() >= 5 / 255 - 1e-6 and spatial.amax() <= 50 / 255 + 1e-6
    assert torch.allclose(spatial.amax(dim=(1, 2, 3)), torch.full((4,), 50 / 255), atol=1e-6)
    lin = SVNRTask(noise="linear:poisson_gaussian:0.01,0").noise_map(x, gen(3))
    from diffdenoise.noise import from_linear, to_linear
    v = to_linear(x)
    num = (from_linear(v + 1e-3 * (0.01 * v).sqrt()) - x) / 1e-3     # the propagated std, first order
    assert torch.allclose(lin, num, rtol=2e-2, atol=1e-4)
    for condition, naive, prediction in (("y", False, "eps"), ("y+std", True, "x0")):
        task = SVNRTask(condition=condition, naive=naive, prediction=prediction)
        kw = task.net_kwargs_defaults(types.SimpleNamespace(color="rgb"))
        net = UNet(**kw, size="tiny")
        loss = task.loss(net, {"x": x}, gen(4))
        loss.backward()
        assert loss.dim() == 0 and torch.isfinite(loss)
        card = task.method_card()
        assert card["name"] == "svnr" and card["prediction"] == prediction and card["naive"] == naive
        assert card["target"] == "x0"
    with pytest.raises(DiffDenoiseError):
        SVNRTask(condition="map")


@pytest.fixture
def fake_estimate(monkeypatch):
    """A stand-in for diffdenoise.estimate.estimate_noise_map (blind mode), whatever state that module is in."""
    calls = []

    def estimate_noise_map(y, method="pg"):
        calls.append(tuple(y.shape))
        return torch.full_like(y[:, :1], 0.05)

    mod = types.ModuleType("diffdenoise.estimate")
    mod.estimate_noise_map = estimate_noise_map
    monkeypatch.setitem(sys.modules, "diffdenoise.estimate", mod)
    return calls


def test_denoiser_contract(fake_estimate):
    net = tiny_net()
    method = SVNR(net, steps=2)
    y = torch.rand(2, 3, 16, 14, generator=gen(0))
    sigmas = [0.1, torch.full((2, 1, 16, 14), 0.1), torch.full((2, 3, 16, 14), 0.1), None]
    outs = []
    for s in sigmas:
        fractions = []
        out = method(y, s, generator=gen(1), progress=fractions.append)
        assert out.shape == y.shape and out.dtype == torch.float32 and out.device == y.device
        assert bool(torch.isfinite(out).all())
        assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
        outs.append(out)
    for out in outs[1:3]:                                       # a constant map is the scalar
        assert torch.allclose(out, outs[0], atol=1e-6)
    assert fake_estimate == [tuple(y.shape)]
    assert torch.equal(method(y, 0.1, generator=gen(1)), outs[0])                 # repeatable under a seed
    assert not torch.equal(method(y, 0.1, generator=gen(2)), outs[0])             # and stochastic
    per_image = method(y, 0.1, generator=[gen(1), gen(5)])
    assert torch.allclose(method(y[:1], 0.1, generator=[gen(1)]), per_image[:1], atol=1e-5)  # batch-independent
    assert torch.equal(method(y, 0.0), y)                                         # no noise: nothing to do
    gray = SVNR(net, steps=1)(y[:, :1], 0.1)                                      # gray image on a colour net
    assert gray.shape == (2, 1, 16, 14)
    colour = SVNR(tiny_net(1), steps=1)(y, 0.1)                                   # colour image on a gray net
    assert colour.shape == y.shape
    r = SVNR(net, steps=3, samples=2).run(y[:1], torch.rand(1, 1, 16, 14, generator=gen(3)) * 0.2,
                                          generator=gen(1), return_trajectory=True)
    assert r.time_map.shape == (1, 1, 16, 14) and r.evaluations == 6 and len(r.trajectory) == 3
    assert torch.equal(r.trajectory[-1]["t"], torch.zeros(1, 1, 16, 14))
    assert torch.equal(r.trajectory[-1]["x"], r.trajectory[-1]["x0_hat"])
    with pytest.raises(DiffDenoiseError):
        method(y, torch.zeros(2, 1, 5, 5))
    with pytest.raises(DiffDenoiseError):
        SVNR(net, steps=0)


def test_condition_with_std_channels():
    method = SVNR(tiny_net(3, cond=6), condition="y+std", steps=2)
    y = torch.rand(1, 3, 16, 16, generator=gen(0))
    assert method(y, 0.08, generator=gen(1)).shape == y.shape


def test_build_without_weights_names_the_files(tmp_path, monkeypatch):
    pytest.importorskip("diffdenoise.train.checkpoint")
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    from diffdenoise.registry import build_method
    with pytest.raises(DiffDenoiseError, match="svnr-color"):
        build_method("svnr")
    with pytest.raises(DiffDenoiseError, match="svnr-color-naive"):
        build_method("svnr", naive=True, steps=5)


def test_train_export_and_denoise_end_to_end(tmp_path, monkeypatch):
    """The svnr preset trains through train(cfg) (2 steps, tiny UNet), exports, and loads back as the method."""
    pytest.importorskip("safetensors")
    import numpy as np
    from PIL import Image

    from diffdenoise.registry import build_method
    from diffdenoise.train.checkpoint import export_weights
    from diffdenoise.train.config import load_config
    from diffdenoise.train.loop import train

    root = tmp_path / "data"
    (root / "bsds500" / "train").mkdir(parents=True)
    (root / "bsds500" / "test").mkdir()
    (root / "bsd400").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "bsds500" / "train" / f"{i}.jpg")
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "bsds500" / "test" / f"{i}.jpg")
        Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(root / "bsd400" / f"{i}.png")
    preset = Path(__file__).parents[1] / "configs" / "svnr-color.json"
    cfg = load_config(preset, [f"data_root={root}", f"out={tmp_path / 'run'}", "net_kwargs.size=tiny", "patch=32",
                               "batch=2", "steps=2", "warmup=1", "log_every=1", "save_every=2"])
    assert cfg.task == "svnr"
    ckpt = train(cfg)
    weights = tmp_path / "weights"
    export_weights(ckpt, "svnr-color", folder=weights)
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(weights))
    direct = SVNR.from_weights("svnr-color", steps=2)
    assert direct.prediction == "eps" and direct.channels == 3
    method = build_method("svnr", steps=2)
    y = torch.rand(1, 3, 24, 20, generator=gen(0))
    a = method(y, 0.1, generator=gen(1))
    assert a.shape == y.shape and torch.equal(a, direct(y, 0.1, generator=gen(1)))
    assert method(y[:, :1], 0.1, generator=gen(1)).shape == (1, 1, 24, 20)      # no svnr-gray: colour, adapted
