"""Checkpoints and shipped weights: export/load round trip, EMA export, shards, missing files, the CNN wrapper."""
import json

import pytest
import torch

from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets import build_net
from diffdenoise.registry import build_method
from diffdenoise.train import export_weights, load_net, read_checkpoint, save_checkpoint, weights_dir
from diffdenoise.train.checkpoint import load_optimizer_state
from diffdenoise.train.export import main as export_main

KW = {"channels": 1, "depth": 5, "width": 16}


def small_net(seed=0, **kw):
    torch.manual_seed(seed)
    net = build_net("dncnn", **{**KW, **kw})
    with torch.no_grad():  # give BatchNorm non-trivial statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_round_trip_matches_the_model(tmp_path):
    net = small_net(**{"channels": 3})
    card = export_weights(net, "dn", {"net": {"name": "dncnn", "kwargs": {**KW, "channels": 3}}}, tmp_path)
    assert card == tmp_path / "dn.json" and (tmp_path / "dn.safetensors").is_file()
    loaded, info = load_net(tmp_path / "dn")
    assert not loaded.training and info["net"]["kwargs"]["channels"] == 3 and info["files"] == ["dn.safetensors"]
    y = torch.rand(2, 3, 19, 21)
    with torch.no_grad():
        torch.testing.assert_close(loaded(y), net(y), rtol=0, atol=2e-3)


def test_export_from_checkpoint_uses_ema_and_fills_the_card(tmp_path):
    net, ema = small_net(0), small_net(1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    net(torch.rand(2, 1, 8, 8)).mean().backward()
    opt.step()
    cfg = {"net": "dncnn", "net_kwargs": KW, "data": [{"kind": "clean", "paths": ["x/*.png"]}],
           "task_options": {"noise": "gaussian:0..55"}}
    ckpt = save_checkpoint(tmp_path / "last.safetensors", model=net, ema=ema, optimizer=opt, step=7, config=cfg,
                           card={"net": {"name": "dncnn", "kwargs": KW}, "method": {"blind": True}}, command="cmd")
    parts, info = read_checkpoint(tmp_path)
    assert info["step"] == 7 and info["command"] == "cmd"
    other = small_net(2)
    opt2 = torch.optim.AdamW(other.parameters(), lr=5.0)
    load_optimizer_state(opt2, parts["optim"], info["optim_groups"])
    assert opt2.param_groups[0]["lr"] == 1e-3
    for p, q in zip(net.parameters(), other.parameters()):
        torch.testing.assert_close(opt.state[p]["exp_avg"], opt2.state[q]["exp_avg"])
        torch.testing.assert_close(opt.state[p]["step"], opt2.state[q]["step"])

    assert export_main([str(ckpt), "--stem", "dn-ema", "--folder", str(tmp_path / "w"),
                        "--metrics", '{"bsd68": {"25": 29.0}}']) == 0
    loaded, card = load_net(tmp_path / "w" / "dn-ema.json")
    assert card["steps"] == 7 and card["noise"] == "gaussian:0..55" and card["method"] == {"blind": True}
    assert card["metrics"] == {"bsd68": {"25": 29.0}} and card["config"]["net"] == "dncnn"
    assert card["data"] == cfg["data"] and card["command"] == "cmd"
    y = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(y), ema.eval()(y), rtol=0, atol=2e-3)
        assert (loaded(y) - net.eval()(y)).abs().max() > 1e-2
    stored = json.loads((tmp_path / "w" / "dn-ema.json").read_text())
    assert stored["net"] == {"name": "dncnn", "kwargs": KW}


