"""The training loop: strict configs, presets, a tiny DnCNN that learns, exact resume, the time budget, the CLI."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffdenoise.data.images import EVAL_FOLDERS
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets import NETS
from diffdenoise.train import TASKS, DenoiseTask, load_config, lr_at, read_checkpoint, train, train_main
from diffdenoise.train.config import TrainConfig, config_fields

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny-dncnn.json"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A few smooth synthetic RGB images (so that denoising is learnable) in <root>/tiny/."""
    root = tmp_path_factory.mktemp("data")
    (root / "tiny").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((64 + 8 * i, 56), Image.BICUBIC).save(root / "tiny" / f"{i}.png")
    return root


def tiny(data_root, out, *extra):
    return load_config(TINY, [f"data_root={data_root}", f"out={out}", *extra])


def test_strict_config_loading(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"net": "dncnn", "stepz": 3}))
    with pytest.raises(DiffDenoiseError, match="unknown config key.*stepz.*valid: name, task"):
        load_config(p)
    with pytest.raises(DiffDenoiseError, match="unknown config key"):
        load_config(TINY, ["bogus=1"])
    with pytest.raises(DiffDenoiseError, match="expected int"):
        load_config(TINY, ["steps=1.5"])
    with pytest.raises(DiffDenoiseError, match="not one of"):
        load_config(TINY, ["color=cmyk"])
    cfg = load_config(TINY, ["lr=1", "task_options.noise=gaussian:25", "name=123", "max_minutes=2"])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.name == "123" and cfg.max_minutes == 2.0
    assert cfg.task_options == {"noise": "gaussian:25", "loss": "mse"}
    assert load_config(None).name == "" and load_config(TINY).name == "tiny-dncnn"


def test_every_field_has_a_comment():
    src = (REPO / "src" / "diffdenoise" / "train" / "config.py").read_text()
    for name in config_fields():
        line = next(line for line in src.splitlines() if line.strip().startswith(f"{name}:"))
        assert "#" in line, name


@pytest.mark.parametrize("preset", sorted(p.name for p in (REPO / "configs").glob("*.json")))
def test_presets_load_and_name_registered_parts(preset):
    cfg = load_config(REPO / "configs" / preset)
    assert cfg.net in NETS and cfg.task in TASKS
    if cfg.task == "denoise":
        DenoiseTask(**cfg.task_options)
    for spec in cfg.data:
        for path in spec.get("paths", []) + [spec.get("noisy", ""), spec.get("clean", "")]:
            assert not any("/".join(f) in path for f in EVAL_FOLDERS), path
    if not preset.startswith("tiny"):
        assert cfg.max_minutes > 0 and cfg.bf16


def test_lr_schedule():
    cfg = TrainConfig(lr=1.0, lr_min=0.0, warmup=10, steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.5) and lr_at(110, cfg) == pytest.approx(0.0)


def test_tiny_dncnn_learns(data_root, tmp_path):
    ckpt = train(tiny(data_root, tmp_path / "run"))
    assert ckpt == tmp_path / "run" / "last.safetensors"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0], losses
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["net_kwargs"] == {"channels": 3, "depth": 4, "width": 16}
    assert saved["data_root"] == str(data_root.resolve())
    parts, info = read_checkpoint(ckpt)
    assert info["step"] == 30 and info["card"]["net"]["name"] == "dncnn"
    assert parts["ema"] and parts["optim"] and "state" in parts["rng"]


def test_resume_continues_from_the_saved_step(data_root, tmp_path):
    common = ["schedule=constant", "steps=16", "log_every=4", "save_every=8"]
    straight = train(tiny(data_root, tmp_path / "a", *common))
    first = train(tiny(data_root, tmp_path / "b", *common[:1], "steps=8", *common[2:]))
    assert read_checkpoint(first)[1]["step"] == 8
    resumed = train(tiny(data_root, tmp_path / "b", *common, f"resume={tmp_path / 'b'}"))
    (pa, ia), (pb, ib) = read_checkpoint(straight), read_checkpoint(resumed)
    assert ia["step"] == ib["step"] == 16
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [4, 8, 12, 16]
    for kind in ("model", "ema"):
        for k in pa[kind]:
            torch.testing.assert_close(pa[kind][k], pb[kind][k], rtol=1e-4, atol=1e-5)
    with pytest.raises(DiffDenoiseError, match="holds net"):
        train(tiny(data_root, tmp_path / "c", "net_kwargs.width=8", f"resume={resumed}"))


