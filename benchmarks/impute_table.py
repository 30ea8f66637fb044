"""Missing-pixel imputation on Kodak24: PSNR/SSIM of every imputer at 50 % and 80 % missing pixels (SPEC 3.4).

Protocol (SPEC §1 in spirit, made for masks):

- the clean image is read as uint8, ``x = u8 / 255`` (1 x C x H x W float32); images in sorted file order, image i
  (0-based; ``--limit`` keeps the first ones, so their masks do not change);
- the mask of image i at fraction p is ``noise.Missing(p).draw(x, torch.Generator().manual_seed(i)).mask``:
  each pixel (all channels together) is missing with probability p, 1 = observed.  The same seed at both fractions
  draws the same uniforms, so the pixels observed at 80 % are a subset of those observed at 50 %;
- the method gets ``y = x * mask`` (missing pixels 0) and the mask, and a generator seeded i for sampling;
- the output is clipped to [0, 1], rounded to uint8 and scored against the uint8 clean image over all pixels and
  channels (observed pixels included, which every method returns exactly): PSNR with peak 255 and SSIM after Wang
  et al., with ``diffdenoise.metrics``; ``seconds`` is the wall time of the method call (CUDA synchronised);
- a "masked input" row scores ``y`` itself (holes black).

Methods (``diffdenoise.impute.IMPUTERS``): ``telea``, ``ns``, ``biharmonic`` (classical, CPU) and ``cddpm``
(weights ``cddpm-missing`` from ``$DIFFDENOISE_WEIGHTS`` or weights/; skipped with the reason when absent).

Usage:
    nice -n 10 .venv/bin/python benchmarks/impute_table.py --methods telea,ns,biharmonic \\
        --figure benchmarks/results/cpu/impute_kodak24.png                   # classical rows, CPU
    DIFFDENOISE_WEIGHTS=weights python benchmarks/impute_table.py --methods cddpm --device cuda \\
        --out benchmarks/results/gpu/impute_kodak24 --merge benchmarks/results/cpu/impute_kodak24.json
    .venv/bin/python benchmarks/impute_table.py --limit 2 --methods telea    # quick look
Writes ``<out>.json`` (summary rows, per-image records, settings) and ``<out>.md`` (the table).  ``--merge`` adds
the rows of an earlier run of this script (methods rerun here replace theirs) so that one table holds CPU and GPU
rows, each with its own device column.  ``--figure`` writes one PNG: per missing fraction a row
``masked input | each method | clean`` of a fixed crop (``--figure-image``, ``--figure-crop``; methods
``--figure-methods``, by default every method of the table), labelled with PSNR on that crop (the crop is imputed
on its own, with the crop of the image's mask and generator seed = the image's index).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffdenoise import metrics
from diffdenoise.bench import device_name, load_benchmark, read_u8, write_text
from diffdenoise.data import default_data_root
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import Image, quantize, write_image
from diffdenoise.impute import IMPUTERS, build_imputer
from diffdenoise.noise import Missing

MISSING = (0.5, 0.8)
INPUT_ROW = "masked input"
FIGURE_IMAGE, FIGURE_CROP = "kodim23.png", (100, 300, 192)   # parrots: top, left, side in pixels


def observed_mask(x: torch.Tensor, p: float, index: int) -> torch.Tensor:
    """The protocol's mask of image ``index`` at fraction ``p``: 1 x 1 x H x W, 1 = observed."""
    return Missing(p).draw(x, torch.Generator().manual_seed(index)).mask


def to_x(x8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x8.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def to_u8(t: torch.Tensor) -> np.ndarray:
    return quantize(t[0].detach().float().cpu().permute(1, 2, 0).numpy())


def run_one(imputer: Any, x: torch.Tensor, mask: torch.Tensor, index: int, device: torch.device
            ) -> tuple[np.ndarray, float]:
    y = x * mask
    generator = torch.Generator(device).manual_seed(index)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        x_hat = imputer(y.to(device), mask.to(device), generator=generator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return to_u8(x_hat.clamp(0, 1)), time.perf_counter() - t0


def build(name: str, device: torch.device, options: dict[str, Any]) -> Any:
    spec = IMPUTERS[name]
    opts = {k: v for k, v in options.items() if k in spec.options and v is not None}
    return build_imputer(name, device=device, tile=options.get("tile") if spec.family != "classical" else None,
                         **opts)


def method_settings(name: str, imputer: Any, options: dict[str, Any]) -> dict[str, Any]:
    """What the row was run with: the classical options, or the diffusion sampler and the weights' card."""
    inner = getattr(imputer, "method", imputer)
    if IMPUTERS[name].family == "classical":
        return {"function": inner.fn.__name__, **inner.options}
    card = {k: inner.method.get(k) for k in ("noise", "schedule", "T", "prediction", "prob_conditioning")}
    return {"steps": inner.steps, "sampler": inner.sampler, "samples": inner.samples, "tile": options.get("tile"),
            "card": card}


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r["method"], r["missing"]) for r in records))
    for method, p in keys:
        rs = [r for r in records if r["method"] == method and r["missing"] == p]
        rows.append({"method": method, "missing": p, "psnr": float(np.mean([r["psnr"] for r in rs])),
                     "ssim": float(np.mean([r["ssim"] for r in rs])),
                     "seconds_per_image": float(np.mean([r["seconds"] for r in rs])),
                     "images": len(rs), "device": rs[0]["device"]})
    return rows


