"""Choose the NLM backend and fit the rule h(sigma) hard-coded in ``diffdenoise.classical.filters.nlm``.

Tuning images are training images only (SPEC §1): 4 colour crops from ``bsds500/train`` and 4 gray images from
``bsd400`` (every 50th file in sorted order, centre crops of 180 x 180), never a test set.  Noise: y = x + sigma n,
n ~ N(0, 1) from a torch.Generator seeded by the image's index, not clipped; PSNR on the clipped, rounded uint8
output (SPEC §1).  Patch 7 x 7, search window 21 x 21 (SPEC §3.1) for both backends.

1. Backend: scikit-image ``denoise_nl_means`` (fast_mode, float input, noise variance 2 sigma^2 subtracted from
   patch distances) against OpenCV ``fastNlMeansDenoising[Colored]`` (uint8 input, so y is clipped and rounded
   first), each at its best h on a grid, at sigma 15, 25, 50; and the seconds for one 768 x 512 colour image.
2. For scikit-image, the best h / sigma per sigma in {5, 10, 15, 25, 35, 50, 75} (grid, refined by a parabola
   through the best three points), separately for gray and colour, and a least-squares fit of
   log h = log c + p log sigma to each; the PSNR lost by the fitted rule against the per-sigma best.

    .venv/bin/python benchmarks/tune_nlm.py            (about 10 minutes on a 2-core CPU)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from diffdenoise.classical.filters import nlm
from diffdenoise.imageio import read_image
from diffdenoise.metrics import psnr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CROP = 180


def load_training_images(data: Path) -> dict[str, list[np.ndarray]]:
    def crops(folder: Path, pattern: str) -> list[np.ndarray]:
        out = []
        for path in sorted(folder.glob(pattern))[::50][:4]:
            x = read_image(path).data
            top, left = (x.shape[0] - CROP) // 2, (x.shape[1] - CROP) // 2
            out.append(np.ascontiguousarray(x[top:top + CROP, left:left + CROP]))
        return out
    return {"color": crops(data / "bsds500" / "train", "*.jpg"), "gray": crops(data / "bsd400", "*.png")}


def noisy(x: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float32).numpy()).astype(np.float32)


def to_uint8(a: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def nlm_skimage(y: np.ndarray, sigma: float, h: float) -> np.ndarray:
    return nlm(y, sigma, h=h)     # the library's own call, with h given


def nlm_opencv(y: np.ndarray, sigma: float, h: float) -> np.ndarray:
    h8 = h * 255.0
    if y.shape[2] == 3:
        out = cv2.fastNlMeansDenoisingColored(to_uint8(y), None, h8, h8, 7, 21)
    else:
        out = cv2.fastNlMeansDenoising(to_uint8(y[:, :, 0]), None, h8, 7, 21)
    return out.astype(np.float32).reshape(y.shape) / 255.0


def mean_psnr(images: list[np.ndarray], sigma: float, fn, h: float) -> float:
    return float(np.mean([psnr(to_uint8(x), to_uint8(fn(noisy(x, sigma, i), sigma, h)))
                          for i, x in enumerate(images)]))


def best_factor(images, sigma, fn, factors) -> tuple[float, float]:
    """(h / sigma, PSNR) maximising mean PSNR: grid, then the vertex of a parabola through the best three."""
    scores = np.array([mean_psnr(images, sigma, fn, k * sigma) for k in factors])
    i = int(np.argmax(scores))
    if 0 < i < len(factors) - 1:
        c2, c1, _ = np.polyfit(factors[i - 1:i + 2], scores[i - 1:i + 2], 2)
        if c2 < 0:
            k = float(np.clip(-c1 / (2 * c2), factors[i - 1], factors[i + 1]))
            return k, mean_psnr(images, sigma, fn, k * sigma)
    return float(factors[i]), float(scores[i])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"shared data folder (default {DATA})")
    args = parser.parse_args()
    sets = load_training_images(args.data)
    factors = np.round(np.arange(0.1, 1.25, 0.1), 2)

    print("## 1. Backend: mean PSNR at the best h on the grid (dB)\n")
    print("| set | sigma | scikit-image | OpenCV (uint8) |\n|---|---|---|---|")
    for kind, images in sets.items():
        for s8 in (15, 25, 50):
            row = [max(mean_psnr(images, s8 / 255, fn, k * s8 / 255) for k in factors)
                   for fn in (nlm_skimage, nlm_opencv)]
            print(f"| {kind} | {s8} | {row[0]:.2f} | {row[1]:.2f} |", flush=True)
    y = noisy(np.full((512, 768, 3), 0.5, np.float32), 25 / 255, 0)
    for name, fn in (("scikit-image", nlm_skimage), ("OpenCV", nlm_opencv)):
        t0 = time.perf_counter()
        fn(y, 25 / 255, 0.4 * 25 / 255)
        print(f"\n{name}: {time.perf_counter() - t0:.2f} s for one 768x512 colour image at sigma 25")

    print("\n## 2. scikit-image: best h / sigma per sigma, and the fitted rule h = c sigma^p\n")
    sigmas8 = (5, 10, 15, 25, 35, 50, 75)
    for kind, images in sets.items():
        best = [best_factor(images, s8 / 255, nlm_skimage, factors) for s8 in sigmas8]
        sig = np.array(sigmas8) / 255
        h = np.array([k for k, _ in best]) * sig
        p, log_c = np.polyfit(np.log(sig), np.log(h), 1)
        c = float(np.exp(log_c))
        print(f"### {kind}: h = {c:.3f} * sigma^{p:.3f}\n")
        print("| sigma | best h/sigma | PSNR best | rule h/sigma | PSNR rule |\n|---|---|---|---|---|")
        for s8, s, (k, score) in zip(sigmas8, sig, best):
            k_rule = c * s ** (p - 1)
            print(f"| {s8} | {k:.3f} | {score:.2f} | {k_rule:.3f} | "
                  f"{mean_psnr(images, s, nlm_skimage, k_rule * s):.2f} |", flush=True)
        print()


if __name__ == "__main__":
    main()
