"""Inference runtime: --devices parsing, sharding, guarded torch.compile, and sharded folder runs (spawned workers and
torchrun) writing exactly the files of a single-process run."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffdenoise.cli import main
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import Image, write_image
from diffdenoise.nets import build_net
from diffdenoise.runtime import compile_method, compile_net, parse_devices, shard, torchrun_rank
from diffdenoise.train import export_weights

SRC = Path(__file__).resolve().parents[1] / "src"


def test_parse_devices_and_shard(monkeypatch):
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    assert parse_devices(" cpu ") == ["cpu"]
    if not torch.cuda.is_available():
        assert parse_devices("all") == ["cpu"]
        for bad in ("2", "cuda:0", "cuda:0,cuda:1"):
            with pytest.raises(DiffDenoiseError, match="GPU"):
                parse_devices(bad)
    for bad in (",", "tpu:0", "gpu"):
        with pytest.raises(DiffDenoiseError, match="--devices"):
            parse_devices(bad)
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert torchrun_rank() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_rank() == (1, 2, 1)


def _tiny_dncnn(channels=3):
    torch.manual_seed(0)
    net = build_net("dncnn", channels=channels, depth=3, width=8)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_compile_falls_back_with_one_warning(monkeypatch, capsys):
    net = _tiny_dncnn()
    y = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        expected = net(y)

    def broken(fn, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no compiler here\nsecond line")
        return call
    monkeypatch.setattr(torch, "compile", broken)
    assert compile_net(net) and compile_net(net)                 # idempotent
    with torch.no_grad():
        torch.testing.assert_close(net(y), expected)
        torch.testing.assert_close(net(y), expected)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["diffdenoise: warning: torch.compile failed (RuntimeError: no compiler here); running uncompiled"]


def test_compile_method_traces_the_net(tmp_path, monkeypatch):
    """The eager backend runs dynamo's tracing without generating code: the output is the uncompiled one."""
    export_weights(_tiny_dncnn(), "dncnn-color", {"net": {"name": "dncnn", "kwargs": {"channels": 3, "depth": 3,
                                                                                      "width": 8}}}, tmp_path)
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    from diffdenoise.registry import build_method
    plain, method = build_method("dncnn", tile=None), build_method("dncnn")   # the second is Tiled(...)
    assert compile_method(method, 3, backend="eager")
    assert compile_method(build_method("nlm"), 3) is False
    y = torch.rand(1, 3, 20, 16)
    with torch.no_grad():
        torch.testing.assert_close(method(y), plain(y))


# ---------------------------------------------------------------------------------------------- sharded folder runs

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four small noisy RGB images of different sizes, and a weights folder with a tiny DnCNN."""
    root = tmp_path_factory.mktemp("shard")
    rng = np.random.default_rng(3)
    (root / "in").mkdir()
    for i in range(4):
        a = np.clip(rng.normal(0.5, 0.15, (24 + 4 * i, 28, 3)), 0, 1).astype(np.float32)
        write_image(root / "in" / f"im{i}.png", Image(a, None, 8))
    export_weights(_tiny_dncnn(), "dncnn-color", {"net": {"name": "dncnn", "kwargs": {"channels": 3, "depth": 3,
                                                                                      "width": 8}}},
                   root / "weights")
    return root


METHODS = {"nlm": ["--method", "nlm", "--sigma", "20"], "dncnn": ["--method", "dncnn"]}
# One interpreter runs the command for every method (interpreter and torch start-up dominate these tests).
DRIVER = """import sys
from diffdenoise.cli import main
if __name__ == "__main__":                      # spawned workers import this file again
    out, extra = sys.argv[1], sys.argv[2:]
    methods = {methods!r}
    sys.exit(max(main(["denoise", {inputs!r}, "-o", f"{{out}}-{{name}}", *extra, *m]) for name, m in methods.items()))
"""


def _run_sharded(folder, launcher, out, extra, methods=tuple(METHODS)):
    driver = folder / "driver.py"
    driver.write_text(DRIVER.format(methods={m: METHODS[m] for m in methods}, inputs=str(folder / "in")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIFFDENOISE_WEIGHTS": str(folder / "weights"),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *launcher, str(driver), str(out), *extra], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def _outputs(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def single(folder):
    """The reference outputs of each method: one process, one thread (as every worker of the sharded runs)."""
    threads = torch.get_num_threads()
    saved = os.environ.get("DIFFDENOISE_WEIGHTS")
    os.environ["DIFFDENOISE_WEIGHTS"] = str(folder / "weights")
    torch.set_num_threads(1)
    try:
        for name, argv in METHODS.items():
            assert main(["denoise", str(folder / "in"), "-o", str(folder / f"single-{name}"), "--device", "cpu", "-q",
                         *argv]) == 0
    finally:
        torch.set_num_threads(threads)
        if saved is None:
            del os.environ["DIFFDENOISE_WEIGHTS"]
        else:
            os.environ["DIFFDENOISE_WEIGHTS"] = saved
    return {name: _outputs(folder / f"single-{name}") for name in METHODS}


@pytest.mark.slow
def test_devices_cpu_cpu_writes_the_single_process_files(folder, single):
    """Spawned workers with the learned method only: each run spawns fresh interpreters (the cost of this test); the
    classical method takes the same path and is checked under torchrun below."""
    err = _run_sharded(folder, [], folder / "devices", ["--devices", "cpu,cpu"], methods=("dncnn",))
    assert "4 images on 2 devices (cpu, cpu)" in err
    for name in ("dncnn",):
        assert len(single[name]) == 4 and _outputs(folder / f"devices-{name}") == single[name], name


@pytest.mark.slow
def test_torchrun_shards_by_rank(folder, single):
    err = _run_sharded(folder, ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
                       folder / "torchrun", ["--device", "cpu"])
    assert "rank 0 of 2" in err and "rank 1 of 2" not in err            # one progress bar: rank 0's
    for name in METHODS:
        assert _outputs(folder / f"torchrun-{name}") == single[name], name


def test_precision_is_an_option_of_every_neural_method(tmp_path, monkeypatch):
    from diffdenoise.registry import METHODS, build_method, method_options
    from diffdenoise.runtime import autocast
    assert all(("precision" in method_options(s)) == (s.family != "classical") for s in METHODS.values())
    with pytest.raises(DiffDenoiseError, match="does not take option.*precision"):
        build_method("nlm", precision="fp32")
    export_weights(_tiny_dncnn(), "dncnn-color", {"net": {"name": "dncnn", "kwargs": {"channels": 3, "depth": 3,
                                                                                      "width": 8}}}, tmp_path)
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path))
    y = torch.rand(1, 3, 16, 16)
    with torch.no_grad():       # on the CPU every precision is float32
        outs = [build_method("dncnn", precision=p, tile=None)(y) for p in ("auto", "fp32", "bf16")]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    with pytest.raises(DiffDenoiseError, match="unknown precision 'fp16'"):
        build_method("dncnn", precision="fp16")
    with autocast("cpu", "bf16"):
        assert not torch.is_autocast_enabled("cpu")
