"""realdiff (SPEC 3.5): forward process, both samplers under an oracle, the loss, training, the denoiser call."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffdenoise.diffusion import realdiff as rd
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets.unet import UNet


@pytest.fixture(autouse=True)
def _one_thread():
    """The CI machine is shared: one intra-op thread is much faster than two contended ones for these tiny nets."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pair(n=2, c=3, h=12, w=10, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, c, h, w, generator=g, dtype=dtype)
    y = x0 + 0.1 * torch.randn(n, c, h, w, generator=g, dtype=dtype)
    return x0, y


def _smooth(n, c, size, g):
    low = torch.rand(n, c, size // 8, size // 8, generator=g)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def test_forward_process_endpoints_and_linearity():
    x0, y = _pair()
    T = 7
    assert torch.equal(rd.interpolate(x0, y, 0, T), x0)
    assert torch.allclose(rd.interpolate(x0, y, T, T), y, atol=0, rtol=0)
    xs = torch.stack([rd.interpolate(x0, y, t, T) for t in range(T + 1)])
    steps = xs[1:] - xs[:-1]                                     # equal increments (y - x0)/T: linear in t
    assert torch.allclose(steps, ((y - x0) / T).expand_as(steps), atol=1e-12)
    t = torch.tensor([0, T])                                     # per-image steps
    both = rd.interpolate(x0, y, t, T)
    assert torch.equal(both[0], x0[0]) and torch.allclose(both[1], y[1], atol=1e-15)


@pytest.mark.parametrize("sampler", ["origin", "improved"])
@pytest.mark.parametrize("T,steps", [(1, 1), (5, None), (10, 3), (20, 20), (20, 7), (13, 1)])
def test_oracle_recovers_x0_exactly(sampler, T, steps):
    x0, y = _pair()
    from diffdenoise.diffusion.schedules import spaced_steps
    timesteps = spaced_steps(T, steps)
    assert timesteps[0] == T and len(timesteps) == min(steps or T, T)
    seen = []

    def on_step(i, t, x_t, x0_hat):                              # every visited state lies on the forward path
        seen.append(t)
        assert torch.allclose(x_t, rd.interpolate(x0, y, t, T), atol=1e-12)

    out = rd.SAMPLERS[sampler](lambda x, t: x0, y.clone(), y, T, timesteps, callback=on_step)
    assert seen == timesteps
    assert torch.allclose(out, x0, atol=1e-12, rtol=0)


def test_improved_update_is_x_plus_residual_over_T():
    x0, y = _pair(seed=1)
    T = 6
    g = torch.Generator().manual_seed(3)
    fake = [torch.rand(x0.shape, generator=g, dtype=x0.dtype) for _ in range(T)]   # an imperfect "network"
    states = []

    def model(x, t):
        states.append(x.clone())
        return fake[T - t]

    out = rd.improved_sampling(model, y.clone(), y, T, list(range(T, 0, -1)))
    states.append(out)
    for i in range(T):
        assert torch.allclose(states[i + 1], states[i] + (fake[i] - y) / T, atol=1e-12)
    # a sub-sequence step t -> s moves by (t - s)/T (x0_hat - y)
    out2 = rd.improved_sampling(lambda x, t: fake[0], y.clone(), y, T, [6, 2])
    assert torch.allclose(out2, y + (fake[0] - y), atol=1e-12)
    # origin sampling re-interpolates from the estimate: the result is the last x0_hat
    out3 = rd.origin_sampling(lambda x, t: fake[T - t], y.clone(), y, T, [6, 3, 1])
    assert torch.equal(out3, fake[T - 1])


def test_samplers_reject_bad_steps():
    x0, y = _pair()
    with pytest.raises(ValueError):
        rd.improved_sampling(lambda x, t: x0, y, y, 5, [6, 2])
    with pytest.raises(ValueError):
        rd.origin_sampling(lambda x, t: x0, y, y, 5, [2, 4])


def test_charbonnier_known_value():
    x = torch.zeros(1, 1, 2, 2)
    x_hat = torch.tensor([[[[0.0, 0.001], [0.003, -0.004]]]])
    want = (math.sqrt(1e-6) + math.sqrt(2e-6) + math.sqrt(1e-5) + math.sqrt(1.7e-5)) / 4
    assert rd.charbonnier(x_hat, x).item() == pytest.approx(want, rel=1e-6)
    assert rd.charbonnier(x, x).item() == pytest.approx(1e-3, rel=1e-6)


def _tiny(c=3, cond=0):
    torch.manual_seed(0)
    return UNet(c, c, cond_channels=cond, size="tiny")


def test_task_loss_paired_rows_and_card():
    task = rd.RealDiffTask(T=4, noise="gaussian:10")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g)
    y_real = x + 0.05
    batch = {"x": x, "y": torch.cat([y_real[:2], torch.full_like(x[2:], float("nan"))]),
             "paired": torch.tensor([True, True, False, False])}
    y = task.noisy(batch, g)
    assert torch.equal(y[:2], y_real[:2]) and torch.isfinite(y).all()
    assert not torch.allclose(y[2:], x[2:])
    loss = task.loss(_tiny(), batch, g)
    assert loss.dim() == 0 and torch.isfinite(loss)
    card = task.method_card()
    assert card["name"] == "realdiff" and card["T"] == 4 and card["condition_on_y"] is False
    cfg = type("Cfg", (), {"color": "gray"})()
    assert task.net_kwargs_defaults(cfg) == {"in_channels": 1, "out_channels": 1, "cond_channels": 0}
    assert rd.RealDiffTask(condition_on_y=True).net_kwargs_defaults(cfg)["cond_channels"] == 1
    assert len(rd.RealDiffTask().method_card()["noise"]) == len(rd.DEFAULT_NOISE)


