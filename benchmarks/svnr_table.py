"""SVNR against its baselines on spatially variant noise (SPEC 3.6; Pearl et al. 2023, Table 1 in spirit).

Synthetic noise on Kodak24 and CBSD68, with the SPEC §1 protocol (x = uint8 / 255; noise drawn by the noise model
from a generator seeded with the image's sorted index; y unclipped; output clipped, rounded to uint8; PSNR/SSIM on
uint8):

- Poisson-Gaussian ``poisson_gaussian:A,B`` at three strengths (var = A x + B^2, B in 8-bit units), and
- smooth random spatial maps ``spatial:5,50`` (std from 5 to 50 over each image).

Each method gets what it is built to take (the "sigma given" column):

==================  ================================================================================
svnr                the per-pixel std map a user can know (SVNR's time map comes from it): the draw's exact map
                    for signal-independent noise (spatial maps), and for Poisson-Gaussian the model's map at
                    the 5x5 local mean of y (``NoiseModel.observed_map``); the default single step, the MMSE
                    estimate at t* (SPEC 3.7)
svnr (oracle map)   the exact map of the draw also for Poisson-Gaussian, s^2 = a x + b^2 of the *clean* x: it
                    leaks x (x = (s^2 - b^2) / a), so this row is an upper bound, not a result
svnr 25-step        the same map, the paper's reverse sampler in 25 steps
svnr naive [25]     the ablation trained with independent x_t noise (weights svnr-*-naive), the map
bm3d                the RMS over the image of the (observed) map, one float (CBM3D for colour)
cddpm [25-step]     the same RMS, one float (a Gaussian-noise model, scalar time), 1 or 25 steps
==================  ================================================================================

FMDD (real fluorescence microscopy pairs, gray) is run blind: ``sigma=None`` for every method, so svnr estimates its
map with ``diffdenoise.estimate.estimate_noise_map``.

Per method and setting: mean PSNR, SSIM, network evaluations per image (counted by forward hooks on the method's
networks; "-" for methods without one) and seconds per image (CUDA synchronised; the first image is run once
untimed to load weights and warm kernels).  Methods whose weights or packages are missing are listed as skipped.

Usage (GPU, weights in weights/ or $DIFFDENOISE_WEIGHTS):
    PYTHONPATH=src python benchmarks/svnr_table.py --device cuda --out benchmarks/results/svnr
    PYTHONPATH=src python benchmarks/svnr_table.py --limit 2 --sets kodak24 --noises spatial:5,50   # quick look
CPU-sized look (centre 128 px crops; one torch thread is much faster than two on a shared 2-core box):
    OMP_NUM_THREADS=1 python benchmarks/svnr_table.py --device cpu --no-fmdd --limit 2 --crop 128 --warm-crop 32 \
        --out benchmarks/results/cpu/svnr_table
Writes ``<out>.md`` (the table) and ``<out>.json`` (summary, per-image records, settings).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from diffdenoise import metrics
from diffdenoise.bench import load_benchmark, read_u8
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import from_tensor, quantize, read_image, to_tensor
from diffdenoise.noise import parse_noise, spec
from diffdenoise.registry import build_method

NOISES = ("poisson_gaussian:0.0025,2", "poisson_gaussian:0.01,5", "poisson_gaussian:0.03,10", "spatial:5,50")
SETS = ("kodak24", "cbsd68")

# row name -> (registry method, builder options, what sigma it gets: "map" | "oracle" | "rms")
ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "svnr": ("svnr", {}, "map"),                                   # the default: 1 step (the MMSE estimate)
    "svnr (oracle map)": ("svnr", {}, "oracle"),                   # the map computed from the clean image
    "svnr 25-step": ("svnr", {"steps": 25}, "map"),                # the paper's sampler
    "svnr naive": ("svnr", {"naive": True}, "map"),
    "svnr naive 25-step": ("svnr", {"naive": True, "steps": 25}, "map"),
    "bm3d": ("bm3d", {}, "rms"),
    "cddpm": ("cddpm", {}, "rms"),                                 # scalar-time diffusion baseline, 1 step
    "cddpm 25-step": ("cddpm", {"steps": 25}, "rms"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _networks(obj: Any, depth: int = 5) -> list[nn.Module]:
    """The nn.Modules a built method holds (attributes, dicts and lists, a few levels down: svnr keeps its UNet
    four levels under the registry builder), outermost only."""
    found: list[nn.Module] = []

    def walk(o: Any, d: int) -> None:
        if isinstance(o, nn.Module):
            if all(o is not f for f in found):
                found.append(o)
            return
        if d == 0 or isinstance(o, (str, bytes, int, float, torch.Tensor)):
            return
        if isinstance(o, dict):
            items = list(o.values())
        elif isinstance(o, (list, tuple)):
            items = list(o)
        elif hasattr(o, "__dict__"):
            items = list(vars(o).values())
        else:
            return
        for v in items:
            walk(v, d - 1)

    walk(obj, depth)
    return found


class Counter:
    """Counts forward calls of every network a method holds (hooks attached after its first, loading call)."""

    def __init__(self) -> None:
        self.count = 0
        self._hooked: set[int] = set()
        self.any = False

    def attach(self, method: Any) -> None:
        for net in _networks(method):
            if id(net) not in self._hooked:
                net.register_forward_pre_hook(self._hook)
                self._hooked.add(id(net))
                self.any = True

    def _hook(self, module: nn.Module, args: Any) -> None:
        self.count += 1


def _rms(s: torch.Tensor) -> float:
    return float(s.double().pow(2).mean().sqrt())


def run_rows(rows: list[str], items: list[tuple[str, torch.Tensor, torch.Tensor | None, np.ndarray]],
             device: torch.device, steps: int | None, blind: bool, log: Callable[[str], None],
             warm_crop: int | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every row over the prepared images ``(name, y, sigma_map or None, clean uint8)``; records and skips.

    The untimed warm-up runs on the first image, or on its top-left ``warm_crop`` square when given (enough to load
    the weights on CPU, where there are no kernels to warm)."""
    records, skipped = [], {}
    for row in rows:
        name, options, given = ROWS[row]
        options = dict(options)
        if name == "svnr" and steps is not None and "steps" not in options:
            options["steps"] = steps
        try:
            method = build_method(name, device, **options)
            counter = Counter()
            out_rows = []
            for index, (image, y, s, clean) in enumerate(items):
                y = y.to(device)
                sigma: Any = None if (blind or s is None) else (s[given].to(device) if given in ("map", "oracle")
                                                                else _rms(s["map"]))
                if index == 0:                                # load weights, warm kernels: untimed
                    wy, ws = y, sigma
                    if warm_crop:
                        wy = y[..., :warm_crop, :warm_crop]
                        ws = sigma[..., :warm_crop, :warm_crop] if isinstance(sigma, torch.Tensor) else sigma
                    with torch.no_grad():
                        method(wy, ws, generator=torch.Generator(device).manual_seed(0))
                    counter.attach(method)
                counter.count = 0
                generator = torch.Generator(device).manual_seed(index)
                _sync(device)
                t0 = time.perf_counter()
                with torch.no_grad():
                    x_hat = method(y, sigma, generator=generator)
                _sync(device)
                seconds = time.perf_counter() - t0
                out = quantize(from_tensor(x_hat.cpu()), 8)
                out_rows.append({"row": row, "image": image, "psnr": metrics.psnr(out, clean),
                                 "ssim": metrics.ssim(out, clean), "seconds": seconds,
                                 "evaluations": counter.count if counter.any else None,
                                 "sigma_given": "none (blind)" if sigma is None else given})
            records.extend(out_rows)
            log(f"  {row}: PSNR {np.mean([r['psnr'] for r in out_rows]):.2f}")
        except (DiffDenoiseError, ImportError) as e:         # missing weights, package, or not yet written
            skipped[row] = str(e).splitlines()[0] or type(e).__name__
            log(f"  {row}: skipped ({skipped[row]})")
    return records, skipped


