"""Inference speed: megapixels per second and peak GPU memory of every shipped method and of reference networks.

Rows (``--methods``, ``--references``):

- shipped methods at their default settings (``registry.build_method(name, device, tile=--tile,
  precision=...)``): dncnn, rednet, mwcnn, pridnet, cddpm, realdiff, and svnr / ddpm-match when their weights exist
  (a method without weights is a "skipped" row).  Classical methods (``bm3d``, ``nlm``) may be named too: they run
  on the CPU whatever ``--device`` says, which is how the CPU table puts BM3D beside the networks.
- reference architectures with random weights, timed only (their output means nothing):
  ``dncnn`` DnCNN, 17 layers of 64 channels (0.56M parameters);
  ``ffdnet`` FFDNet (``nets.cnn.FFDNet``) with 15 layers of 96 channels, pixel-unshuffle by 2 and a noise-map channel;
  ``drunet`` a DRUNet-shaped net (Zhang et al. 2021, Fig. 1; :class:`DRUNetLike`): 4 scales of 64-512 channels, 4
  residual blocks per scale on each path, strided-conv down, transposed-conv up, noise map as input: 32.6M;
  ``unet-64-512`` our diffusion backbone (``nets.unet.UNet``) with channels (64, 128, 256, 512) and one residual
  block per level (39.7M; our backbone cannot hold DRUNet's 4 blocks per scale at this width within 32M).
  Each is wrapped as a denoiser and goes through ``tiling.Tiled`` exactly like the shipped methods.

Workloads (``--workloads``): ``batch``: ``--batch`` images of 512 x 512 RGB in one call; ``4k``: one 3840 x 2160 RGB
image (tiled by ``--tile``: ``auto`` picks the tile from free memory, at most 1024, and batches tiles on CUDA).
Inputs are smooth random images plus Gaussian noise, sigma 25/255; methods that take a noise level get the true
one (a float), blind ones ignore it.

Per row and precision (``--precisions``: ``fp32``, ``bf16`` = bf16 autocast of the networks; the methods' own
``precision`` option), a fresh instance: optional ``torch.compile`` of its network (``--compile``; the first call,
which compiles, is timed apart as ``first_call_s``), ``--warmup`` untimed calls, then timed calls (CUDA synchronised
before and after each) until at least ``--repeats`` calls and ``--min-seconds`` in all; the median call gives
``seconds`` and ``mp_per_s`` (pixels of the call / seconds / 1e6).  ``peak_gb``: ``torch.cuda.max_memory_allocated``
over the timed calls (statistics reset after the warm-up; weights and inputs included).  Channels-last on CUDA is
``--layout nhwc`` (the default; the shipped methods get it from ``load_net``), ``nchw`` turns it off for every row.

Ceilings measured in the same run: dense matmul TFLOP/s in fp32 and bf16 (n x n, n = 8192 on CUDA) and the device's
copy bandwidth (``dst.copy_(src)`` of 1 GiB on CUDA, read + write bytes per second).

Usage (GPU; weights in weights/ or $DIFFDENOISE_WEIGHTS):
    PYTHONPATH=src python3 benchmarks/speed.py --device cuda --out $OUT/speed
    PYTHONPATH=src python3 benchmarks/speed.py --device cuda --compile --out $OUT/speed_compiled
    PYTHONPATH=src python3 benchmarks/speed.py --device cpu --workloads batch --batch 1 --precisions fp32 \\
        --references --methods dncnn,rednet,mwcnn,pridnet,cddpm,realdiff,bm3d --out benchmarks/results/cpu/speed
    PYTHONPATH=src python3 benchmarks/speed.py --device cpu --quick --out /tmp/speed      # smoke test, < 1 minute
Writes ``<out>.json`` (environment, settings, ceilings, rows) and ``<out>.md`` (the table).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from diffdenoise.bench import write_text
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.nets.cnn import DnCNN, FFDNet
from diffdenoise.nets.unet import UNet
from diffdenoise.registry import build_method, get_method_spec, weights_present
from diffdenoise.runtime import autocast, compile_method
from diffdenoise.tiling import Tiled

METHODS = ("dncnn", "rednet", "mwcnn", "pridnet", "cddpm", "realdiff", "svnr", "ddpm-match")
REFERENCES = ("dncnn", "ffdnet", "drunet", "unet-64-512")
SIGMA = 25 / 255


# ------------------------------------------------------------------------------------------- reference networks

class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 plus the input; no normalisation, no biases (DRUNet's block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class DRUNetLike(nn.Module):
    """The shape of DRUNet (Zhang, Li, Zuo, Zhang, Van Gool & Timofte 2021, "Plug-and-Play Image Restoration with
    Deep Denoiser Prior", Fig. 1), for timing: the noise-level map as one more input channel; a 3x3 head to
    ``widths[0]``; per scale ``blocks`` residual blocks then a 2x2 stride-2 convolution to the next width; ``blocks``
    blocks at the lowest scale; per scale up a 2x2 stride-2 transposed convolution, the encoder's features added
    (not concatenated), ``blocks`` blocks; a 3x3 tail.  Colour, widths 64-512, 4 blocks: 32.6M parameters."""

    def __init__(self, channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512), blocks: int = 4):
        super().__init__()
        self.multiple = 2 ** (len(widths) - 1)
        self.head = nn.Conv2d(channels + 1, widths[0], 3, padding=1, bias=False)
        self.down = nn.ModuleList([nn.Sequential(*[ResBlock(a) for _ in range(blocks)],
                                                 nn.Conv2d(a, b, 2, stride=2, bias=False))
                                   for a, b in zip(widths, widths[1:])])
        self.body = nn.Sequential(*[ResBlock(widths[-1]) for _ in range(blocks)])
        self.up = nn.ModuleList([nn.Sequential(nn.ConvTranspose2d(b, a, 2, stride=2, bias=False),
                                               *[ResBlock(a) for _ in range(blocks)])
                                 for a, b in zip(widths, widths[1:])])
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1, bias=False)

    def forward(self, y: torch.Tensor, sigma_map: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        x = F.pad(torch.cat([y, sigma_map.to(y.dtype)], dim=1), (0, pw, 0, ph), mode="replicate")
        feats = [self.head(x)]
        for down in self.down:
            feats.append(down(feats[-1]))
        x = self.body(feats[-1])
        for k in range(len(self.up) - 1, -1, -1):
            x = self.up[k](x + feats[k + 1])
        return self.tail(x + feats[0])[..., :h, :w]


class Reference:
    """A reference network as a denoiser with the common call (random weights; the output is meaningless)."""

    def __init__(self, net: nn.Module, call: Callable[..., torch.Tensor], precision: str):
        self.net, self.call, self.precision = net, call, precision

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *, generator: Any = None,
                 progress: Any = None) -> torch.Tensor:
        level = SIGMA if sigma is None else sigma
        with autocast(y.device, self.precision):
            return self.call(self.net, y, level).float()


def _map(y: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    if torch.is_tensor(sigma) and sigma.dim() == 4:
        return sigma[:, :1]
    return torch.full_like(y[:, :1], float(sigma))


def reference_net(name: str, quick: bool) -> tuple[nn.Module, Callable[..., torch.Tensor]]:
    """(net, call(net, y, sigma)); ``quick`` keeps the architecture but not the width (CPU smoke tests)."""
    if name == "dncnn":
        return DnCNN(3, depth=17, width=16 if quick else 64), lambda net, y, s: net(y)
    if name == "ffdnet":
        return FFDNet(3, depth=15, width=16 if quick else 96), lambda net, y, s: net(y, s)
    if name == "drunet":
        widths = (8, 16, 32, 64) if quick else (64, 128, 256, 512)
        return DRUNetLike(3, widths, blocks=4), lambda net, y, s: net(y, _map(y, s))
    if name == "unet-64-512":
        channels = (8, 16, 32, 64) if quick else (64, 128, 256, 512)
        net = UNet(3, 3, cond_channels=1, size="base", channels=channels, num_res_blocks=1, attn_levels=())
        return net, lambda net, y, s: net(y, torch.full((y.shape[0],), 0.5, device=y.device), cond=_map(y, s))
    raise DiffDenoiseError(f"unknown reference {name!r}; valid: {', '.join(REFERENCES)}")


# ----------------------------------------------------------------------------------------------------- workloads

@dataclass(frozen=True)
class Workload:
    name: str
    batch: int
    height: int
    width: int

    @property
    def megapixels(self) -> float:
        return self.batch * self.height * self.width / 1e6


def workloads(names: list[str], batch: int, quick: bool) -> list[Workload]:
    table = {"batch": Workload(f"512x512 x{batch}", batch, 512, 512), "4k": Workload("3840x2160", 1, 2160, 3840)}
    if quick:
        table = {"batch": Workload(f"32x32 x{batch}", batch, 32, 32), "4k": Workload("192x96", 1, 96, 192)}
    return [table[n] for n in names]


def noisy_input(w: Workload, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(w.batch, 3, max(2, w.height // 64), max(2, w.width // 64), generator=g)
    clean = F.interpolate(coarse, size=(w.height, w.width), mode="bicubic", align_corners=False).clamp(0, 1)
    return (clean + SIGMA * torch.randn(clean.shape, generator=g)).to(device)


# -------------------------------------------------------------------------------------------------------- timing

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def measure(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int, min_seconds: float,
            max_calls: int = 50) -> dict[str, Any]:
    """``warmup`` untimed calls, then timed calls until ``repeats`` of them and ``min_seconds`` in all."""
    for _ in range(warmup):
        fn()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < max_calls):
        times.append(timed(fn, device))
    out = {"seconds": statistics.median(times), "calls": len(times), "seconds_min": min(times),
           "seconds_max": max(times)}
    if device.type == "cuda":
        out["peak_gb"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return out


def ceilings(device: torch.device, quick: bool) -> dict[str, Any]:
    """Dense matmul TFLOP/s (fp32 as PyTorch runs it by default, and bf16) and copy bandwidth (GB/s)."""
    out: dict[str, Any] = {}
    n = 512 if quick or device.type == "cpu" else 8192
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        try:
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            r = measure(lambda: a @ b, device, warmup=2, repeats=5, min_seconds=0.5 if not quick else 0.05)
            out[f"matmul_{label}_tflops"] = 2 * n ** 3 / r["seconds"] / 1e12
            del a, b
        except Exception as e:  # noqa: BLE001 -- a ceiling that cannot be measured is recorded, not fatal
            out[f"matmul_{label}_error"] = str(e).splitlines()[0]
    out["matmul_n"] = n
    size = (64 if quick or device.type == "cpu" else 1024) * 2 ** 20
    src = torch.empty(size, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    r = measure(lambda: dst.copy_(src), device, warmup=2, repeats=5, min_seconds=0.5 if not quick else 0.05)
    out["copy_gb_per_s"] = 2 * size / r["seconds"] / 1e9
    out["copy_bytes"] = size
    out["matmul_fp32_allows_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return out


# ----------------------------------------------------------------------------------------------------------- rows

def _set_layout(method: Any, layout: str, device: torch.device) -> None:
    """Reference nets and loaded method nets: channels-last for nhwc on CUDA, contiguous NCHW otherwise."""
    from diffdenoise.tiling import inner_net
    net, _ = inner_net(method, 3)
    if net is not None:
        fmt = torch.channels_last if layout == "nhwc" and device.type == "cuda" else torch.contiguous_format
        net.to(memory_format=fmt)


def build(kind: str, name: str, device: torch.device, precision: str, tile: Any, quick: bool
          ) -> tuple[Any, int | None]:
    """A fresh denoiser (Tiled unless ``tile`` is None) and its network's parameter count."""
    if kind == "method":
        spec = get_method_spec(name)
        if spec.family == "classical":
            return build_method(name, "cpu"), None
        method = build_method(name, device, tile=tile, precision=precision)
    else:
        torch.manual_seed(0)
        net, call = reference_net(name, quick)
        raw = Reference(net.to(device).eval(), call, precision)
        method = Tiled(raw, tile) if tile else raw
    from diffdenoise.tiling import inner_net
    net, _ = inner_net(method, 3)
    return method, (sum(p.numel() for p in net.parameters()) if net is not None else None)


def run_row(kind: str, name: str, w: Workload, precision: str, device: torch.device, args: argparse.Namespace
            ) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": kind, "name": name, "workload": w.name, "batch": w.batch,
                           "height": w.height, "width": w.width, "precision": precision, "compiled": False}
    if kind == "method":
        spec = get_method_spec(name)
        if not weights_present(spec):
            return {**row, "skipped": "no weights"}
        if spec.family == "classical":
            row["precision"] = "fp64/numpy (CPU)"
    try:
        method, params = build(kind, name, device, precision, args.tile, args.quick)
        row["params_m"] = None if params is None else params / 1e6
        classical = kind == "method" and get_method_spec(name).family == "classical"
        run_device = torch.device("cpu") if classical else device
        if not classical:
            _set_layout(method, args.layout, device)
        y = noisy_input(w, run_device)
        stochastic = kind == "method" and get_method_spec(name).stochastic

        def call() -> torch.Tensor:
            gen = torch.Generator(run_device).manual_seed(0) if stochastic else None
            with torch.inference_mode():
                return method(y, SIGMA, generator=gen)

        if args.compile and not classical:
            row["compiled"] = compile_method(method, 3, mode=args.compile_mode)
            row["first_call_s"] = timed(call, run_device)
        result = measure(call, run_device, args.warmup, args.repeats, args.min_seconds)
        row.update(result)
        row["mp_per_s"] = w.megapixels / result["seconds"]
        row["tile"] = list(method.last_tile) if getattr(method, "last_tile", None) else None
    except Exception as e:  # noqa: BLE001 -- OOM or a failing method: recorded, the others still run
        row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


