"""Seed 001's experiments with a trained DDPM (SPEC 3.3): where to enter the chain, and repeating the last step.

For each noise level sigma the observation y = x + sigma n (unclipped, n seeded by the image index) is entered
into the reverse chain of a trained DDPM at step start, x_start = sqrt(abar_start) (2 y - 1), and run to 0:

    matched          start = N (schedules.matched_step), every step, DDIM (eta 0) and ancestral (seed Fig. 1)
    one-step         x0_hat at N (one forward pass; the MMSE estimate, SPEC 3.7)
    later x2 / x4    start = 2N, 4N: the chain expects more noise than y has (seed Fig. 2)
    earlier /2 /4    start = N/2, N/4: the chain expects less noise than y has
    from T           start = T: y treated as pure noise (seed Figs. 4-5: a different sample of the data)
    last step x40    start = 1 and the t = 1 step run 40 times on its own output (seed Fig. 3)
    matched +10      matched, then the t = 1 step 10 more times

On MNIST (``ddpm-mnist``, class-conditional) each experiment runs unconditionally (null label) and conditioned on
the true digit; on natural images (``ddpm-natural``) on centre crops of CBSD68. Writes ``records.jsonl`` (one row
per image and experiment), ``table.md`` (mean PSNR/SSIM, SPEC section 1 protocol on the crops), a picture grid
(``grid_<model>.png``: clean, noisy and every experiment's output for a few images) and a trajectory strip
(``trajectory_<model>.png``: x0_hat along the chain for the matched, later, earlier and from-T entries).

    PYTHONPATH=src python benchmarks/seed_experiments.py --models ddpm-mnist ddpm-natural --out out/seed001
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from diffdenoise.data.images import MNIST, default_data_root
from diffdenoise.diffusion.ddpm import net_eps_model, schedule_abar
from diffdenoise.diffusion.ddpm_match import enter_chain
from diffdenoise.diffusion.schedules import matched_step
from diffdenoise.metrics import psnr, ssim
from diffdenoise.train.checkpoint import load_net

SIGMAS = {"ddpm-mnist": (50, 100, 150), "ddpm-natural": (15, 25, 50)}


def experiments(n_match: int, T: int) -> list[tuple[str, dict[str, Any]]]:
    """(label, enter_chain options) of every experiment for a matched step N."""
    return [
        ("matched ddim", {"start": n_match, "sampler": "ddim"}),
        ("matched ancestral", {"start": n_match, "sampler": "ancestral"}),
        ("one-step x0", {"start": n_match, "steps": 1}),
        ("later x2", {"start": min(T, 2 * n_match), "sampler": "ddim"}),
        ("later x4", {"start": min(T, 4 * n_match), "sampler": "ddim"}),
        ("earlier /2", {"start": max(1, n_match // 2), "sampler": "ddim"}),
        ("earlier /4", {"start": max(1, n_match // 4), "sampler": "ddim"}),
        ("from T", {"start": T, "sampler": "ancestral", "steps": 100}),
        ("last step x40", {"start": 1, "repeat_last": 39, "sampler": "ddim"}),
        ("matched +10", {"start": n_match, "repeat_last": 10, "sampler": "ddim"}),
    ]


def load_images(model: str, count: int, crop: int, root: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clean images N x C x H x W in [0, 1] (and MNIST labels)."""
    if model == "ddpm-mnist":
        data = MNIST(root / "mnist", split="test")
        return data.images[:count].float() / 255, data.labels[:count]
    files = sorted((root / "cbsd68").glob("*.png"))[:count]
    if not files:
        raise SystemExit(f"no CBSD68 images under {root / 'cbsd68'}")
    out = []
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB"))
        h, w = a.shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        out.append(torch.from_numpy(a[top:top + crop, left:left + crop].copy()).permute(2, 0, 1))
    return torch.stack(out).float() / 255, None


