"""Schedules, samplers and diffusion tasks: analytic truths and contracts (CPU, seconds)."""
from __future__ import annotations

import math

import pytest
import torch

from diffdenoise.diffusion import samplers, schedules
from diffdenoise.diffusion.ddpm import DDPMTask, schedule_abar
from diffdenoise.nets.unet import UNet


@pytest.fixture(scope="module")
def abar() -> torch.Tensor:
    return schedules.alphas_cumprod(schedules.linear_betas(1000))


def test_schedule_shapes_and_ranges():
    for betas in (schedules.linear_betas(1000), schedules.cosine_betas(1000)):
        assert betas.shape == (1000,) and betas.dtype == torch.float64
        assert float(betas.min()) > 0 and float(betas.max()) <= 0.999
        a = schedules.alphas_cumprod(betas)
        assert a.shape == (1001,) and a[0] == 1 and bool((a[1:] < a[:-1]).all())
    assert schedules.linear_betas(1000)[0] == pytest.approx(1e-4)
    assert schedules.linear_betas(1000)[-1] == pytest.approx(0.02)
    c = schedules.alphas_cumprod(schedules.cosine_betas(1000))
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2     # noqa: E731
    assert float(c[500]) == pytest.approx(f(500) / f(0), rel=1e-9)


def test_matched_step_table(abar):
    """SPEC 3.3: linear schedule, N = 33, 57, 115 for sigma = 15, 25, 50 (8-bit), index t = 1..T."""
    assert [schedules.matched_step(abar, s / 255) for s in (15, 25, 50)] == [33, 57, 115]
    per_image = schedules.matched_step(abar, torch.tensor([15 / 255, 25 / 255, 50 / 255]))
    assert per_image.tolist() == [33, 57, 115]


def test_spaced_steps():
    assert schedules.spaced_steps(57) == list(range(57, 0, -1))
    assert schedules.spaced_steps(57, 1) == [57]
    s = schedules.spaced_steps(57, 5)
    assert s[0] == 57 and len(s) == 5 and s == sorted(s, reverse=True) and s[-1] >= 1
    assert schedules.spaced_steps(3, 10) == [3, 2, 1]
    assert schedules.spaced_steps(0, 4) == []


def test_closed_form_marginal_matches_iterated_chain():
    """q(x_t | x0) = N(sqrt(abar_t) x0, 1 - abar_t) equals iterating x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) n."""
    g = torch.Generator().manual_seed(0)
    betas = schedules.linear_betas(200, 1e-4, 0.05)
    a = schedules.alphas_cumprod(betas)
    x0 = torch.tensor([-0.8, 0.0, 0.5], dtype=torch.float64).repeat(10000, 1)
    x = x0.clone()
    for t in range(1, 201):
        x = (1 - betas[t - 1]).sqrt() * x + betas[t - 1].sqrt() * torch.randn(x.shape, generator=g, dtype=x.dtype)
        if t in (1, 50, 200):
            mean, var = x.mean(0), x.var(0)
            assert torch.allclose(mean, a[t].sqrt() * x0[0], atol=0.03)
            assert torch.allclose(var, (1 - a[t]).expand(3), rtol=0.06, atol=3e-5)


def _oracle(x0: torch.Tensor, abar: torch.Tensor):
    def eps_model(x_t, t):
        a = abar[t] if not torch.is_tensor(t) else abar[t.long()]
        a = a.to(x_t.dtype)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()
    return eps_model


@pytest.mark.parametrize("start,steps", [(1000, None), (1000, 7), (57, None), (57, 3), (115, 1), (5, 2)])
def test_ddim_oracle_returns_x0(abar, start, steps):
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    a = abar[start]
    x = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    ts = schedules.spaced_steps(start, steps)
    out = samplers.ddim(_oracle(x0, abar), x, abar, ts, eta=0.0)
    assert torch.allclose(out, x0, atol=1e-9)
    out = samplers.ddim(_oracle(x0, abar), x, abar, ts, g, eta=1.0)
    assert torch.allclose(out, x0, atol=1e-9)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ancestral_oracle_returns_x0(abar, variance):
    g = torch.Generator().manual_seed(2)
    x0 = (torch.rand(2, 1, 8, 8, generator=g) * 2 - 1)
    x = torch.randn(x0.shape, generator=g)
    calls = []
    out = samplers.ancestral(_oracle(x0, abar), x, abar, range(1000, 0, -1), g, variance=variance,
                             progress=calls.append)
    assert torch.allclose(out, x0, atol=1e-4)
    assert len(calls) == 1000 and calls[-1] == 1.0


