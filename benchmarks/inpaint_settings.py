"""The settings of the classical inpainting baselines (``diffdenoise.classical.inpaint``), measured on training images.

1. OpenCV's float input scale: Telea and Navier-Stokes on float32 planes in [0, 1], in 8-bit units (x 255) and in
   16-bit units (x 65535), against OpenCV's own uint8 path.
2. The OpenCV neighbourhood ``radius``: mean PSNR for radius 1, 2, 3, 5, 8 at 50 % and 80 % missing.
3. Blocked biharmonic: ``block``/``halo`` pairs against the whole-image solve (``block=None``): PSNR to the clean
   image, PSNR between the blocked and the whole-image output (agreement), and seconds.

Images: the first ``--images`` files of ``bsds500/train`` (never a test set); image i gets the mask of
``missing:p`` drawn with generator seed i (the protocol of ``benchmarks/impute_table.py``).  PSNR on uint8, SPEC §1.

Usage:
    nice -n 10 .venv/bin/python benchmarks/inpaint_settings.py --out benchmarks/results/cpu/inpaint_settings.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from diffdenoise.bench import read_u8
from diffdenoise.classical import inpaint
from diffdenoise.data import default_data_root
from diffdenoise.imageio import quantize
from diffdenoise.metrics import psnr
from diffdenoise.noise import Missing


def observed_mask(x8: np.ndarray, p: float, seed: int) -> np.ndarray:
    x = torch.from_numpy(x8.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    return Missing(p).draw(x, torch.Generator().manual_seed(seed)).mask[0, 0].numpy() > 0.5


def scale_check(images: list[np.ndarray], p: float) -> list[dict]:
    import cv2
    rows = []
    for name, flag in (("telea", cv2.INPAINT_TELEA), ("ns", cv2.INPAINT_NS)):
        for scale in ("uint8", 1.0, 255.0, 65535.0):
            vals = []
            for i, x8 in enumerate(images):
                holes = (~observed_mask(x8, p, i)).astype(np.uint8)
                if scale == "uint8":
                    out = cv2.inpaint(np.ascontiguousarray(x8 * (1 - holes[:, :, None])), holes, 3, flag)
                else:
                    xf = x8.astype(np.float32) / 255 * scale
                    out = np.stack([cv2.inpaint(np.ascontiguousarray(xf[:, :, k]), holes, 3, flag)
                                    for k in range(3)], axis=2) / scale
                    out = quantize(out)
                vals.append(psnr(out, x8))
            rows.append({"method": name, "input": str(scale), "missing": p, "psnr": float(np.mean(vals))})
            print(f"scale  {name:6s} {scale!s:8s} p={p}: {rows[-1]['psnr']:.3f} dB", flush=True)
    return rows


def radius_grid(images: list[np.ndarray], radii: list[float]) -> list[dict]:
    rows = []
    for p in (0.5, 0.8):
        for name in ("telea", "ns"):
            for r in radii:
                vals = [psnr(quantize(inpaint.INPAINTERS[name](x8.astype(np.float32) / 255,
                                                               observed_mask(x8, p, i), radius=r)), x8)
                        for i, x8 in enumerate(images)]
                rows.append({"method": name, "radius": r, "missing": p, "psnr": float(np.mean(vals))})
                print(f"radius {name:6s} r={r:g} p={p}: {rows[-1]['psnr']:.3f} dB", flush=True)
    return rows


def tiling_check(x8: np.ndarray, blocks: list[tuple[int, int]]) -> list[dict]:
    rows = []
    x = x8.astype(np.float32) / 255
    for p in (0.5, 0.8):
        m = observed_mask(x8, p, 0)
        t0 = time.perf_counter()
        whole = quantize(inpaint.biharmonic(x, m, block=None))
        rows.append({"block": None, "halo": None, "missing": p, "psnr": psnr(whole, x8), "agreement": None,
                     "seconds": time.perf_counter() - t0})
        print(f"biharmonic whole      p={p}: {rows[-1]['psnr']:.3f} dB  {rows[-1]['seconds']:.1f} s", flush=True)
        for block, halo in blocks:
            t0 = time.perf_counter()
            out = quantize(inpaint.biharmonic(x, m, block=block, halo=halo))
            rows.append({"block": block, "halo": halo, "missing": p, "psnr": psnr(out, x8),
                         "agreement": psnr(out, whole), "seconds": time.perf_counter() - t0})
            print(f"biharmonic {block:3d}/{halo:<3d}    p={p}: {rows[-1]['psnr']:.3f} dB  agreement "
                  f"{rows[-1]['agreement']:.2f} dB  {rows[-1]['seconds']:.1f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8, help="first N bsds500/train images (default: 8)")
    ap.add_argument("--data-root", default=None, help="data folder (default: $DIFFDENOISE_DATA or shared/data)")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    root = Path(args.data_root) if args.data_root else default_data_root()
    files = sorted((root / "bsds500" / "train").glob("*.jpg"))[:args.images]
    images = [read_u8(f) for f in files]
    result = {"images": [f.name for f in files],
              "scale": scale_check(images, 0.5),
              "radius": radius_grid(images, [1, 2, 3, 5, 8]),
              "biharmonic_tiling": tiling_check(images[0], [(64, 8), (128, 16)])}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
