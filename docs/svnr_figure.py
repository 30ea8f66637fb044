"""Figure: SVNR on a photo whose noise varies strongly across the image (Pearl et al. 2023, Fig. 1/4 in spirit).

One PNG grid, two rows:

    row 1   clean | noisy input y | noise map s (8-bit std) | time map t*/T (what the UNet sees first) | result
    row 2   the state x at 0 (= y) and after a few reverse steps (each pixel on its own schedule), then x0_hat
            at the first step (the one-forward estimate)

The noise is ``y = x + s n`` with ``s`` a horizontal ramp from ``--min`` to ``--max`` (8-bit units) modulated by a
Poisson-Gaussian shading ``sqrt(x)``, so dark, flat and bright regions all see very different levels; the time map is
computed from the map a user can know: the same ramp and shading evaluated at the local mean of ``y`` (the exact
``s`` is a function of the clean image and would leak it).  Maps are drawn with a blue-to-yellow colour ramp; each tile's label
gives its range (maps) or its PSNR against the clean crop (images).

Usage (weights svnr-color in weights/ or $DIFFDENOISE_WEIGHTS; GPU or CPU):
    PYTHONPATH=src python docs/svnr_figure.py --image ../shared/data/kodak24/kodim05.png --out docs/svnr_figure.png

The committed ``docs/svnr_figure.png`` (linked from README.md) was made on CPU with
    python docs/svnr_figure.py --image ../shared/data/kodak24/kodim05.png --size 256 --device cpu
(2-core x86-64 CPU, 2026-12-02, round-7 weights trained on observed maps: noisy 19.47 dB, one-step x0_hat
28.44 dB, SVNR 25 steps 24.95 dB; the round-6 weights, trained on the exact map, gave 27.69 and 24.76 dB).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from diffdenoise.diffusion.svnr import build
from diffdenoise.imageio import read_image, to_tensor


def ramp_colours(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """H x W values -> H x W x 3 uint8 on a dark-blue -> teal -> yellow ramp (perceptually ordered)."""
    stops = np.array([[0.10, 0.05, 0.35], [0.12, 0.45, 0.55], [0.35, 0.75, 0.40], [0.99, 0.90, 0.15]])
    u = np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1) * (len(stops) - 1)
    i = np.minimum(u.astype(int), len(stops) - 2)
    f = (u - i)[..., None]
    rgb = stops[i] * (1 - f) + stops[i + 1] * f
    return (rgb * 255).round().astype(np.uint8)


def to_u8(x: torch.Tensor) -> np.ndarray:
    """1 x C x H x W in [0, 1] -> H x W x 3 uint8."""
    a = x[0].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return (a * 255).round().astype(np.uint8)


def grid(tiles: list[list[tuple[np.ndarray, str]]], pad: int = 6, label_h: int = 18) -> Image.Image:
    h, w = tiles[0][0][0].shape[:2]
    cols = max(len(r) for r in tiles)
    canvas = Image.new("RGB", (cols * (w + pad) + pad, len(tiles) * (h + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(tiles):
        for c, (img, label) in enumerate(row):
            x0, y0 = pad + c * (w + pad), pad + r * (h + label_h + pad)
            canvas.paste(Image.fromarray(img), (x0, y0 + label_h))
            draw.text((x0 + 2, y0 + 3), label, fill="black")
    return canvas


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Examples:\n  PYTHONPATH=src python docs/svnr_figure.py --image "
                                       "../shared/data/kodak24/kodim05.png --device cuda\n")
    p.add_argument("--image", required=True, help="clean photo (required)")
    p.add_argument("--out", default="docs/svnr_figure.png", help="PNG to write (default: docs/svnr_figure.png)")
    p.add_argument("--min", type=float, default=3.0, help="noise std at the left edge, 8-bit units (default: 3)")
    p.add_argument("--max", type=float, default=70.0, help="noise std at the right edge, 8-bit units (default: 70)")
    p.add_argument("--steps", type=int, default=25, help="reverse steps (default: 25)")
    p.add_argument("--show", type=int, default=4, help="intermediate states shown (default: 4)")
    p.add_argument("--size", type=int, default=384, help="centre crop side in pixels (default: 384)")
    p.add_argument("--seed", type=int, default=0, help="noise and sampler seed (default: 0)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="torch device (default: cuda when available)")
    args = p.parse_args(argv)

    x = to_tensor(read_image(args.image).data)
    h, w = x.shape[-2:]
    side = min(args.size, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top:top + side, left:left + side].to(args.device)
    ramp = torch.linspace(args.min, args.max, side, device=x.device).view(1, 1, 1, side) / 255
    s = (ramp * (0.35 + 0.65 * x.clamp(0, 1).sqrt())).expand_as(x).contiguous()
    gen = torch.Generator(args.device).manual_seed(args.seed)
    y = x + s * torch.randn(x.shape, generator=gen, device=x.device)
    # SVNR gets the map a user can know: the same ramp and shading evaluated at the 5x5 local mean of y. The exact s
    # depends on the clean x and would give it away (NoiseModel.observed_map explains).
    local = torch.nn.functional.avg_pool2d(y, 5, stride=1, padding=2, count_include_pad=False)
    s_given = (ramp * (0.35 + 0.65 * local.clamp(0, 1).sqrt())).expand_as(x).contiguous()

    method = build(args.device, steps=args.steps)
    result = method.run(y, s_given, generator=torch.Generator(args.device).manual_seed(args.seed), return_trajectory=True)
    traj = result.trajectory
    k_show = sorted({int(round(i * (len(traj) - 1) / max(args.show, 1))) for i in range(args.show)})

    def psnr(a: torch.Tensor) -> float:
        return float(10 * torch.log10(1 / (a.clamp(0, 1) - x).pow(2).mean()))

    s8 = (s_given.amax(dim=1)[0] * 255).cpu().numpy()
    tmap = result.time_map[0, 0].cpu().numpy()
    row1 = [(to_u8(x), "clean"), (to_u8(y), f"noisy {psnr(y):.2f} dB"),
            (ramp_colours(s8, 0, float(s8.max())), f"std map given (from y) 0-{s8.max():.0f}/255"),
            (ramp_colours(tmap, 0, float(tmap.max())), f"time map t*/T 0-{tmap.max():.3f}"),
            (to_u8(result.x_hat), f"SVNR {psnr(result.x_hat):.2f} dB, {args.steps} steps")]
    row2 = [(to_u8(y), "x at t* (= y)")]
    row2 += [(to_u8(traj[k]["x"]), f"x after step {k + 1}/{len(traj)}") for k in k_show]
    row2 += [(to_u8(traj[0]["x0_hat"]), f"x0_hat at t* {psnr(traj[0]['x0_hat']):.2f} dB")]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid([row1, row2]).save(out)
    print(f"wrote {out}: noisy {psnr(y):.2f} dB, one-step {psnr(traj[0]['x0_hat']):.2f} dB, "
          f"SVNR {psnr(result.x_hat):.2f} dB; std {s8.min():.1f}-{s8.max():.1f}/255, t*/T up to {tmap.max():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