def test_init_from_needs_equal_tensors_not_equal_kwargs(data_root, tmp_path):
    """Shipped weights seed a run when every tensor fits, however the card spells the kwargs (a DDPM's
    ``num_classes=0`` UNet seeds a real-noise ``cond_channels=0`` one); a different shape is a clear error."""
    from diffdenoise.train.checkpoint import export_weights
    ckpt = train(tiny(data_root, tmp_path / "a", "steps=4"))
    export_weights(ckpt, "seed", {"command": "test"}, folder=tmp_path / "w")
    card_path = tmp_path / "w" / "seed.json"
    card = json.loads(card_path.read_text())
    card["net"]["kwargs"].pop("channels")                   # default 3: same tensors, other spelling
    card_path.write_text(json.dumps(card))
    seeded = train(tiny(data_root, tmp_path / "b", "steps=1", "lr=0", "ema=0", f"init_from={card_path}"))
    from diffdenoise.train.checkpoint import load_weights
    state, _ = load_weights(card_path)
    got = read_checkpoint(seeded)[0]["model"]
    learned = [k for k in state if "running_" not in k and "num_batches" not in k]   # BN statistics move at lr 0
    assert learned
    for k in learned:
        torch.testing.assert_close(got[k].float(), state[k].float(), rtol=0, atol=0)
    with pytest.raises(DiffDenoiseError, match="are for net"):
        train(tiny(data_root, tmp_path / "c", "net_kwargs.width=8", f"init_from={card_path}"))


def test_time_budget_stops_and_saves(data_root, tmp_path):
    ckpt = train(tiny(data_root, tmp_path / "run", "max_minutes=0.00001", "steps=1000"))
    assert 1 <= read_checkpoint(ckpt)[1]["step"] < 1000


