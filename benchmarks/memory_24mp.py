"""Peak memory of denoising a 24-megapixel RGB photo with tiled inference (``tile="auto"``, diffdenoise.tiling).

A synthetic 6000 x 4000 image (a smooth colour pattern plus Gaussian noise, built a band of rows at a time so the
script holds only the noisy image and the output at full size) is denoised with the default method
(``registry.default_method()``, weights from weights/) on the CPU; the script reports the seconds, the peak resident
set size (``resource.getrusage(...).ru_maxrss``) and the PSNR against the pattern (recomputed band by band).  The
target is a peak under 4 GB.

    python benchmarks/memory_24mp.py                                   # the full 24 MP run (slow on a CPU)
    python benchmarks/memory_24mp.py --size 1000x800                   # a quick check that it works
    python benchmarks/memory_24mp.py --method dncnn --tile 512 --sigma 25
"""
from __future__ import annotations

import argparse
import math
import resource
import time

import torch

from diffdenoise.registry import build_method, default_method, get_method_spec

BAND = 256          # rows per band when building the image and scoring the result


def clean_band(top: int, rows: int, h: int, w: int) -> torch.Tensor:
    """Rows ``top .. top + rows`` of the smooth test pattern (1 x 3 x rows x w, values in [0.1, 0.9])."""
    r = (torch.arange(top, top + rows, dtype=torch.float32) / h).view(rows, 1)
    c = (torch.arange(w, dtype=torch.float32) / w).view(1, w)
    chans = [0.5 + 0.4 * torch.sin(6.0 * r + 9.0 * c + k) * torch.cos(4.0 * c - 5.0 * r * r + 0.7 * k)
             for k in range(3)]
    return torch.stack(chans).unsqueeze(0)


def noisy_image(h: int, w: int, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.empty(1, 3, h, w)
    for top in range(0, h, BAND):
        rows = min(BAND, h - top)
        y[:, :, top:top + rows] = clean_band(top, rows, h, w) + sigma * torch.randn(1, 3, rows, w, generator=g)
    return y


def psnr(x_hat: torch.Tensor) -> float:
    """PSNR (dB, peak 1) of ``x_hat`` clipped to [0, 1] against the pattern."""
    _, _, h, w = x_hat.shape
    sse = 0.0
    for top in range(0, h, BAND):
        rows = min(BAND, h - top)
        d = x_hat[:, :, top:top + rows].clamp(0, 1) - clean_band(top, rows, h, w)
        sse += float(d.double().pow(2).sum())
    return 10 * math.log10(1.0 / (sse / x_hat.numel()))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9        # ru_maxrss: KiB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default=None, help="method name (default: registry.default_method())")
    parser.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT (default: 6000x4000)")
    parser.add_argument("--tile", default="auto", help="tile side, 'auto' or 'none' (default: auto)")
    parser.add_argument("--sigma", type=float, default=15.0, help="noise std in 8-bit units (default: 15)")
    parser.add_argument("--steps", type=int, default=None, help="steps option of the method (default: its own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and of the method (default: 0)")
    args = parser.parse_args(argv)

    width, height = (int(v) for v in args.size.lower().split("x"))
    name = args.method or default_method()
    tile: int | str | None = None if args.tile == "none" else (args.tile if args.tile == "auto" else int(args.tile))
    options = {"steps": args.steps} if args.steps is not None else {}
    y = noisy_image(height, width, args.sigma / 255, args.seed)
    before = peak_rss_gb()
    method = build_method(name, "cpu", tile=tile, **options)
    spec = get_method_spec(name)
    t0 = time.perf_counter()
    x_hat = method(y, None, generator=torch.Generator().manual_seed(args.seed))
    seconds = time.perf_counter() - t0
    peak = peak_rss_gb()
    used = getattr(method, "last_tile", None)              # (rows, cols) of the tiles; None: not tiled
    tiles = "whole image" if used is None or used == (height, width) else f"tiles {used[1]}x{used[0]}"
    print(f"method {name} ({spec.family}), image {width}x{height} RGB, noise gaussian:{args.sigma:g}, "
          f"tile={args.tile}: {tiles}, torch threads {torch.get_num_threads()}")
    print(f"seconds {seconds:.1f}  peak RSS {peak:.2f} GB (before denoising: {before:.2f} GB)  "
          f"target < 4 GB: {'met' if peak < 4 else 'MISSED'}")
    print(f"PSNR noisy {psnr(y):.2f} dB -> denoised {psnr(x_hat):.2f} dB")


if __name__ == "__main__":
    main()
