"""PSNR/SSIM of the noisy input itself on real-pair sets: the floor every denoiser of the real-noise tables must beat.

    .venv/bin/python benchmarks/noisy_input.py ../shared/data/polyu:test ../shared/data/fmdd ../shared/data/sidd_sample

Same reading and metrics as ``diffdenoise bench`` (uint8 noisy file against the uint8 clean file, SPEC §1).
A ``:split`` suffix selects ``<split>_split.txt``.
"""
from __future__ import annotations

import sys

import numpy as np

from diffdenoise import metrics
from diffdenoise.bench import load_benchmark, read_u8


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print("| dataset | pairs | PSNR | SSIM |\n|---|---:|---:|---:|")
    for arg in argv:
        path, _, split = arg.partition(":")
        bench = load_benchmark(path, split=split or None)
        psnr, ssim = [], []
        for item in bench:
            y, x = read_u8(item.noisy), read_u8(item.clean)
            psnr.append(metrics.psnr(y, x))
            ssim.append(metrics.ssim(y, x))
        print(f"| {bench.name} | {len(bench)} | {np.mean(psnr):.2f} | {np.mean(ssim):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