def test_tiny_unet_loss_goes_down():
    torch.manual_seed(0)
    net = UNet(1, 1, size="tiny")
    task = rd.RealDiffTask(T=5, noise="gaussian:15..35")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g_eval = torch.Generator().manual_seed(123)
    x_eval = _smooth(8, 1, 32, g_eval)

    def eval_loss():
        with torch.no_grad():
            return float(task.loss(net, {"x": x_eval}, torch.Generator().manual_seed(7)))

    before = eval_loss()
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        loss = task.loss(net, {"x": _smooth(8, 1, 32, g)}, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("c_net,c_in", [(3, 3), (1, 1), (3, 1), (1, 3)])
def test_denoiser_contract(c_net, c_in):
    method = rd.build(net=_tiny(c_net), card={"method": {"name": "realdiff", "T": 5}}, steps=3)
    y = torch.rand(2, c_in, 20, 18)
    out = method(y, 0.1)                                  # sigma ignored (blind)
    assert out.shape == y.shape and out.dtype == torch.float32
    assert torch.equal(out, method(y))                    # deterministic without samples
    assert method.last_uncertainty is None
    assert torch.isfinite(out).all()


def test_samples_uncertainty_and_determinism():
    net = _tiny(3)
    with torch.no_grad():                                  # a non-trivial net: its output layer starts at zero
        for p in net.conv_out.parameters():
            p.normal_(0, 0.05)
    method = rd.build(net=net, card={"T": 4}, steps=2, samples=3)
    y = torch.rand(2, 3, 16, 16)
    a = method(y, generator=torch.Generator().manual_seed(5))
    u = method.last_uncertainty
    b = method(y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(u, method.last_uncertainty)
    assert u.shape == y.shape and (u >= 0).all() and u.max() > 0
    c = method(y, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)
    # per-image generators: image 1's result does not depend on the batch
    gens = [torch.Generator().manual_seed(10), torch.Generator().manual_seed(11)]
    full = method(y, generator=gens)
    one = method(y[1:], generator=[torch.Generator().manual_seed(11)])
    assert torch.allclose(full[1:], one, atol=1e-5)
    heat = rd.uncertainty_heatmap(u[0])
    assert heat.shape == (16, 16, 3) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1


class _Halve(torch.nn.Module):
    """A residual net with S(x, t) = x / 2: a linear x0-model whose sample statistics have a closed form."""
    in_channels = out_channels = 3

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, cond=None):
        return -0.5 * x + 0 * self.w


@pytest.mark.parametrize("jitter", [None, 0.4])
def test_samples_restart_noise_is_jitter_times_local_noise_std(jitter):
    """x_T^(k) = y + jitter s z_k with s = local_noise_std(y - S(y)); through S = x / 2 the K restorations have
    mean S(y) and per-pixel std jitter s / 2 (default jitter rd.JITTER)."""
    opts = {} if jitter is None else {"jitter": jitter}
    method = rd.build(net=_Halve(), card={"T": 4}, steps=1, samples=400, **opts)
    y = torch.rand(1, 3, 12, 12)
    mean = method(y, generator=torch.Generator().manual_seed(0))
    j = rd.JITTER if jitter is None else jitter
    s = rd.local_noise_std(y - 0.5 * y)
    torch.testing.assert_close(method.last_uncertainty, j * s / 2, rtol=0.15, atol=1e-4)
    torch.testing.assert_close(mean, y / 2, rtol=0, atol=4 * float((j * s / 2).max()) / 20)


def test_one_step_is_one_forward_for_both_samplers():
    net = _tiny(3)
    with torch.no_grad():
        for p in net.conv_out.parameters():
            p.normal_(0, 0.05)
    y = torch.rand(1, 3, 16, 16)
    outs = [rd.build(net=net, card={"T": 10}, steps=1, sampler=s)(y) for s in ("origin", "improved")]
    direct = y + net(y, torch.ones(1))
    assert torch.allclose(outs[0], direct, atol=1e-6) and torch.allclose(outs[1], direct, atol=1e-6)


def test_heatmap_ramp_is_monotone_in_lightness():
    ramp = rd.uncertainty_heatmap(np.linspace(0, 1, 64)[None, :], vmax=1.0)[0]
    luma = ramp @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luma) > 0)
    assert rd.uncertainty_heatmap(np.zeros((4, 5))).shape == (4, 5, 3)      # an all-zero map is fine