def to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def run_model(model: str, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    device = args.device
    net, card = load_net(model, device)
    method = card["method"]
    T, abar = int(method["T"]), schedule_abar(method["schedule"], int(method["T"]))
    eps_base = net_eps_model(net, abar, T, method.get("prediction", "eps"))
    x, labels = load_images(model, args.images, args.crop, Path(args.data))
    x = x.to(device)
    conditions: list[tuple[str, torch.Tensor | None]] = [("uncond", None)]
    if int(method.get("num_classes", 0)) > 0 and labels is not None:
        conditions = [("uncond", torch.full_like(labels, int(method["num_classes"]))), ("cond", labels)]
    records, grid_rows, strips = [], [], []
    for sigma8 in SIGMAS[model] if not args.sigmas else args.sigmas:
        sigma = sigma8 / 255
        n_match = matched_step(abar, sigma)
        y = torch.stack([x[i] + sigma * torch.randn(x[i].shape, generator=torch.Generator().manual_seed(i)).to(device)
                         for i in range(len(x))])
        for cond_name, lab in conditions:
            lab_d = None if lab is None else lab.to(device)
            eps_model: Callable = lambda z, t, lab_d=lab_d: eps_base(z, t, label=lab_d)   # noqa: E731
            row_images = [("clean", x[: args.grid]), (f"noisy s{sigma8}", y[: args.grid])]
            for label, options in experiments(n_match, T):
                t0 = time.time()
                gens = [torch.Generator(device=device).manual_seed(1000 + i) for i in range(len(x))]
                with torch.no_grad():
                    x_hat = enter_chain(eps_model, y, abar, generator=gens, **options)
                secs = time.time() - t0
                row_images.append((label, x_hat[: args.grid]))
                for i in range(len(x)):
                    a, b = to_u8(x_hat[i]), to_u8(x[i])
                    records.append({"model": model, "condition": cond_name, "sigma": sigma8, "experiment": label,
                                    "start": options["start"], "matched": n_match, "image": i,
                                    "psnr": psnr(a, b), "ssim": ssim(a, b), "seconds": secs / len(x)})
                print(f"{model} {cond_name} sigma {sigma8} N={n_match} {label:18s} start {options['start']:4d} "
                      f"PSNR {np.mean([r['psnr'] for r in records[-len(x):]]):.2f}", flush=True)
            grid_rows.append((f"{cond_name} s{sigma8}", row_images))
            first = None if lab_d is None else lab_d[:1]
            strips.append((f"{cond_name} s{sigma8}",
                           trajectory(lambda z, t: eps_base(z, t, label=first), y[:1], abar, n_match, T)))
    save_grid(grid_rows, out / f"grid_{model}.png")
    save_strips(strips, out / f"trajectory_{model}.png")
    return records


def trajectory(eps_model: Callable, y: torch.Tensor, abar: torch.Tensor, n_match: int, T: int,
               frames: int = 8) -> list[tuple[str, list[torch.Tensor]]]:
    """x0_hat at evenly spaced points of the chain for the matched, later, earlier and from-T entries."""
    rows = []
    for label_text, start, steps in (("matched", n_match, None), ("later x4", min(T, 4 * n_match), None),
                                     ("earlier /4", max(1, n_match // 4), None), ("from T", T, 100)):
        seen: list[torch.Tensor] = []
        with torch.no_grad():
            enter_chain(eps_model, y, abar, start, steps=steps, sampler="ancestral",
                        generator=[torch.Generator(device=y.device).manual_seed(7)],
                        callback=lambda i, t, x_t, x0: seen.append(((x0 + 1) / 2)[0].cpu()))
        pick = np.linspace(0, len(seen) - 1, min(frames, len(seen))).round().astype(int)
        rows.append((label_text, [y[0].cpu()] + [seen[k] for k in pick]))
    return rows


def _tile(images: list[np.ndarray], pad: int = 2) -> np.ndarray:
    h, w = images[0].shape[:2]
    canvas = np.full((h, len(images) * (w + pad) - pad, 3), 255, np.uint8)
    for j, im in enumerate(images):
        canvas[:, j * (w + pad): j * (w + pad) + w] = im if im.shape[2] == 3 else np.repeat(im, 3, axis=2)
    return canvas


def save_grid(rows: list, path: Path) -> None:
    """One block per (condition, sigma): a row per experiment (clean, noisy, then outputs), images across."""
    lines = []
    for _, images in rows:
        for _, batch in images:
            lines.append(_tile([to_u8(b) for b in batch]))
        lines.append(np.full((6, lines[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(lines)).save(path)
    (path.with_suffix(".txt")).write_text("\n".join(f"{name}: " + ", ".join(label for label, _ in images)
                                                   for name, images in rows) + "\n")


def save_strips(strips: list, path: Path) -> None:
    lines = []
    for _, rows in strips:
        for _, frames in rows:
            lines.append(_tile([to_u8(f) for f in frames]))
        lines.append(np.full((6, lines[-1].shape[1], 3), 255, np.uint8))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    Image.fromarray(np.concatenate(lines)).save(path)


def write_table(records: list[dict[str, Any]], path: Path) -> str:
    keys = sorted({(r["model"], r["condition"], r["sigma"]) for r in records}, key=str)
    lines = ["| model | condition | sigma | experiment | start (N) | PSNR | SSIM | s/image |",
             "|---|---|---|---|---|---|---|---|"]
    for model, cond, sigma in keys:
        rows = [r for r in records if (r["model"], r["condition"], r["sigma"]) == (model, cond, sigma)]
        for label in dict.fromkeys(r["experiment"] for r in rows):
            sel = [r for r in rows if r["experiment"] == label]
            lines.append(f"| {model} | {cond} | {sigma} | {label} | {sel[0]['start']} ({sel[0]['matched']}) | "
                         f"{np.mean([r['psnr'] for r in sel]):.2f} | {np.mean([r['ssim'] for r in sel]):.4f} | "
                         f"{np.mean([r['seconds'] for r in sel]):.3f} |")
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["ddpm-mnist", "ddpm-natural"], help="weight stems (default both)")
    ap.add_argument("--sigmas", nargs="*", type=float, default=None, help="8-bit sigmas (default per model)")
    ap.add_argument("--images", type=int, default=16, help="images per model (default 16)")
    ap.add_argument("--crop", type=int, default=128, help="centre crop of natural images (default 128)")
    ap.add_argument("--grid", type=int, default=4, help="images shown in the picture grid (default 4)")
    ap.add_argument("--data", default=str(default_data_root()), help="data root (default: the shared data)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="out/seed001", help="output folder (default out/seed001)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for model in args.models:
        records += run_model(model, args, out)
    with open(out / "records.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    print(write_table(records, out / "table.md"))


if __name__ == "__main__":
    main()
