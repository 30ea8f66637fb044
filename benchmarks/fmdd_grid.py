"""A picture for microscopists: FMDD crops, noisy | BM3D (sigma estimated) | PRIDNet | realdiff | clean.

One row per microscope (confocal, two-photon, wide-field) and sample; every method on the whole 512x512 image, then
the same centre crop of each; PSNR of the whole image in each tile.  FMDD images are dark, so each row is shown with
one contrast stretch (the clean crop's 0.5-99.5 percentiles), the same for every tile of the row.

    .venv/bin/python benchmarks/fmdd_grid.py --out docs/img/fmdd_realdiff.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realdiff_synth import crop, grid  # noqa: E402

NAMES = ("Confocal_BPAE_B_1.png", "TwoPhoton_MICE_1.png", "WideField_BPAE_G_1.png", "Confocal_FISH_1.png")
METHODS = (("bm3d", "BM3D (sigma est.)"), ("pridnet", "PRIDNet"), ("realdiff", "realdiff (ours)"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/fmdd")
    ap.add_argument("--out", type=Path, default=Path("docs/img/fmdd_realdiff.png"))
    ap.add_argument("--crop", type=int, default=192)
    args = ap.parse_args()
    import torch
    from diffdenoise.imageio import quantize, read_image, to_tensor
    from diffdenoise.metrics import psnr
    from diffdenoise.registry import build_method, get_method_spec
    methods = {}
    for name, _ in METHODS:
        try:
            get_method_spec(name)
            methods[name] = build_method(name, device="cpu")
        except Exception as e:       # bm3d is an optional extra
            print(f"skipping {name}: {e}", file=sys.stderr)
    labels = ["noisy (one capture)"] + [label for name, label in METHODS if name in methods] + ["clean (mean of 50)"]
    rows = []
    for fname in NAMES:
        y = read_image(Path(args.data) / "noisy" / fname).data
        x = read_image(Path(args.data) / "clean" / fname).data
        outs = [y]
        with torch.no_grad():
            for name in methods:
                out = methods[name](to_tensor(y), None)
                outs.append(out[0].permute(1, 2, 0).clamp(0, 1).numpy())
        outs.append(x)
        lo, hi = np.percentile(crop(x, args.crop), (0.5, 99.5))
        row = []
        for k, a in enumerate(outs):
            tile = np.clip((crop(a, args.crop)[..., 0] - lo) / max(hi - lo, 1e-6), 0, 1)
            tile = Image.fromarray(np.rint(tile * 255).astype(np.uint8)).convert("RGB")
            if k < len(outs) - 1:                                 # PSNR of the whole image
                draw = ImageDraw.Draw(tile)
                text = f"{psnr(quantize(a), quantize(x)):.2f} dB"
                draw.rectangle((0, 0, 7 * len(text) + 4, 13), fill="black")
                draw.text((2, 1), text, fill="yellow")
            row.append(np.asarray(tile))
        rows.append(row)
        print(fname, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid(rows, labels, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
