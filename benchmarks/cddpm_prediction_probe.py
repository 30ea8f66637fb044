"""Probe behind the cddpm design choice of prediction (eps / x0 / v) and loss weighting.

Trains the conditional DDPM (matched start, Brownian-bridge states) briefly with each variant under the same budget
and reports PSNR on CBSD68 at sigma = 25 for the one-step estimate and for DDIM from the matched step. A short
probe, not the shipped model: it ranks variants, the absolute numbers are those of a few minutes of training.

    PYTHONPATH=src python benchmarks/cddpm_prediction_probe.py --data DATA_ROOT --eval EVAL_DIR --seconds 140
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffdenoise.data.images import CleanImages
from diffdenoise.diffusion.cddpm import CDDPMTask, build
from diffdenoise.nets.unet import UNet


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def evaluate(denoiser, files: list[Path], sigma: float, device: str) -> float:
    scores = []
    for i, f in enumerate(files):
        x_u8 = np.asarray(Image.open(f).convert("RGB"))
        x = torch.from_numpy(x_u8.copy()).permute(2, 0, 1)[None].float().div(255).to(device)
        g = torch.Generator().manual_seed(i)
        y = x + sigma * torch.randn(x.shape, generator=g).to(device)
        x_hat = denoiser(y, sigma, generator=torch.Generator(device=device).manual_seed(i))
        out = (x_hat.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).cpu().numpy()
        scores.append(psnr_u8(out, x_u8))
    return float(np.mean(scores))


def train_variant(options: dict, args: argparse.Namespace, device: str) -> tuple[torch.nn.Module, dict, int]:
    torch.manual_seed(0)
    task = CDDPMTask(**options)
    net = UNet(3, 3, cond_channels=5, size=args.size).to(device).to(memory_format=torch.channels_last)
    ema = copy.deepcopy(net).eval()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    data = CleanImages(["bsds500/train", "bsds500/test"], color="rgb", root=args.data).sampler(device)
    g = torch.Generator(device=device).manual_seed(0)
    t0, step = time.time(), 0
    while time.time() - t0 < args.seconds:
        x = data.batch(args.batch, args.patch, g)
        lr = args.lr * min(1.0, (step + 1) / 200)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = task.loss(net, {"x": x}, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(0.999, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - d)
        step += 1
        if step % 500 == 0:
            print(f"  step {step} loss {loss.item():.5f}", flush=True)
    return ema, {"method": task.method_card()}, step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--eval", required=True, help="folder of clean colour test images (CBSD68)")
    ap.add_argument("--seconds", type=float, default=140)
    ap.add_argument("--size", default="base")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--images", type=int, default=68)
    ap.add_argument("--variants", default="eps:x0,x0:x0,v:x0", help="prediction:loss[:entry_prob],...")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    files = sorted(Path(args.eval).glob("*"))[: args.images]
    results = []
    for v in args.variants.split(","):
        prediction, loss, *entry = v.split(":")
        options = {"prediction": prediction, "loss": loss}
        if entry:
            options["entry_prob"] = float(entry[0])
        net, card, steps = train_variant(options, args, device)
        row = {**options, "train_steps": steps}
        for label, opts in (("1-step", {"steps": 1}), ("ddim-5", {"steps": 5}), ("blind-1-step", {"steps": 1})):
            den = build(device, net=net, card=card, **opts)
            sigma = 25 / 255
            if label.startswith("blind"):
                row[label] = evaluate(lambda y, s, generator=None: den(y, None, generator=generator), files, sigma,
                                      device)
            else:
                row[label] = evaluate(den, files, sigma, device)
        print(json.dumps(row), flush=True)
        results.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