def test_per_pixel_steps(abar):
    """A step map: each pixel moves down its own chain; pixels at step 0 stay as they are."""
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    t_map = torch.tensor([0, 10, 57, 115] * 4).view(1, 1, 4, 4)
    a = abar[t_map]
    x = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    steps = [t_map, (t_map // 2), (t_map // 4)]
    out = samplers.ddim(_oracle(x0, abar), x, abar, steps)
    assert torch.allclose(out, x0, atol=1e-9)
    out = samplers.ancestral(_oracle(x0, abar), x, abar, steps, g)
    assert torch.allclose(out, x0, atol=1e-9)


def test_randomness_is_per_image(abar):
    eps_model = lambda x, t: torch.zeros_like(x)                             # noqa: E731
    x = torch.zeros(3, 1, 4, 4)
    gens = [torch.Generator().manual_seed(s) for s in (5, 6, 7)]
    full = samplers.ancestral(eps_model, x, abar, [20, 10], gens)
    one = samplers.ancestral(eps_model, x[1:2], abar, [20, 10], [torch.Generator().manual_seed(6)])
    assert torch.equal(full[1:2], one)


def test_guided_arithmetic():
    def eps_model(x, t, c):
        return x * 0 + c.view(-1, 1, 1, 1).float()
    x = torch.zeros(2, 1, 2, 2)
    cond, null = torch.tensor([3, 5]), torch.tensor([1, 1])
    for s in (0.0, 1.0, 2.5):
        e = samplers.guided(eps_model, s, cond, null)(x, 10)
        expected = 1 + s * (cond.float() - 1)
        assert torch.allclose(e[:, 0, 0, 0], expected)
    e = samplers.guided(eps_model, lambda x, t: torch.tensor([0.5, 2.0]).view(2, 1, 1, 1), cond, null,
                        batched=False)(x, 10)
    assert torch.allclose(e[:, 0, 0, 0], torch.tensor([2.0, 9.0]))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_prediction_conversions(abar, prediction):
    from diffdenoise.diffusion.ddpm import prediction_target
    g = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    a = abar[300]
    x_t = a.sqrt().float() * x0 + (1 - a).sqrt().float() * eps
    out = prediction_target(x0, eps, a, prediction)
    assert torch.allclose(samplers.to_x0(out, x_t, a, prediction), x0, atol=1e-5)
    assert torch.allclose(samplers.to_eps(out, x_t, a, prediction), eps, atol=1e-4)


def test_ddpm_loss_decreases():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = UNet(1, 1, size="tiny", num_classes=3, channels=(8, 16))
    task = DDPMTask(T=100, num_classes=3)
    x = torch.zeros(6, 1, 8, 8)
    x[:, :, 2:6, 2:6] = 1.0
    batch = {"x": x, "label": torch.tensor([0, 1, 2, 0, 1, 2])}
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = task.loss(net, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    card = task.method_card()
    assert card["name"] == "ddpm" and card["T"] == 100 and card["prediction"] == "eps"
    assert schedule_abar(card["schedule"], card["T"]).shape == (101,)


def test_conditioning_probability_formula_and_range():
    from diffdenoise.diffusion.cddpm import conditioning_probability
    c = torch.zeros(3, 1, 4, 4)
    x = torch.stack([torch.zeros(1, 4, 4), torch.full((1, 4, 4), 0.5), torch.full((1, 4, 4), 1e6)])
    p = conditioning_probability(x, c, tau=1.0)
    assert p[0] == 0 and p[1] == pytest.approx(1 - math.exp(-0.5)) and p[2] == pytest.approx(1.0)
    assert conditioning_probability(x, c, tau=2.0)[1] == pytest.approx(1 - math.exp(-0.25))
    g = torch.Generator().manual_seed(0)
    x_t, y = torch.randn(64, 3, 8, 8, generator=g), torch.rand(64, 3, 8, 8, generator=g) * 2 - 1
    p = conditioning_probability(x_t, y)
    assert bool(((p >= 0) & (p < 1)).all()) and 0.2 < float(p.mean()) < 0.8     # the seed's tau = 1 range


def test_bridge_state_marginal_and_entry(abar):
    """x_t on the bridge from x0 to y: marginal N(sqrt(abar_t) x0, 1 - abar_t); past the matched step it is
    sqrt(abar_t) y."""
    from diffdenoise.diffusion.cddpm import bridge_state
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1, 1, 1), 0.3, dtype=torch.float64)
    s = torch.full_like(x0, 2 * 50 / 255)
    w = s * torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    for t in (10, 60):
        a = abar[t].view(1, 1, 1, 1)
        x_t, eps_eff = bridge_state(x0, w, s, a, torch.randn(x0.shape, generator=g, dtype=x0.dtype))
        assert float(x_t.mean()) == pytest.approx(float(a.sqrt() * 0.3), abs=0.01)
        assert float(x_t.var()) == pytest.approx(float(1 - a), rel=0.05)
        assert torch.allclose(x_t, a.sqrt() * x0 + (1 - a).sqrt() * eps_eff)
    n = schedules.matched_step(abar, 50 / 255)
    a = abar[n + 5].view(1, 1, 1, 1)                                   # past the matched level: y itself
    x_t, _ = bridge_state(x0, w, s, a, torch.randn(x0.shape, generator=g, dtype=x0.dtype))
    assert torch.allclose(x_t, a.sqrt() * (x0 + w))


def _tiny_cddpm(noise: str = "gaussian:0..75"):
    from diffdenoise.diffusion.cddpm import CDDPMTask
    task = CDDPMTask(noise=noise)
    torch.manual_seed(0)
    net = UNet(3, 3, cond_channels=5, size="tiny", channels=(8, 16))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval(), {"method": task.method_card()}


@pytest.mark.parametrize("options", [{}, {"steps": 3, "sampler": "ancestral", "samples": 2},
                                     {"steps": 2, "mode": "expected"}, {"steps": 2, "mode": "stochastic"}])
def test_cddpm_denoiser_contract(options):
    from diffdenoise.diffusion.cddpm import build, build_prob
    net, card = _tiny_cddpm()
    den = (build_prob if "mode" in options else build)("cpu", net=net, card=card, **options)
    g = torch.Generator().manual_seed(0)
    y = torch.rand(3, 3, 11, 9, generator=g)
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]       # noqa: E731
    a = den(y, 25 / 255, generator=gens([0, 1, 2]))
    assert a.shape == y.shape and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.allclose(a, den(y, 25 / 255, generator=gens([0, 1, 2])))
    assert torch.allclose(a[1:2], den(y[1:2], 25 / 255, generator=gens([1])), atol=1e-5)
    assert den(y[:, :1], 25 / 255, generator=gens([0, 1, 2])).shape == (3, 1, 11, 9)
    smap = torch.full((3, 1, 11, 9), 25 / 255)
    assert torch.allclose(den(y, smap, generator=gens([0, 1, 2])), a, atol=1e-5)
    calls = []
    den(y[:1], 0.1, progress=calls.append)
    assert calls and calls[-1] == pytest.approx(1.0)


