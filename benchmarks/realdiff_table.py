"""realdiff on real noise: number of steps T' and the two samplers (SPEC 3.5; Yang, Liang & Su 2023).

Sets (real noisy/clean pairs, SPEC §1 protocol through ``diffdenoise.bench.run_bench``: the noisy file as read,
``sigma=None``, output clipped and rounded to uint8, PSNR/SSIM on uint8, image i sampled with generator seed i):

- ``polyu`` test split (22 pairs, RGB; the 78 others are training pairs of ``realdiff-color``),
- ``fmdd`` (48 pairs, gray fluorescence microscopy: ``realdiff-gray`` when present, else the colour model on
  replicated gray),
- ``sidd_sample`` (12 unofficial crops, RGB; smoke-test level only, not comparable with published SIDD numbers).

Rows: steps T' in {1, 5, 10, 20} x sampler in {improved, origin}; T' = 1 is the same single forward ``S(y, T)`` for
both samplers (the one-step MMSE-style estimate, SPEC 3.7) and is run once.  A "noisy input" row gives the PSNR of
``y`` itself.

Steps and models per T: the forward state ``x_t = (1 - t/T) x0 + (t/T) y`` depends on t only through alpha = t/T,
so ``steps = T'`` on a T = 20 model runs the chain of a T' process on the alpha grid it was trained on.  A model
trained per T differs in its training distribution of alpha (a T = 1 model is a plain one-shot denoiser); compare
such models with ``--models T1=folder1 T20=folder2`` (each folder holds a ``realdiff-color.json`` card; GPU round 9
trained them), or name a card of another stem, ``--models b1=.carry/r10b/realdiff-gray-wide-ddpm-b1.json``, which
is evaluated under the stem the method loads.  Step counts above a model's T are skipped (the chain would be
capped at T steps).

Usage (GPU; weights ``realdiff-color`` / ``realdiff-gray`` in weights/ or $DIFFDENOISE_WEIGHTS):
    PYTHONPATH=src python benchmarks/realdiff_table.py --device cuda --out benchmarks/results/realdiff
    PYTHONPATH=src python benchmarks/realdiff_table.py --models T20=weights T5=weights-T5 --sets polyu
    PYTHONPATH=src python benchmarks/realdiff_table.py --limit 2 --steps 1 5 --sets polyu     # quick look
Writes ``<out>.md`` (the table) and ``<out>.json`` (summary rows, per-image records, settings).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from diffdenoise import metrics
from diffdenoise.bench import load_benchmark, read_u8, run_bench
from diffdenoise.data import default_data_root
from diffdenoise.errors import DiffDenoiseError

SETS: dict[str, tuple[str, str | None]] = {          # name -> (folder under the data root, split)
    "polyu": ("polyu", "test"),
    "fmdd": ("fmdd", None),
    "sidd_sample": ("sidd_sample", None),
}
STEPS = (1, 5, 10, 20)
COLOR_SETS = {"polyu", "sidd_sample"}                    # RGB sets: the colour model; fmdd: the gray one
SAMPLERS = ("improved", "origin")


def noisy_row(bench: Any) -> dict[str, float]:
    """PSNR/SSIM of the noisy input itself."""
    p, s = [], []
    for item in bench:
        clean, noisy = read_u8(item.clean), read_u8(item.noisy)
        p.append(metrics.psnr(noisy, clean))
        s.append(metrics.ssim(noisy, clean))
    return {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "images": len(p)}


def model_info(folder: str) -> dict[str, Any]:
    """T and training steps read from the cards present in a weights folder."""
    info: dict[str, Any] = {}
    for stem in ("realdiff-color", "realdiff-gray"):
        path = Path(folder) / f"{stem}.json"
        if path.exists():
            card = json.loads(path.read_text())
            info[stem] = {"T": card.get("method", {}).get("T"), "train_steps": card.get("steps"),
                          "condition_on_y": card.get("method", {}).get("condition_on_y")}
    return info


def model_folder(path: str) -> str:
    """A weights folder for ``realdiff``: ``path`` itself, or for a card of another stem (a GPU round's candidate,
    ``.carry/r10b/realdiff-gray-wide-ddpm-b1.json``) a temporary folder holding it under the stem the method loads."""
    if not path.endswith(".json"):
        return path
    from diffdenoise.train.checkpoint import export_weights
    card = json.loads(Path(path).read_text())
    as_stem = "realdiff-gray" if card["net"]["kwargs"].get("in_channels", 3) == 1 else "realdiff-color"
    out = tempfile.mkdtemp(prefix="realdiff_table_")
    export_weights(path, as_stem, folder=out)
    return out


def model_T(info: dict[str, Any], set_name: str) -> int | None:
    """The T of the model ``realdiff`` uses on ``set_name`` (the other model when only one is present)."""
    order = ("realdiff-color", "realdiff-gray") if set_name in COLOR_SETS else ("realdiff-gray", "realdiff-color")
    for stem in order:
        if stem in info and info[stem]["T"] is not None:
            return int(info[stem]["T"])
    return None


def settings(steps: list[int], samplers: list[str]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for k in steps:
        for smp in samplers:
            if k == 1 and any(s == 1 for s, _ in out):
                continue                              # one step is the same forward for both samplers
            out.append((k, smp))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Examples:\n"
                                        "  PYTHONPATH=src python benchmarks/realdiff_table.py --device cuda\n"
                                        "  PYTHONPATH=src python benchmarks/realdiff_table.py --limit 2 --steps 1 5")
    ap.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS), help="datasets (default: all)")
    ap.add_argument("--steps", nargs="+", type=int, default=list(STEPS), help="sampling steps T' (default: 1 5 10 20)")
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS),
                    help="samplers (default: improved origin)")
    ap.add_argument("--samples", type=int, default=1, help="stochastic restorations averaged per image (default: 1)")
    ap.add_argument("--models", nargs="+", default=None, metavar="LABEL=FOLDER",
                    help="weights folders, or cards of other stems (.json), to compare (default: the current weights "
                         "folder, labelled 'default')")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set (default: all)")
    ap.add_argument("--data-root", default=None, help="data folder (default: $DIFFDENOISE_DATA or shared/data)")
    ap.add_argument("--out", default="benchmarks/results/realdiff", help="output prefix (default: %(default)s)")
    args = ap.parse_args(argv)

    root = Path(args.data_root) if args.data_root else default_data_root()
    from diffdenoise.train.checkpoint import weights_dir
    models = [("default", str(weights_dir()))] if not args.models else \
        [tuple(m.split("=", 1)) if "=" in m else (Path(m).name, m) for m in args.models]
    sources = dict(models)
    models = [(label, model_folder(path)) for label, path in models]
    benches = {name: load_benchmark(root / SETS[name][0], split=SETS[name][1], limit=args.limit)
               for name in args.sets}

    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for name, bench in benches.items():
        rows.append({"model": "-", "set": bench.name, "steps": 0, "sampler": "noisy input", **noisy_row(bench)})
    saved_env = os.environ.get("DIFFDENOISE_WEIGHTS")
    try:
        for label, folder in models:
            os.environ["DIFFDENOISE_WEIGHTS"] = str(Path(folder).resolve())
            info = model_info(folder)
            for name, bench in benches.items():
                T = model_T(info, name)
                for k, smp in settings(args.steps, args.samplers):
                    if T is not None and k > T:           # a T-step model visits at most T steps: no new row
                        continue
                    options = {"steps": k, "sampler": smp, "samples": args.samples}
                    try:
                        res = run_bench(["realdiff"], bench, device=args.device, progress=False, warmup=True,
                                        method_options={"realdiff": options}, on_error="raise")
                    except DiffDenoiseError as e:
                        skipped.append({"model": label, "set": bench.name, "steps": k, "sampler": smp,
                                        "reason": str(e).splitlines()[0]})
                        print(f"skipped {label} {bench.name} steps={k} {smp}: {e}", file=sys.stderr)
                        break                             # the same failure would repeat for every setting
                    s = res["summary"][0]
                    row = {"model": label, "set": bench.name, "steps": k, "sampler": smp if k > 1 else "one forward",
                           "psnr": s["psnr"], "ssim": s["ssim"], "seconds_per_image": s["seconds_per_image"],
                           "images": s["images"], "forwards": k * args.samples + (args.samples > 1)}
                    rows.append(row)
                    records += [{**r, "model": label, "steps": k, "sampler": smp} for r in res["records"]]
                    print(f"{label} {bench.name} steps={k} {row['sampler']}: {s['psnr']:.2f} dB "
                          f"{s['ssim']:.4f}", file=sys.stderr)
    finally:
        if saved_env is None:
            os.environ.pop("DIFFDENOISE_WEIGHTS", None)
        else:
            os.environ["DIFFDENOISE_WEIGHTS"] = saved_env

    table = format_table(rows, [b.name for b in benches.values()])
    for s in skipped:
        table += f"\nskipped: {s['model']} on {s['set']}: {s['reason']}"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"date": dt.datetime.now().isoformat(timespec="seconds"), "device": args.device, "limit": args.limit,
            "samples": args.samples,
            "models": {label: {"folder": sources[label], "cards": model_info(f)} for label, f in models},
            "sets": {n: {"folder": str(root / SETS[n][0]), "split": SETS[n][1]} for n in args.sets},
            "protocol": "SPEC §1 real pairs via diffdenoise.bench.run_bench (sigma=None, generator seed = index)",
            "command": " ".join(sys.argv)}
    Path(f"{out}.md").write_text(table + "\n")
    Path(f"{out}.json").write_text(json.dumps({"summary": rows, "records": records, "skipped": skipped,
                                               "config": meta}, indent=2, default=str) + "\n")
    print(table)
    return 0


def format_table(rows: list[dict[str, Any]], sets: list[str]) -> str:
    """One line per (model, steps, sampler), PSNR / SSIM per set, then seconds per image on the first set."""
    keys: list[tuple[str, int, str]] = []
    for r in rows:
        k = (r["model"], r["steps"], r["sampler"])
        if k not in keys:
            keys.append(k)
    cell = {(r["model"], r["steps"], r["sampler"], r["set"]): r for r in rows}
    head = "| model | steps | sampler | " + " | ".join(f"{s} PSNR / SSIM" for s in sets) + " | s/image |"
    lines = [head, "|---|---:|---|" + "---:|" * len(sets) + "---:|"]
    for model, steps, smp in keys:
        cells, secs = [], []
        for s in sets:
            r = cell.get((model, steps, smp, s))
            cells.append(f"{r['psnr']:.2f} / {r['ssim']:.4f}" if r else "-")
            if r and "seconds_per_image" in r:
                secs.append(r["seconds_per_image"])
        sec = f"{np.mean(secs):.3g}" if secs else "-"
        lines.append(f"| {model} | {steps or '-'} | {smp} | " + " | ".join(cells) + f" | {sec} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
