"""Does a real-photo model still remove *real* noise?  One-step gain on PolyU training pairs and on Gaussian noise.

A fine-tune can keep denoising synthetic noise while it loses PolyU's mild, in-camera-processed noise, and its
training loss barely shows it (GPU round 9, chunk a).  This probe measures, for each weights folder, the one-step
PSNR gain ``PSNR(S(y, T), x) - PSNR(y, x)`` (float outputs clipped to [0, 1], top-left crops) on

- every k-th PolyU *training* pair (names not in ``polyu/test_split.txt``), and
- the first BSDS500 test images with Gaussian noise of ``--sigma`` (8-bit units; image i drawn with seed i).

    PYTHONPATH=src python benchmarks/realdiff_probe.py --models shipped=weights T20=runs/T20-weights --pairs 3
Writes ``<out>.md`` and ``<out>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from diffdenoise import metrics
from diffdenoise.bench import read_u8
from diffdenoise.data import default_data_root
from diffdenoise.diffusion.realdiff import RealDiff


def crop(a: np.ndarray, size: int) -> torch.Tensor:
    return torch.from_numpy(a[:size, :size]).float().permute(2, 0, 1)[None] / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """The project's PSNR on float images in [0, 1] (``a`` clipped)."""
    return metrics.psnr(a.clamp(0, 1).numpy(), b.numpy(), peak=1.0)


def polyu_train_pairs(root: Path, n: int, size: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    test = set((root / "polyu" / "test_split.txt").read_text().split())
    names = sorted(p.name for p in (root / "polyu" / "noisy").iterdir() if p.name not in test)
    step = max(1, len(names) // n)
    return [(name, crop(read_u8(root / "polyu" / "noisy" / name), size),
             crop(read_u8(root / "polyu" / "clean" / name), size)) for name in names[::step][:n]]


def gaussian_crops(root: Path, n: int, size: int, sigma: float) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    out = []
    for i, path in enumerate(sorted((root / "bsds500" / "test").glob("*.jpg"))[:n]):
        x = crop(read_u8(path), size)
        g = torch.Generator().manual_seed(i)
        out.append((path.name, x + sigma / 255.0 * torch.randn(x.shape, generator=g), x))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--models", nargs="+", required=True, metavar="LABEL=FOLDER",
                    help="weights folders holding a realdiff-color card")
    ap.add_argument("--pairs", type=int, default=3, help="PolyU training pairs and Gaussian crops (default 3)")
    ap.add_argument("--crop", type=int, default=256, help="crop side in pixels (default 256)")
    ap.add_argument("--sigma", type=float, default=20.0, help="Gaussian sigma, 8-bit units (default 20)")
    ap.add_argument("--data-root", default=None, help="data folder (default: $DIFFDENOISE_DATA or shared/data)")
    ap.add_argument("--out", default="benchmarks/results/realdiff_probe", help="output prefix")
    args = ap.parse_args(argv)
    root = Path(args.data_root) if args.data_root else default_data_root()
    sets = {"polyu_train": polyu_train_pairs(root, args.pairs, args.crop),
            f"gaussian_{args.sigma:g}": gaussian_crops(root, args.pairs, args.crop, args.sigma)}
    rows = []
    saved = os.environ.get("DIFFDENOISE_WEIGHTS")
    try:
        for item in args.models:
            label, _, folder = item.partition("=")
            os.environ["DIFFDENOISE_WEIGHTS"] = str(Path(folder).resolve())
            model = RealDiff.from_weights("realdiff-color", steps=1)
            row = {"model": label, "folder": folder, "T": model.T}
            for name, items in sets.items():
                with torch.no_grad():
                    gains = [psnr(model(y), x) - psnr(y, x) for _, y, x in items]
                row[name] = float(np.mean(gains))
                row[f"{name}_input"] = float(np.mean([psnr(y, x) for _, y, x in items]))
            rows.append(row)
            print(label, {k: round(v, 2) for k, v in row.items() if k in sets}, file=sys.stderr)
    finally:
        if saved is None:
            os.environ.pop("DIFFDENOISE_WEIGHTS", None)
        else:
            os.environ["DIFFDENOISE_WEIGHTS"] = saved
    lines = ["| model | T | " + " | ".join(f"{n} gain dB (input {rows[0][n + '_input']:.2f})" for n in sets) + " |",
             "|---|---:|" + "---:|" * len(sets)]
    lines += [f"| {r['model']} | {r['T']} | " + " | ".join(f"{r[n]:+.2f}" for n in sets) + " |" for r in rows]
    table = "\n".join(lines)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"date": dt.datetime.now().isoformat(timespec="seconds"), "crop": args.crop, "pairs": args.pairs,
            "sigma": args.sigma, "images": {n: [name for name, _, _ in items] for n, items in sets.items()},
            "command": " ".join(sys.argv)}
    Path(f"{out}.md").write_text(table + "\n")
    Path(f"{out}.json").write_text(json.dumps({"rows": rows, "config": meta}, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