def test_builder_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    with pytest.raises(DiffDenoiseError, match="realdiff-color"):
        rd.build()
    with pytest.raises(DiffDenoiseError):
        rd.build(net=_tiny(), card={"T": 4}, sampler="ddim")
    with pytest.raises(DiffDenoiseError):
        rd.build(net=_tiny(), card={"T": 4}, samples=0)


def test_realdiff_table_compares_models_per_T_and_skips_steps_above_T(tmp_path):
    """benchmarks/realdiff_table.py --models: a T = 1 model gets only the one-step row, a T = 4 model also its
    multi-step rows (both samplers); steps above a model's T would repeat a capped chain and are left out."""
    import importlib.util
    import json
    from pathlib import Path

    from diffdenoise.imageio import Image, write_image
    from diffdenoise.train.checkpoint import export_weights
    root = Path(__file__).resolve().parents[1]
    g = np.random.default_rng(0)
    for sub in ("noisy", "clean"):
        (tmp_path / "data" / "polyu" / sub).mkdir(parents=True)
    for i in range(2):
        clean = g.integers(60, 200, (16, 16, 3)).astype(np.uint8)
        noisy = np.clip(clean + g.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        write_image(tmp_path / "data" / "polyu" / "clean" / f"p{i}.png", Image(clean, None, 8))
        write_image(tmp_path / "data" / "polyu" / "noisy" / f"p{i}.png", Image(noisy, None, 8))
    (tmp_path / "data" / "polyu" / "test_split.txt").write_text("p0.png\np1.png\n")
    models = []
    for T in (1, 4):
        card = {"net": {"name": "unet", "kwargs": {"in_channels": 3, "out_channels": 3, "size": "tiny"}},
                "method": {"name": "realdiff", "T": T, "output": "residual", "condition_on_y": False}}
        stem = "realdiff-color" if T == 4 else "cand-T1"       # a card of another stem is renamed for the run
        export_weights(_tiny(), stem, card, folder=tmp_path / f"T{T}")
        models.append(f"T{T}={tmp_path / f'T{T}'}" + ("/cand-T1.json" if T == 1 else ""))
    spec = importlib.util.spec_from_file_location("realdiff_table", root / "benchmarks" / "realdiff_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "res" / "table"
    assert script.main(["--models", *models, "--sets", "polyu", "--steps", "1", "4", "--data-root",
                        str(tmp_path / "data"), "--out", str(out)]) == 0
    rows = {(r["model"], r["steps"], r["sampler"]) for r in json.loads(Path(f"{out}.json").read_text())["summary"]}
    assert rows == {("-", 0, "noisy input"), ("T1", 1, "one forward"), ("T4", 1, "one forward"),
                    ("T4", 4, "improved"), ("T4", 4, "origin")}