def test_cddpm_blind_uses_the_estimate(monkeypatch):
    import diffdenoise.estimate as est
    from diffdenoise.diffusion.cddpm import build
    net, card = _tiny_cddpm()
    monkeypatch.setattr(est, "estimate_sigma", lambda y: 25 / 255)
    out = build("cpu", net=net, card=card)(torch.rand(1, 3, 8, 8), None)
    assert out.shape == (1, 3, 8, 8)


def test_cddpm_task_losses_and_impute():
    from diffdenoise.diffusion.cddpm import CDDPMTask, build_impute
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=g)
    for options in ({}, {"prob_conditioning": True}, {"prediction": "v"}, {"start": "noise"},
                    {"noise": "missing:0.2..0.9"}):
        task = CDDPMTask(**options)
        net = UNet(3, 3, cond_channels=5, size="tiny", channels=(8, 16))
        loss = task.loss(net, {"x": x}, g)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
    with pytest.raises(ValueError, match="cond_channels"):
        CDDPMTask().loss(UNet(3, 3, cond_channels=3, size="tiny"), {"x": x}, g)
    net, card = _tiny_cddpm("missing:0.5")
    y, mask = torch.rand(2, 3, 8, 8, generator=g), (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    out = build_impute("cpu", steps=3, net=net, card=card)(y, mask, generator=torch.Generator().manual_seed(1))
    assert out.shape == y.shape and torch.equal(out * mask, y * mask)


def test_ddpm_match_contract():
    from diffdenoise.diffusion.ddpm_match import build
    task = DDPMTask(T=1000)
    torch.manual_seed(0)
    net = UNet(3, 3, size="tiny", channels=(8, 16))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    card = {"method": task.method_card()}
    y = torch.rand(2, 3, 7, 9)
    for options in ({"steps": 4}, {"steps": 3, "sampler": "ancestral", "samples": 2, "repeat_last": 2},
                    {"steps": 2, "offset": -10}):
        den = build("cpu", net=net.eval(), card=card, **options)
        gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
        a = den(y, 15 / 255, generator=gens)
        assert a.shape == y.shape and torch.isfinite(a).all()
        assert torch.allclose(a[1:], den(y[1:], 15 / 255, generator=[torch.Generator().manual_seed(1)]), atol=1e-5)
        assert den(y[:, :1], 15 / 255).shape == (2, 1, 7, 9)
    assert build("cpu", net=net, card=card).start_step(25 / 255) == 57
    assert torch.equal(build("cpu", net=net, card=card)(y, 0.0), y)


@pytest.mark.parametrize("preset,method", [("cddpm-gaussian", "cddpm"), ("ddpm-natural", "ddpm-match")])
def test_preset_trains_exports_and_loads_as_method(tmp_path, monkeypatch, preset, method):
    """The preset trains through train(cfg) (2 steps, tiny UNet), exports and loads back through the registry."""
    pytest.importorskip("safetensors")
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from diffdenoise.registry import build_method
    from diffdenoise.train.checkpoint import export_weights
    from diffdenoise.train.config import load_config
    from diffdenoise.train.loop import train

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for folder, shape, ext in (("bsds500/train", (40, 48, 3), "jpg"), ("bsds500/test", (40, 48, 3), "jpg"),
                               ("bsd400", (40, 40), "png"), ("t91", (40, 44, 3), "bmp")):
        (root / folder).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / folder / f"0.{ext}")
    cfg = load_config(Path(__file__).parents[1] / "configs" / f"{preset}.json",
                      [f"data_root={root}", f"out={tmp_path / 'run'}", "net_kwargs.size=tiny",
                       "net_kwargs.channels=[8,16]", "patch=16", "batch=2", "steps=2", "warmup=1", "log_every=1"])
    weights = tmp_path / "weights"
    export_weights(train(cfg), preset, folder=weights)
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(weights))
    den = build_method(method, steps=2)
    y = torch.rand(1, 3, 12, 10)
    out = den(y, 25 / 255, generator=torch.Generator().manual_seed(0))
    assert out.shape == y.shape and torch.isfinite(out).all()


def test_ddpm_focus_steps_share_and_range():
    """focus_fraction of the batch draws t from 1..focus_steps; the rest stays uniform over 1..T."""
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, label=None, cond=None):
            seen.append(t * 1000)
            return torch.zeros_like(x)

    task = DDPMTask(T=1000, focus_steps=200, focus_fraction=0.5)
    g = torch.Generator().manual_seed(0)
    task.loss(Spy(), {"x": torch.rand(4000, 1, 2, 2)}, g)
    t = seen[0].round()
    assert float(t.min()) >= 1 and float(t.max()) <= 1000
    low = float((t <= 200).float().mean())      # 0.5 + 0.5 * 0.2 expected
    assert abs(low - 0.6) < 0.03
    assert task.method_card()["focus_steps"] == 200
    with pytest.raises(ValueError):
        DDPMTask(T=100, focus_steps=200, focus_fraction=0.5)
