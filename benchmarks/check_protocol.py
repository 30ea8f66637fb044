"""Check the benchmark harness against an independent implementation of the SPEC §1 protocol, with (C)BM3D.

This script does the whole protocol by hand — PIL to read the files, torch for the seeded Gaussian noise, the `bm3d`
package called directly, numpy for clipping, rounding and PSNR — then runs ``diffdenoise.bench.run_bench`` with the
``bm3d`` method on the same images and prints both means and their difference, which must be within the tolerance
(0.1 dB).  It imports neither ``diffdenoise.bench`` (until the comparison) nor ``diffdenoise.metrics``.

The protocol written out: ``u8`` the clean file as uint8 (H x W x C); ``x = u8 / 255`` (float32); noise
``n = randn(1, C, H, W)`` from ``torch.Generator().manual_seed(i)``, ``i`` the image's 0-based index in sorted
file-name order; ``y = x + sigma/255 * n``, not clipped; ``x_hat = BM3D(y, sigma/255)`` (CBM3D for colour);
``out = round(clip(x_hat, 0, 1) * 255)`` as uint8; ``PSNR = 10 log10(255^2 / mean((out - u8)^2))`` over all pixels
and channels, no crop.

Usage: python benchmarks/check_protocol.py --data /work/shared/data/kodak24 --sigma 25 [--limit N]
Exit status: 0 when the harness agrees within --tol, 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


def read_u8(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        a = np.array(im.convert("L" if im.mode in ("L", "1", "I;16") else "RGB"))
    return a[:, :, None] if a.ndim == 2 else a


def noisy_input(u8: np.ndarray, index: int, sigma: float) -> np.ndarray:
    """y = u8/255 + sigma n, n drawn as a 1 x C x H x W tensor from a generator seeded with the index; unclipped."""
    x = torch.from_numpy(u8.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    n = torch.randn(x.shape, generator=torch.Generator().manual_seed(index), dtype=torch.float32)
    y = x + (sigma / 255.0) * n
    return y[0].permute(1, 2, 0).numpy()


def denoise_bm3d(y: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d
    if y.shape[2] == 3:
        return np.asarray(bm3d.bm3d_rgb(y.astype(np.float64), sigma_psd=sigma / 255.0))
    return np.asarray(bm3d.bm3d(y[:, :, 0].astype(np.float64), sigma_psd=sigma / 255.0)).reshape(y.shape)


def to_u8(x_hat: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x_hat.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def noise_module_agrees(u8: np.ndarray, index: int, sigma: float) -> float:
    """Max |difference| between this script's noisy input and diffdenoise.noise's (a diagnostic, not a number)."""
    from diffdenoise.noise import parse_noise
    x = torch.from_numpy(u8.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    y = parse_noise(f"gaussian:{sigma:g}").sample(x, torch.Generator().manual_seed(index))
    return float(np.abs(y[0].permute(1, 2, 0).numpy() - noisy_input(u8, index, sigma)).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="folder of clean images")
    parser.add_argument("--sigma", type=float, default=25.0, help="Gaussian noise std in 8-bit units (default 25)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only (default: all)")
    parser.add_argument("--tol", type=float, default=0.1, help="allowed |difference| of mean PSNR in dB (default 0.1)")
    args = parser.parse_args(argv)

    files = sorted((p for p in args.data.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
                   key=lambda p: p.name)[: args.limit]
    if not files:
        print(f"no images in {args.data}", file=sys.stderr)
        return 2

    own: list[float] = []
    for index, path in enumerate(files):
        u8 = read_u8(path)
        t0 = time.perf_counter()
        out = to_u8(denoise_bm3d(noisy_input(u8, index, args.sigma), args.sigma))
        own.append(psnr_u8(out, u8))
        print(f"independent  {path.name}: {own[-1]:.4f} dB  ({time.perf_counter() - t0:.1f} s; noisy input vs "
              f"diffdenoise.noise max |diff| {noise_module_agrees(u8, index, args.sigma):.2e})", flush=True)
    own_mean = float(np.mean(own))
    print(f"independent mean PSNR: {own_mean:.4f} dB over {len(files)} image(s)", flush=True)

    from diffdenoise.bench import run_bench
    result = run_bench(["bm3d"], args.data, noise=f"gaussian:{args.sigma:g}", limit=args.limit, progress=False)
    for mine, record in zip(own, result["records"]):
        print(f"run_bench    {record['image']}: {record['psnr']:.4f} dB  (difference {record['psnr'] - mine:+.4f})")
    bench_mean = result["summary"][0]["psnr"]
    diff = bench_mean - own_mean
    print(f"run_bench mean PSNR:   {bench_mean:.4f} dB over {result['summary'][0]['images']} image(s)")
    ok = abs(diff) <= args.tol and result["summary"][0]["images"] == len(files)
    print(f"difference: {diff:+.4f} dB -> {'OK' if ok else 'MISMATCH'} (tolerance {args.tol} dB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