def test_export_renames_a_card_of_another_stem(tmp_path):
    """Shipping a GPU round's candidate: the same tensors and card under the new stem, old metrics dropped."""
    from safetensors.torch import load_file
    net = small_net()
    export_weights(net, "cand-b1", {"net": {"name": "dncnn", "kwargs": KW}, "command": "cmd",
                                    "metrics": {"fmdd": {"psnr": 1.0}}}, tmp_path / "round", shard_bytes=8 * 1024)
    assert export_main([str(tmp_path / "round" / "cand-b1.json"), "--stem", "shipped",
                        "--folder", str(tmp_path / "w")]) == 0
    card = json.loads((tmp_path / "w" / "shipped.json").read_text())
    assert card["command"] == "cmd" and card["metrics"] == {} and card["files"] == ["shipped.safetensors"]
    got = load_file(str(tmp_path / "w" / "shipped.safetensors"))
    want = {k: v for f in sorted((tmp_path / "round").glob("cand-b1-*.safetensors")) for k, v in load_file(str(f)).items()}
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    before = (tmp_path / "w" / "shipped.safetensors").read_bytes()
    args = [str(tmp_path / "round" / "cand-b1.json"), "--stem", "shipped", "--folder", str(tmp_path / "w")]
    assert export_main(args) == 2                               # weights of that name exist: refused
    assert (tmp_path / "w" / "shipped.safetensors").read_bytes() == before
    assert export_main(args + ["--force"]) == 0


def test_a_file_that_is_not_a_checkpoint_is_one_error(tmp_path):
    from diffdenoise.errors import DiffDenoiseError
    (tmp_path / "log.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(DiffDenoiseError, match="not a readable safetensors"):
        read_checkpoint(tmp_path / "log.jsonl")


def test_sharding(tmp_path):
    net = small_net()
    card = {"net": {"name": "dncnn", "kwargs": KW}}
    export_weights(net, "big", card, tmp_path, shard_bytes=8 * 1024)
    files = sorted(p.name for p in tmp_path.glob("big*.safetensors"))
    k = len(files)
    assert k > 2 and files[0] == f"big-00001-of-{k:05d}.safetensors"
    assert all(p.stat().st_size < 8 * 1024 + 4096 for p in tmp_path.glob("big*.safetensors"))
    loaded, info = load_net(tmp_path / "big")
    assert info["files"] == files
    y = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(y), net(y), rtol=0, atol=2e-3)
    (tmp_path / files[1]).unlink()
    with pytest.raises(DiffDenoiseError, match=files[1]):
        load_net(tmp_path / "big")
    export_weights(net, "big", card, tmp_path)                 # one file again: old shards are removed
    assert sorted(p.name for p in tmp_path.glob("big*.safetensors")) == ["big.safetensors"]


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    assert weights_dir() == tmp_path
    with pytest.raises(DiffDenoiseError, match="nothing-here.json"):
        load_net("nothing-here")
    with pytest.raises(DiffDenoiseError, match="dncnn-color.json or .*dncnn-gray.json"):
        build_method("dncnn")
    with pytest.raises(DiffDenoiseError, match="card needs"):
        export_weights(small_net(), "x", {}, tmp_path)


def test_cnn_method_picks_or_converts_by_channels(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    gray = small_net()
    export_weights(gray, "dncnn-gray", {"net": {"name": "dncnn", "kwargs": KW}})
    method = build_method("dncnn")
    y1, y3 = torch.rand(2, 1, 13, 17), torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        torch.testing.assert_close(method(y1), gray(y1), rtol=0, atol=2e-3)
        out3 = method(y3, 0.1)
        torch.testing.assert_close(out3[:, 1:2], gray(y3[:, 1:2]), rtol=0, atol=2e-3)
    torch.testing.assert_close(method(y1, sigma=0.2), method(y1))          # blind: sigma is ignored
    color = small_net(channels=3)
    export_weights(color, "dncnn-color", {"net": {"name": "dncnn", "kwargs": {**KW, "channels": 3}}})
    method = build_method("dncnn")
    fractions = []
    with torch.no_grad():
        torch.testing.assert_close(method(y3, progress=fractions.append), color(y3), rtol=0, atol=2e-3)
    assert fractions == [0.5, 1.0]
    (tmp_path / "dncnn-gray.json").unlink()
    (tmp_path / "dncnn-gray.safetensors").unlink()
    with torch.no_grad():                                                  # gray input, colour model only
        want = color(y1.expand(-1, 3, -1, -1)).mean(1, keepdim=True)
        torch.testing.assert_close(build_method("dncnn")(y1), want, rtol=0, atol=2e-3)