def centre_crop(a: np.ndarray, side: int | None) -> np.ndarray:
    """The centre ``side`` x ``side`` square of an H x W (x C) array (the whole array when ``side`` is None)."""
    if not side:
        return a
    h, w = a.shape[:2]
    top, left = max(h - side, 0) // 2, max(w - side, 0) // 2
    return a[top:top + side, left:left + side]


def synthetic_items(folder: Path, noise: str, limit: int | None, crop: int | None = None):
    model = parse_noise(noise)
    bench = load_benchmark(folder, limit=limit)
    items = []
    for index, item in enumerate(bench):
        clean = np.ascontiguousarray(centre_crop(read_u8(item.clean), crop))
        x = to_tensor(clean.astype(np.float32) / 255.0)
        drawn = model.draw(x, torch.Generator().manual_seed(index))
        maps = {"oracle": drawn.sigma_map,    # from the clean x: leaks it when the noise is signal-dependent
                "map": model.observed_map(drawn.y) if model.signal_dependent else drawn.sigma_map}
        items.append((item.name, drawn.y, maps, clean))
    return bench.name, spec(model), items


def pair_items(folder: Path, limit: int | None):
    bench = load_benchmark(folder, limit=limit)
    items = []
    for item in bench:
        clean = read_u8(item.clean)
        y = to_tensor(read_image(item.noisy).data)
        items.append((item.name, y, None, clean))
    return bench.name, "real", items


