"""Accuracy of the global noise-level estimators on Kodak24 (SPEC §4).

Protocol (SPEC §1): read each image as uint8, y = x + sigma * n with n ~ N(0, 1) drawn as a 1 x C x H x W float32
tensor from a torch.Generator seeded by the image's index in sorted file order, not clipped.  For every estimator
and sigma in {5, 15, 25, 50} (8-bit units) it reports the relative error |sigma_hat - sigma| / sigma (mean, max)
and the mean seconds per estimate, as a markdown table on stdout; ``--json PATH`` also writes every record.

    .venv/bin/python benchmarks/estimate_noise.py --json out/estimate_noise.json
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from diffdenoise.estimate import SIGMA_METHODS, estimate_sigma
from diffdenoise.imageio import read_image, to_tensor

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of PNG images (default {DEFAULT_DATA})")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[5, 15, 25, 50],
                        help="noise stds in 8-bit units (default 5 15 25 50)")
    parser.add_argument("--methods", nargs="+", default=list(SIGMA_METHODS), choices=SIGMA_METHODS,
                        help=f"estimators (default {' '.join(SIGMA_METHODS)})")
    parser.add_argument("--json", type=Path, default=None, help="write records and summary here (default: none)")
    args = parser.parse_args()
    default_method = inspect.signature(estimate_sigma).parameters["method"].default

    files = sorted(args.data.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG images in {args.data}")
    records = []
    for index, path in enumerate(files):
        x = to_tensor(read_image(path).data)
        for sigma in args.sigmas:
            g = torch.Generator().manual_seed(index)
            y = x + (sigma / 255.0) * torch.randn(x.shape, generator=g, dtype=torch.float32)
            for method in args.methods:
                t0 = time.perf_counter()
                sigma_hat = estimate_sigma(y, method) * 255.0
                seconds = time.perf_counter() - t0
                records.append({"image": path.name, "sigma": sigma, "method": method, "sigma_hat": sigma_hat,
                                "rel_error": abs(sigma_hat - sigma) / sigma, "seconds": seconds})

    summary = []
    for method in args.methods:
        for sigma in args.sigmas:
            rows = [r for r in records if r["method"] == method and r["sigma"] == sigma]
            err = np.array([r["rel_error"] for r in rows])
            summary.append({"method": method, "sigma": sigma, "mean_rel_error": float(err.mean()),
                            "max_rel_error": float(err.max()),
                            "mean_sigma_hat": float(np.mean([r["sigma_hat"] for r in rows])),
                            "mean_seconds": float(np.mean([r["seconds"] for r in rows]))})

    header = "| method | " + " | ".join(f"sigma {s:g}" for s in args.sigmas) + " | s / image |"
    print(f"Relative error |sigma_hat - sigma| / sigma on {args.data.name} ({len(files)} images), mean (max); "
          f"{date.today().isoformat()}, {os.cpu_count()}-core CPU ({platform.machine()})")
    print()
    print(header)
    print("|" + "---|" * (len(args.sigmas) + 2))
    for method in args.methods:
        cells = [s for s in summary if s["method"] == method]
        row = " | ".join(f"{100 * c['mean_rel_error']:.2f}% ({100 * c['max_rel_error']:.1f}%)" for c in cells)
        secs = np.mean([c["mean_seconds"] for c in cells])
        print(f"| {method}{' (default)' if method == default_method else ''} | {row} | {secs:.3f} |")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": date.today().isoformat(), "data": str(args.data),
                                         "cpu_cores": os.cpu_count(), "protocol": "uint8 x, y = x + sigma n, "
                                         "n ~ N(0,1) 1xCxHxW float32, torch.Generator seeded by sorted index, no clip",
                                         "summary": summary, "records": records}, indent=1))


if __name__ == "__main__":
    main()