# ------------------------------------------------------------------------------------------------------- reports

def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(), "python": platform.python_version(), "torch": torch.__version__,
        "device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark, "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update({"gpu": torch.cuda.get_device_name(device), "gpu_memory_gb": props.total_memory / 2 ** 30,
                    "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                    "gpu_count": torch.cuda.device_count()})
    else:
        env["gpu"] = None
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                env["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                                  platform.processor())
        except OSError:
            env["cpu"] = platform.processor()
    return env


def _num(value: Any, digits: int) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    env, c = result["environment"], result["ceilings"]
    where = env.get("gpu") or env.get("cpu") or env["device"]
    lines = [f"Speed on {where} ({env['device']}), torch {env['torch']}, {env['date']}; "
             f"compile: {'yes' if result['settings']['compile'] else 'no'}, layout {result['settings']['layout']}, "
             f"tile {result['settings']['tile']}.", "",
             f"Ceilings: matmul fp32 {_num(c.get('matmul_fp32_tflops'), 3)} TFLOP/s, bf16 "
             f"{_num(c.get('matmul_bf16_tflops'), 3)} TFLOP/s (n = {c['matmul_n']}); copy "
             f"{_num(c.get('copy_gb_per_s'), 0)} GB/s (read + write).", "",
             "| row | params (M) | workload | precision | MP/s | s/call | peak GB | tile | first call s |",
             "|---|---:|---|---|---:|---:|---:|---|---:|"]
    for r in result["rows"]:
        label = f"{r['name']}" + (" (ref.)" if r["kind"] == "reference" else "")
        if "skipped" in r or "error" in r:
            why = (r.get("skipped") or r.get("error", "")).replace("|", "\\|")
            lines.append(f"| {label} | | {r['workload']} | {r['precision']} | {'skipped' if 'skipped' in r else 'error'}"
                         f": {why} | | | | |")
            continue
        tile = "x".join(map(str, r["tile"])) if r.get("tile") else ""
        lines.append(f"| {label} | {_num(r.get('params_m'), 2)} | {r['workload']} | {r['precision']} | "
                     f"{r['mp_per_s']:.3g} | {r['seconds']:.4g} | "
                     f"{_num(r.get('peak_gb'), 2)} | {tile} | {_num(r.get('first_call_s'), 1)} |")
    return "\n".join(lines) + "\n"



def random_weights(cards: Path) -> Path:
    """A temporary weights folder: every card of ``cards`` with random fp16 weights for its network."""
    import json
    import tempfile
    from safetensors.torch import save_file
    from diffdenoise.nets import build_net
    folder = Path(tempfile.mkdtemp(prefix="speed_weights_"))
    for card_path in sorted(cards.glob("*.json")):
        card = json.loads(card_path.read_text())
        if "net" not in card:
            continue
        torch.manual_seed(0)
        net = build_net(card["net"]["name"], **card["net"].get("kwargs", {}))
        name = card_path.stem + ".safetensors"
        save_file({k: v.detach().half().contiguous() for k, v in net.state_dict().items()}, str(folder / name))
        card["files"] = [name]
        (folder / card_path.name).write_text(json.dumps(card))
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Examples:\n"
                                        "  PYTHONPATH=src python3 benchmarks/speed.py --device cuda --out $OUT/speed\n"
                                        "  PYTHONPATH=src python3 benchmarks/speed.py --device cpu --quick --out /tmp/s")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="torch device (default: cuda when available, else cpu)")
    ap.add_argument("--out", required=True, help="output prefix: writes <out>.json and <out>.md")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma list of registry methods, '' for none (default: %(default)s)")
    ap.add_argument("--references", nargs="*", default=list(REFERENCES), choices=list(REFERENCES),
                    help="reference networks; give the flag alone for none (default: all)")
    ap.add_argument("--workloads", nargs="+", default=["batch", "4k"], choices=["batch", "4k"],
                    help="batch: --batch 512x512 images; 4k: one 3840x2160 image (default: both)")
    ap.add_argument("--batch", type=int, default=8, help="images in the 512x512 batch (default: 8)")
    ap.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=None,
                    help="default: fp32 bf16 on CUDA, fp32 on the CPU (autocast is CUDA-only here)")
    ap.add_argument("--layout", choices=["nhwc", "nchw"], default="nhwc",
                    help="memory layout of the networks on CUDA (default: nhwc = channels-last)")
    ap.add_argument("--tile", default="auto", help="auto, N pixels, or 0 for whole images (default: auto)")
    ap.add_argument("--compile", action="store_true", help="torch.compile each network (default: off)")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode, e.g. reduce-overhead (CUDA graphs) or max-autotune (default: none)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default: 2)")
    ap.add_argument("--repeats", type=int, default=3, help="least timed calls (default: 3)")
    ap.add_argument("--min-seconds", type=float, default=2.0, help="least timed seconds per row (default: 2)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 32x32 / 192x96 inputs, tile 96, narrow reference nets, one untimed-free call")
    ap.add_argument("--random-weights-from", default=None, metavar="CARDS",
                    help="a folder of weight cards (JSON): time each method's exact architecture with random "
                         "weights (speed does not depend on the values; lets the GPU run without carrying 90 MB)")
    args = ap.parse_args(argv)
    if args.random_weights_from:
        os.environ["DIFFDENOISE_WEIGHTS"] = str(random_weights(Path(args.random_weights_from)))

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("speed.py: --device cuda asked for, no CUDA GPU visible")
        torch.backends.cudnn.benchmark = True
    args.tile = None if args.tile in ("0", "none") else ("auto" if args.tile == "auto" else int(args.tile))
    if args.quick:
        args.tile = 96 if args.tile == "auto" else args.tile
        args.warmup, args.repeats, args.min_seconds = 0, 1, 0.0
        args.batch = min(args.batch, 2)
    precisions = args.precisions or (["fp32", "bf16"] if device.type == "cuda" else ["fp32"])
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    jobs = [("method", m) for m in methods] + [("reference", r) for r in args.references]

    result: dict[str, Any] = {"environment": environment(device), "settings": {
        "device": str(device), "methods": methods, "references": args.references, "workloads": args.workloads,
        "batch": args.batch, "precisions": precisions, "layout": args.layout, "tile": args.tile,
        "compile": args.compile, "compile_mode": args.compile_mode, "warmup": args.warmup, "repeats": args.repeats,
        "min_seconds": args.min_seconds, "quick": args.quick, "sigma": SIGMA,
        "command": "python3 benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv)}}
    print(f"speed: {result['environment'].get('gpu') or result['environment'].get('cpu')}, torch {torch.__version__}",
          file=sys.stderr, flush=True)
    result["ceilings"] = ceilings(device, args.quick)
    rows: list[dict[str, Any]] = []
    result["rows"] = rows
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for kind, name in jobs:
        classical = kind == "method" and name in _classical_names()
        for w in workloads(args.workloads, args.batch, args.quick):
            for precision in (precisions[:1] if classical else precisions):
                t0 = time.time()
                row = run_row(kind, name, w, precision, device, args)
                rows.append(row)
                status = row.get("skipped") or row.get("error") or f"{row['mp_per_s']:.3g} MP/s"
                print(f"  {kind} {name} {w.name} {precision}: {status} ({time.time() - t0:.1f} s)",
                      file=sys.stderr, flush=True)
                write_text(out.with_name(out.name + ".json"), json.dumps(result, indent=1) + "\n")  # partial results
    write_text(out.with_name(out.name + ".json"), json.dumps(result, indent=1) + "\n")
    write_text(out.with_name(out.name + ".md"), markdown(result))
    print(markdown(result))
    return 0


def _classical_names() -> set[str]:
    from diffdenoise.registry import METHODS as ALL
    return {n for n, s in ALL.items() if s.family == "classical"}


if __name__ == "__main__":
    sys.exit(main())