def format_table(rows: list[dict[str, Any]], fractions: list[float], skipped: dict[str, str]) -> str:
    """One line per method: PSNR / SSIM at each fraction, seconds per image (mean over fractions), device."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["missing"]): r for r in rows}
    head = "| method | " + " | ".join(f"{round(100 * p)}% missing PSNR / SSIM" for p in fractions) + \
        " | s/image | images | device |"
    lines = [head, "|---|" + "---:|" * len(fractions) + "---:|---:|---|"]
    for m in methods:
        rs = [cell.get((m, p)) for p in fractions]
        cells = [f"{r['psnr']:.2f} / {r['ssim']:.4f}" if r else "-" for r in rs]
        found = [r for r in rs if r]
        secs = "-" if m == INPUT_ROW else f"{np.mean([r['seconds_per_image'] for r in found]):.3g}"
        images = "/".join(sorted({str(r["images"]) for r in found}))
        device = "-" if m == INPUT_ROW else found[0]["device"]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {secs} | {images} | {device} |")
    for name, reason in skipped.items():
        lines.append(f"| {name} | skipped: {reason.replace('|', '/')} |" + " |" * (len(fractions) + 2))
    return "\n".join(lines) + "\n"


def label(img: np.ndarray, text: str) -> np.ndarray:
    """A white band with ``text`` above an H x W x 3 uint8 panel (OpenCV's Hershey font)."""
    import cv2
    band = np.full((24, img.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, img], axis=0)


def write_figure(path: Path, clean8: np.ndarray, index: int, crop: tuple[int, int, int],
                 imputers: dict[str, Any], fractions: list[float], device: torch.device) -> None:
    """Rows per fraction: masked input | each method | clean, with PSNR on the crop."""
    top, left, side = crop
    h, w = clean8.shape[:2]
    if top + side > h or left + side > w:
        raise DiffDenoiseError(f"figure crop {crop} does not fit the {w}x{h} image")
    x_full = to_x(clean8)
    x = x_full[..., top:top + side, left:left + side]
    c8 = clean8[top:top + side, left:left + side]
    gap = np.full((side + 24, 6, 3), 255, np.uint8)
    rows = []
    for p in fractions:
        mask = observed_mask(x_full, p, index)[..., top:top + side, left:left + side]
        y8 = to_u8(x * mask)
        panels = [label(y8, f"{round(100 * p)}% missing {metrics.psnr(y8, c8):.2f} dB")]
        for name, imputer in imputers.items():
            out8, _ = run_one(imputer, x, mask, index, device)
            panels.append(label(out8, f"{name} {metrics.psnr(out8, c8):.2f} dB"))
        panels.append(label(c8, "clean"))
        row = np.concatenate(sum(([pnl, gap] for pnl in panels), [])[:-1], axis=1)
        rows.append(row)
    sep = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    canvas = np.concatenate(sum(([r, sep] for r in rows), [])[:-1], axis=0)
    write_image(path, Image(canvas.astype(np.float32) / 255.0, None, 8), bit_depth=8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Examples:\n"
                                        "  .venv/bin/python benchmarks/impute_table.py --methods telea,ns,biharmonic\n"
                                        "  python benchmarks/impute_table.py --methods cddpm --device cuda "
                                        "--out benchmarks/results/gpu/impute_kodak24\n"
                                        "  .venv/bin/python benchmarks/impute_table.py --limit 2 --methods telea")
    ap.add_argument("--methods", default=",".join(IMPUTERS),
                    help=f"comma-separated imputers (default: {','.join(IMPUTERS)})")
    ap.add_argument("--missing", nargs="+", type=float, default=list(MISSING),
                    help="fractions of missing pixels (default: 0.5 0.8)")
    ap.add_argument("--limit", type=int, default=None, help="first N images only (default: all)")
    ap.add_argument("--device", default="cpu", help="torch device for cddpm (default: cpu; classical run on CPU)")
    ap.add_argument("--steps", type=int, default=None, help="cddpm DDIM steps (default: the imputer's: 1 for the x0-predicting cddpm-missing)")
    ap.add_argument("--samples", type=int, default=None, help="cddpm samples averaged (default: 1)")
    ap.add_argument("--tile", default="auto", help="cddpm tile side: auto, N or 0 (default: auto)")
    ap.add_argument("--data", default=None, help="clean image folder (default: <data root>/kodak24)")
    ap.add_argument("--out", default="benchmarks/results/cpu/impute_kodak24",
                    help="output prefix: writes <out>.json and <out>.md (default: %(default)s)")
    ap.add_argument("--merge", default=None, metavar="JSON",
                    help="keep the rows and records of other methods from this earlier result")
    ap.add_argument("--figure", default=None, metavar="PNG", help="also write a comparison figure of a fixed crop")
    ap.add_argument("--figure-methods", default=None, metavar="A,B",
                    help="methods shown in the figure (default: every method of the table, merged rows included)")
    ap.add_argument("--figure-image", default=FIGURE_IMAGE, help="file name of the figure's image "
                                                                  "(default: %(default)s)")
    ap.add_argument("--figure-crop", default=",".join(map(str, FIGURE_CROP)), metavar="TOP,LEFT,SIDE",
                    help="the figure's crop in pixels (default: %(default)s)")
    args = ap.parse_args(argv)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in IMPUTERS]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(IMPUTERS)}")
    device = torch.device(args.device)
    tile: Any = args.tile if args.tile == "auto" else (int(args.tile) or None)
    options = {"steps": args.steps, "samples": args.samples, "tile": tile}
    folder = Path(args.data) if args.data else default_data_root() / "kodak24"
    bench = load_benchmark(folder, limit=args.limit)
    fractions = [float(p) for p in args.missing]

    imputers: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in methods:
        try:
            imputers[name] = build(name, device, options)
            settings[name] = method_settings(name, imputers[name], options)
        except DiffDenoiseError as e:
            skipped[name] = str(e).splitlines()[0]
            print(f"skipped {name}: {skipped[name]}", file=sys.stderr)

    records: list[dict[str, Any]] = []
    where = {name: device_name(device if IMPUTERS[name].family != "classical" else torch.device("cpu"))
             for name in imputers}
    t_start = time.perf_counter()
    for index, item in enumerate(bench):
        clean8 = read_u8(item.clean)
        x = to_x(clean8)
        for p in fractions:
            mask = observed_mask(x, p, index)
            y8 = to_u8(x * mask)
            records.append({"method": INPUT_ROW, "missing": p, "image": item.name, "psnr": metrics.psnr(y8, clean8),
                            "ssim": metrics.ssim(y8, clean8), "seconds": 0.0, "device": "-",
                            "observed": float(mask.mean())})
            for name, imputer in imputers.items():
                out8, seconds = run_one(imputer, x, mask, index, device)
                records.append({"method": name, "missing": p, "image": item.name,
                                "psnr": metrics.psnr(out8, clean8), "ssim": metrics.ssim(out8, clean8),
                                "seconds": seconds, "device": where[name]})
                print(f"{item.name} {round(100 * p)}% {name}: {records[-1]['psnr']:.2f} dB "
                      f"{records[-1]['ssim']:.4f} {seconds:.2f} s", file=sys.stderr, flush=True)

    if args.merge:
        earlier = json.loads(Path(args.merge).read_text())
        redone = set(imputers) | {INPUT_ROW}
        kept = [r for r in earlier["records"] if r["method"] not in redone]
        records = kept + records
        for name, reason in earlier.get("config", {}).get("skipped", {}).items():
            if name not in imputers and name not in skipped and not any(r["method"] == name for r in kept):
                skipped[name] = reason
        settings = {**earlier.get("config", {}).get("methods", {}), **settings}
    order = {m: i for i, m in enumerate([INPUT_ROW, *IMPUTERS])}
    rows = sorted(summarise(records), key=lambda r: (order.get(r["method"], 99), r["missing"]))
    table = format_table(rows, fractions, skipped)
    config = {
        "dataset": bench.name, "folder": str(bench.path), "images": len(bench), "limit": args.limit,
        "missing": fractions, "device": str(device), "methods": settings, "skipped": skipped,
        "protocol": "mask of image i = noise.Missing(p).draw(x, Generator().manual_seed(i)).mask (1 = observed); "
                    "y = x * mask; sampling generator seed i; output clipped, rounded to uint8; PSNR/SSIM over all "
                    "pixels (diffdenoise.metrics)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "merged_from": args.merge,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "wall_seconds": time.perf_counter() - t_start,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(f"{out}.json"), json.dumps({"summary": rows, "records": records, "config": config}, indent=1,
                                               default=str) + "\n")
    write_text(Path(f"{out}.md"), table)
    print(table)

    if args.figure:
        crop = tuple(int(v) for v in args.figure_crop.split(","))
        if len(crop) != 3:
            ap.error("--figure-crop takes TOP,LEFT,SIDE")
        names = [it for it in load_benchmark(folder) if it.name == args.figure_image]
        if not names:
            ap.error(f"--figure-image {args.figure_image} is not in {folder}")
        index = [it.name for it in load_benchmark(folder)].index(args.figure_image)
        shown = [m.strip() for m in args.figure_methods.split(",")] if args.figure_methods else \
            [r["method"] for r in rows if r["method"] != INPUT_ROW]
        panels = {}
        for name in dict.fromkeys(shown):
            try:
                panels[name] = imputers[name] if name in imputers else build(name, device, options)
            except (DiffDenoiseError, KeyError) as e:
                print(f"figure: leaving out {name}: {e}", file=sys.stderr)
        write_figure(Path(args.figure), read_u8(names[0].clean), index, crop, panels, fractions, device)
        print(f"figure: {args.figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