def summarise(records: list[dict[str, Any]], dataset: str, noise: str) -> list[dict[str, Any]]:
    out = []
    for row in dict.fromkeys(r["row"] for r in records):
        rs = [r for r in records if r["row"] == row]
        nfe = [r["evaluations"] for r in rs if r["evaluations"] is not None]
        out.append({"method": row, "dataset": dataset, "noise": noise, "sigma_given": rs[0]["sigma_given"],
                    "psnr": float(np.mean([r["psnr"] for r in rs])), "ssim": float(np.mean([r["ssim"] for r in rs])),
                    "evaluations": float(np.mean(nfe)) if nfe else None,
                    "seconds_per_image": float(np.mean([r["seconds"] for r in rs])), "images": len(rs)})
    return out


def markdown(summary: list[dict[str, Any]], skipped: dict[str, str]) -> str:
    lines = ["| dataset | noise | method | sigma given | PSNR | SSIM | net evals | s/image | images |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in summary:
        psnr = "inf" if math.isinf(r["psnr"]) else f"{r['psnr']:.2f}"
        nfe = "-" if r["evaluations"] is None else f"{r['evaluations']:.0f}"
        lines.append(f"| {r['dataset']} | {r['noise']} | {r['method']} | {r['sigma_given']} | {psnr} | "
                     f"{r['ssim']:.4f} | {nfe} | {r['seconds_per_image']:.3g} | {r['images']} |")
    for row, why in skipped.items():
        lines.append(f"| | | {row} | skipped: {why.replace('|', '/')} | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from diffdenoise.data import default_data_root
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Examples:\n  PYTHONPATH=src python benchmarks/svnr_table.py --device cuda\n"
                                       "  PYTHONPATH=src python benchmarks/svnr_table.py --limit 2 --rows svnr bm3d\n")
    p.add_argument("--data-root", default=None, help="folder holding kodak24/, cbsd68/, fmdd/ (default: shared/data)")
    p.add_argument("--sets", nargs="*", default=list(SETS),
                   help=f"synthetic-noise sets; none with FMDD alone (default: {' '.join(SETS)})")
    p.add_argument("--noises", nargs="+", default=list(NOISES), help="noise specs (default: the four of the table)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), help="methods (default: all)")
    p.add_argument("--no-fmdd", dest="fmdd", action="store_false", help="skip the blind FMDD part (default: run it)")
    p.add_argument("--limit", type=int, default=None, help="first N images of each set (default: all)")
    p.add_argument("--steps", type=int, default=None, help="svnr reverse steps (default: the method's, 1)")
    p.add_argument("--crop", type=int, default=None,
                   help="centre N x N crop of each clean image before the noise is drawn (synthetic sets only; "
                        "a CPU-sized look, not the SPEC protocol; default: whole images)")
    p.add_argument("--warm-crop", type=int, default=None,
                   help="run the untimed warm-up on the first image's top-left N x N crop only (CPU: it just loads "
                        "the weights; default: the whole first image)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="torch device (default: cuda when available)")
    p.add_argument("--out", default="benchmarks/results/svnr_table", help="output stem for .md and .json "
                                                                           "(default: benchmarks/results/svnr_table)")
    args = p.parse_args(argv)
    root = Path(args.data_root) if args.data_root else default_data_root()
    device = torch.device(args.device)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)          # noqa: E731

    summary, records, skipped = [], [], {}
    config = {"sets": args.sets, "noises": args.noises, "rows": {r: ROWS[r] for r in args.rows}, "fmdd": args.fmdd,
              "limit": args.limit, "steps": args.steps, "crop": args.crop, "warm_crop": args.warm_crop,
              "data_root": str(root), "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
              "torch": torch.__version__, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv), "skipped": skipped,
              "map_given": "observed: NoiseModel.observed_map for signal-dependent noise (the exact map only in "
                           "the 'svnr (oracle map)' row)",
              "protocol": "SPEC §1: noise seeded by sorted index, y unclipped, output clipped and rounded to uint8"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> str:                       # after every (set, noise): an interrupted run keeps what it measured
        table = markdown(summary, skipped)
        out.with_suffix(".md").write_text(table)
        out.with_suffix(".json").write_text(json.dumps({"summary": summary, "records": records, "config": config},
                                                       indent=2, default=str) + "\n")
        return table

    jobs = [(s, n) for s in args.sets for n in args.noises] + ([("fmdd", None)] if args.fmdd else [])
    try:
        for dataset, noise in jobs:
            if noise is None:
                name, noise_name, items = pair_items(root / dataset, args.limit)
            else:
                name, noise_name, items = synthetic_items(root / dataset, noise, args.limit, args.crop)
            log(f"{name} {noise_name} ({len(items)} images)")
            recs, skips = run_rows(args.rows, items, device, args.steps, noise is None, log, args.warm_crop)
            for r in recs:
                r.update(dataset=name, noise=noise_name)
            records.extend(recs)
            skipped.update(skips)
            summary.extend(summarise(recs, name, noise_name))
            write()
    except DiffDenoiseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    table = write()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