def test_cli(data_root, tmp_path, capsys):
    assert train_main([str(TINY), "--dry-run", "--set", f"data_root={data_root}"]) == 0
    assert json.loads(capsys.readouterr().out)["net_kwargs"]["channels"] == 3
    assert train_main([str(TINY), "--set", "nope=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert train_main([str(TINY), "--set", f"data_root={data_root}", "--set", "steps=2",
                       "--set", "log_every=1", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "last.safetensors").is_file()


def test_denoise_task_paired_rows_use_the_real_partner():
    task = DenoiseTask(noise="gaussian:50")
    x = torch.rand(4, 3, 8, 8)
    y = torch.full_like(x, float("nan"))
    y[2:] = x[2:] + 0.25
    seen = {}

    def net(v):
        seen["y"] = v
        return v

    loss = task.loss(net, {"x": x, "y": y, "paired": torch.tensor([False, False, True, True])},
                     torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    torch.testing.assert_close(seen["y"][2:], x[2:] + 0.25)
    assert (seen["y"][:2] - x[:2]).std() > 0.1


def test_noise_mixture_and_losses():
    task = DenoiseTask(noise=[["gaussian:0", 1], ["gaussian:100", 1]], loss="l1")
    x = torch.rand(64, 1, 8, 8)
    y = task.corrupt(x, torch.Generator().manual_seed(0))
    clean_rows = ((y - x).flatten(1).abs().max(1).values == 0).sum()
    assert 16 < int(clean_rows) < 48
    assert task.method_card()["blind"] is True
    with pytest.raises(DiffDenoiseError, match="unknown loss"):
        DenoiseTask(loss="l3")


@pytest.mark.slow
def test_torchrun_ddp_same_code_path(data_root, tmp_path):
    """Two CPU processes (gloo) through the same entry point; the time budget stops both ranks at one step."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "diffdenoise.train", str(TINY), "--set", f"data_root={data_root}", "--set", "steps=1000",
           "--set", "max_minutes=0.00001", "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "world 2" in done.stdout
    assert read_checkpoint(tmp_path / "ddp")[1]["step"] == 10


@pytest.mark.slow
def test_torchrun_ddp_matches_one_process_with_the_same_global_batch(data_root, tmp_path):
    """Two CPU ranks (gloo) of batch 4 against one process of batch 8, same seed and steps: the same start (one
    seeded initialisation, step-5 losses within 5 %), replicas verified identical at the end, one writer (rank 0:
    one checkpoint, one log line per logging step), and final losses within 25 % (the ranks draw their own patches
    and noise, so the runs are equivalent in distribution, not equal)."""
    import os
    import subprocess
    import sys
    common = ["task_options.noise=gaussian:25", "steps=20", "log_every=5", "save_every=1000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "diffdenoise.train", str(TINY), "--set", f"data_root={data_root}",
           *sum((["--set", s] for s in common), []), "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "world 2" in done.stdout and "(2 replicas identical)" in done.stdout
    train(tiny(data_root, tmp_path / "one", *common))
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["config.json", "last.safetensors", "log.jsonl"]
    logs = {}
    for run in ("ddp", "one"):
        logs[run] = [json.loads(line)["loss"] for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        assert len(logs[run]) == 4 and logs[run][-1] < logs[run][0] / 3, (run, logs[run])
    assert logs["ddp"][0] == pytest.approx(logs["one"][0], rel=0.05), logs
    assert logs["ddp"][-1] == pytest.approx(logs["one"][-1], rel=0.25), logs
    assert read_checkpoint(tmp_path / "ddp")[1]["step"] == 20


def test_quantize_gives_clipped_8bit_observations():
    x = torch.rand(32, 1, 8, 8) * 0.05                      # dark patches: shot noise clips at 0
    task = DenoiseTask(noise="poisson_gaussian:0.05,5", quantize=True)
    y = task.corrupt(x, torch.Generator().manual_seed(0))
    assert 0 <= y.min() and y.max() <= 1
    torch.testing.assert_close(y * 255, (y * 255).round(), rtol=0, atol=1e-4)
    assert (y == 0).float().mean() > 0.1                    # a real fraction of clipped pixels
    raw = DenoiseTask(noise="poisson_gaussian:0.05,5").corrupt(x, torch.Generator().manual_seed(0))
    assert raw.min() < 0 and task.method_card()["quantize"] is True


def test_init_from_colour_unet_seeds_a_gray_one(data_root, tmp_path):
    """A gray realdiff run starts from colour UNet weights folded to gray (``nets.unet.fold_to_gray``)."""
    from diffdenoise.nets.unet import UNet, fold_to_gray
    from diffdenoise.train.checkpoint import export_weights, load_weights
    torch.manual_seed(0)
    colour = UNet(3, 3, size="tiny")
    export_weights(colour, "colour", {"net": {"name": "unet", "kwargs": {"in_channels": 3, "out_channels": 3,
                                                                         "size": "tiny"}}}, folder=tmp_path / "w")
    cfg = load_config(REPO / "configs" / "realdiff-gray.json", [
        f"data_root={data_root}", f"out={tmp_path / 'gray'}", 'net_kwargs={"size": "tiny"}', "steps=1", "lr=0",
        "ema=0", "batch=2", "patch=32", "bf16=false", 'task_options.noise="gaussian:10"',
        'data=[{"kind": "clean", "paths": ["tiny/*.png"]}]', f"init_from={tmp_path / 'w' / 'colour.json'}"])
    got = read_checkpoint(train(cfg))[0]["model"]
    want = fold_to_gray(load_weights(tmp_path / "w" / "colour.json")[0])
    assert got["conv_in.weight"].shape[1] == 1 and got["conv_out.weight"].shape[0] == 1
    for k, v in want.items():
        torch.testing.assert_close(got[k].float(), v.float(), rtol=0, atol=0)


@pytest.mark.parametrize("on_y", [True, False])
def test_init_from_conditional_unet_seeds_a_real_noise_one(data_root, tmp_path, on_y):
    """realdiff seeded by cddpm's UNet (condition [y, sigma, flag]): with condition_on_y the condition narrows to
    [y], without it y's input weights join x_t's (``nets.unet.narrow_condition``)."""
    from diffdenoise.nets.unet import UNet, narrow_condition
    from diffdenoise.train.checkpoint import export_weights, load_weights
    torch.manual_seed(0)
    seed = UNet(3, 3, cond_channels=5, size="tiny")
    export_weights(seed, "cond", {"net": {"name": "unet", "kwargs": {"in_channels": 3, "out_channels": 3,
                                                                      "cond_channels": 5, "size": "tiny"}}},
                   folder=tmp_path / "w")
    cfg = load_config(REPO / "configs" / "realdiff-color.json", [
        f"data_root={data_root}", f"out={tmp_path / 'rd'}", 'net_kwargs={"size": "tiny"}', "steps=1", "lr=0",
        "ema=0", "batch=2", "patch=32", "bf16=false", 'task_options.noise="gaussian:10"',
        f"task_options.condition_on_y={'true' if on_y else 'false'}",
        'data=[{"kind": "clean", "paths": ["tiny/*.png"]}]', f"init_from={tmp_path / 'w' / 'cond.json'}"])
    got = read_checkpoint(train(cfg))[0]["model"]
    want = narrow_condition(load_weights(tmp_path / "w" / "cond.json")[0], 3, 5, 3 if on_y else 0)
    assert got["conv_in.weight"].shape[1] == (6 if on_y else 3)
    for k, v in want.items():
        torch.testing.assert_close(got[k].float(), v.float(), rtol=0, atol=0)


@pytest.mark.parametrize("override,needle", [("batch=0", "batch"), ("log_every=0", "log_every"),
                                             ("save_every=0", "save_every"), ("patch=0", "patch"),
                                             ("lr=-1", "lr"), ("lr=NaN", "lr"), ("steps=-5", "steps"),
                                             ("ema=2", "ema"), ("grad_clip=-1", "grad_clip"),
                                             ("max_minutes=-1", "max_minutes")])
def test_values_no_run_can_use_are_one_error_line(override, needle, capsys):
    from diffdenoise.train.loop import train_main
    assert train_main([str(TINY), "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"diffdenoise: error: config {needle}: must be") and len(err.strip().splitlines()) == 1
