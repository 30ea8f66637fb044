"""The synthetic-only `realdiff` ablation (issue 4): real sets it never saw, and a picture grid on RNI15.

`realdiff-color-synth` (configs/realdiff-color-synth.json) is trained on clean images with synthetic noise only (the
`camera` model, with and without JPEG, Poisson-Gaussian and Gaussian): no real noisy/clean pairs. It is not shipped
(the weights budget); GPU round 6 brought it back to `/work/extra_weights/round6/b` (benchmarks/round6.sh).
This script evaluates it beside the shipped models with the project's bench harness:

- FMDD (48 gray microscopy pairs) and the SIDD sample (12 pairs): `realdiff` with the ablation's weights (gray
  input runs through the colour net, replicated) against the shipped weights (`realdiff-gray` on FMDD, itself
  trained on synthetic noise only, and `realdiff-color` on SIDD);
- RNI15 (real noisy images with no clean reference): a grid of centre crops, noisy | shipped | synthetic-only.

    .venv/bin/python benchmarks/realdiff_synth.py --synth /work/extra_weights/round6/b \
        --out benchmarks/results/cpu/round6/realdiff_synth --grid docs/img/rni15_realdiff.png

PolyU test was measured on the GPU by the training driver (benchmarks/results/gpu/round6/b/eval.json).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
RNI = ("Audrey_Hepburn.jpg", "Dog.png", "Frog.png", "Window.png", "Glass.png")


def alias_folder(synth: Path, stem: str = "realdiff-color-synth", as_stem: str = "realdiff-color") -> Path:
    """A weights folder holding only the ablation, renamed to the stem the method loads."""
    from diffdenoise.train.checkpoint import export_weights
    out = Path(tempfile.mkdtemp(prefix="realdiff_synth_"))
    export_weights(synth / f"{stem}.json", as_stem, folder=out)
    return out


def crop(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return a[top:top + size, left:left + size]


def grid(rows: list[list[np.ndarray]], labels: list[str], path: Path) -> None:
    """Tiles (uint8 HxWx3, equal sizes) in rows, with one header line of column labels."""
    h, w = rows[0][0].shape[:2]
    pad, head = 4, 18
    img = Image.new("RGB", (len(labels) * (w + pad) + pad, head + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(img)
    for j, text in enumerate(labels):
        draw.text((pad + j * (w + pad), 3), text, fill="black")
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            img.paste(Image.fromarray(tile), (pad + j * (w + pad), head + pad + i * (h + pad)))
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp)
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--synth", required=True, help="folder with realdiff-color-synth.json and its safetensors")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="data root (default: ../shared/data)")
    ap.add_argument("--out", required=True, help="output prefix: writes <out>.json")
    ap.add_argument("--grid", default=None, help="PNG of the RNI15 grid (default: none)")
    ap.add_argument("--crop", type=int, default=192, help="grid tile size in pixels (default: 192)")
    ap.add_argument("--sets", nargs="*", default=["fmdd", "sidd_sample"], help="paired real sets to score")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from diffdenoise.bench import run_bench
    from diffdenoise.imageio import read_image
    from diffdenoise.registry import build_method

    synth_dir = alias_folder(Path(args.synth))
    shipped_dir = os.environ.get("DIFFDENOISE_WEIGHTS", str(ROOT / "weights"))
    results = {}
    for label, folder in (("shipped", shipped_dir), ("synthetic-only", str(synth_dir))):
        os.environ["DIFFDENOISE_WEIGHTS"] = folder
        for name in args.sets:
            r = run_bench(["realdiff"], Path(args.data) / name, progress=False)
            s = r["summary"][0]
            results[f"{label}|{name}"] = s
            print(f"{label:<15} {name:<12} PSNR {s['psnr']:.2f} SSIM {s['ssim']:.4f} {s['seconds_per_image']:.2f} s/img "
                  f"({s['images']} images)", flush=True)
    Path(args.out + ".json").write_text(json.dumps({"results": results, "synth_card": json.loads(
        (Path(args.synth) / "realdiff-color-synth.json").read_text())}, indent=1))

    if args.grid:
        rows = []
        models = {}
        for label, folder in (("shipped", shipped_dir), ("synthetic-only", str(synth_dir))):
            os.environ["DIFFDENOISE_WEIGHTS"] = folder
            models[label] = build_method("realdiff", "cpu")
        for name in RNI:
            y = crop(read_image(Path(args.data) / "rni15" / name).data[..., :3], args.crop)
            if y.ndim == 2 or y.shape[2] == 1:
                y = np.repeat(y.reshape(*y.shape[:2], 1), 3, axis=2)
            t = torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None].float()
            row = [y]
            for label in ("shipped", "synthetic-only"):
                with torch.no_grad():
                    out = models[label](t, None, generator=torch.Generator().manual_seed(0))
                row.append(out[0].permute(1, 2, 0).clamp(0, 1).numpy())
            rows.append([(np.clip(a, 0, 1) * 255).round().astype(np.uint8) for a in row])
        grid(rows, ["RNI15 noisy (no clean reference)", "realdiff (shipped)", "realdiff synthetic-only"],
             Path(args.grid))
        print("wrote", args.grid)
    shutil.rmtree(synth_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
