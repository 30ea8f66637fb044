"""Step count against quality for the diffusion methods: PSNR and seconds per image for each number of steps, and
the fewest steps that stay within 0.1 dB of the best PSNR.

Each method with weights present (``cddpm``, ``realdiff``, ``svnr``, ``ddpm-match`` by default; one without weights
is listed as skipped) runs over one dataset through ``diffdenoise.bench.run_bench`` (SPEC §1 protocol: noise seeded
by image index, output clipped and rounded to uint8, image i sampled with generator seed i), once per step count,
everything else at the method's defaults.  Step counts per method (``--steps m=1,2,3``):

- ``cddpm``: 1 2 3 5 10 20 (spaced DDIM steps from the matched entry step; 1 is the one-forward estimate),
- ``realdiff``: 1 2 3 5 10 20 (of the T = 20 chain; more than T is not allowed),
- ``svnr``: 1 2 3 5 10 25 50 (reverse VE steps; 25 is the default),
- ``ddpm-match``: 1 2 3 5 10 20 50 (spaced steps from the matched step; the full chain is 57 steps at sigma 25).

``within_0.1dB``: the fewest steps whose mean PSNR is at least (best - 0.1) dB -- marked in the table.  Timing is
the harness's per-image wall time (CUDA synchronised; the first image is run once untimed before, ``warmup``).

Usage (GPU; data root as carried, weights in weights/ or $DIFFDENOISE_WEIGHTS):
    PYTHONPATH=src python3 benchmarks/steps_table.py --device cuda --data .carry/data/cbsd68 --noise gaussian:25 \\
        --out $OUT/steps_cbsd68_s25
    PYTHONPATH=src python3 benchmarks/steps_table.py --device cuda --methods realdiff --data .carry/data/polyu \\
        --split test --out $OUT/steps_polyu
    PYTHONPATH=src python3 benchmarks/steps_table.py --device cpu --limit 1 --steps cddpm=1,2 realdiff=1,2 \\
        --data ../shared/data/kodak24_crop500 --out /tmp/steps                        # smoke test
Writes ``<out>.json`` (rows, per-image records, settings) and ``<out>.md`` (the table).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from diffdenoise.bench import run_bench, write_text
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.registry import get_method_spec, weights_present

STEPS: dict[str, tuple[int, ...]] = {
    "cddpm": (1, 2, 3, 5, 10, 20),
    "realdiff": (1, 2, 3, 5, 10, 20),
    "svnr": (1, 2, 3, 5, 10, 25, 50),
    "ddpm-match": (1, 2, 3, 5, 10, 20, 50),
}
TOLERANCE_DB = 0.1


def parse_steps(items: list[str]) -> dict[str, tuple[int, ...]]:
    out = dict(STEPS)
    for item in items:
        name, _, values = item.partition("=")
        try:
            out[name] = tuple(int(v) for v in values.split(",") if v)
        except ValueError:
            raise SystemExit(f"steps_table: --steps takes method=1,2,3, got {item!r}") from None
        if not out[name] or min(out[name]) < 1:
            raise SystemExit(f"steps_table: --steps {item!r}: give positive step counts")
    return out


def fewest_within(rows: list[dict[str, Any]], tolerance: float = TOLERANCE_DB) -> int | None:
    """The fewest steps whose PSNR is within ``tolerance`` dB of the best row's."""
    done = [r for r in rows if "psnr" in r]
    if not done:
        return None
    best = max(r["psnr"] for r in done)
    return min(r["steps"] for r in done if r["psnr"] >= best - tolerance)


def markdown(result: dict[str, Any]) -> str:
    cfg = result["settings"]
    lines = [f"Steps vs PSNR on {result['dataset']} ({result['noise']}, {result['images']} images), "
             f"{result['environment'].get('device_name', '')} ({cfg['device']}), torch "
             f"{result['environment'].get('torch', '')}, {result['environment'].get('date', '')}.  "
             f"**bold**: the fewest steps within {TOLERANCE_DB} dB of the method's best.", "",
             "| method | steps | PSNR | SSIM | s/image |", "|---|---:|---:|---:|---:|"]
    for name, block in result["methods"].items():
        if "skipped" in block:
            lines.append(f"| {name} | | skipped: {block['skipped']} | | |")
            continue
        for r in block["rows"]:
            if "error" in r:
                lines.append(f"| {name} | {r['steps']} | error: {r['error']} | | |")
                continue
            mark = "**" if r["steps"] == block["within_0.1dB"] else ""
            lines.append(f"| {name} | {mark}{r['steps']}{mark} | {mark}{r['psnr']:.2f}{mark} | {r['ssim']:.4f} | "
                         f"{r['seconds_per_image']:.3g} |")
    return "\n".join(lines) + "\n"



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Examples:\n"
                                        "  PYTHONPATH=src python3 benchmarks/steps_table.py --device cuda "
                                        "--data .carry/data/cbsd68 --out $OUT/steps\n"
                                        "  PYTHONPATH=src python3 benchmarks/steps_table.py --limit 1 "
                                        "--data ../shared/data/kodak24_crop500 --out /tmp/steps")
    ap.add_argument("--data", required=True, help="dataset folder: clean images, or noisy/ + clean/ pairs")
    ap.add_argument("--noise", default=None, help="noise spec for clean folders (default: gaussian:25)")
    ap.add_argument("--split", default=None, help="use <data>/<split>_split.txt (e.g. test for polyu)")
    ap.add_argument("--methods", default=",".join(STEPS), help="comma list (default: %(default)s)")
    ap.add_argument("--steps", nargs="*", default=[], metavar="METHOD=1,2,3",
                    help="step counts of a method (default: the table in the module docstring)")
    ap.add_argument("--sigma-mode", choices=["true", "auto"], default="true",
                    help="give methods the true sigma or let them estimate it (default: true)")
    ap.add_argument("--limit", type=int, default=None, help="first N images (default: all)")
    ap.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ap.add_argument("--out", required=True, help="output prefix: writes <out>.json and <out>.md")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)

    steps = parse_steps(args.steps)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if get_method_spec(m).family != "diffusion" or "steps" not in get_method_spec(m).options:
            raise SystemExit(f"steps_table: {m} has no steps option")
        if m not in steps:
            raise SystemExit(f"steps_table: give the step counts of {m} with --steps {m}=1,2,3")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"methods": {}, "records": [], "settings": {
        "data": args.data, "noise": args.noise, "split": args.split, "limit": args.limit, "device": args.device,
        "sigma_mode": args.sigma_mode, "steps": {m: list(steps[m]) for m in methods}, "tolerance_db": TOLERANCE_DB,
        "command": "python3 benchmarks/steps_table.py " + " ".join(sys.argv[1:] if argv is None else argv)}}
    for name in methods:
        if not weights_present(get_method_spec(name)):
            result["methods"][name] = {"skipped": "no weights"}
            print(f"{name}: skipped (no weights)", file=sys.stderr, flush=True)
            continue
        rows: list[dict[str, Any]] = []
        for k in steps[name]:
            t0 = time.time()
            try:
                r = run_bench([name], args.data, noise=args.noise, limit=args.limit, device=args.device,
                              method_options={name: {"steps": k}}, sigma_mode=args.sigma_mode,
                              progress=not args.quiet, split=args.split, on_error="raise", warmup=True)
            except DiffDenoiseError as e:
                rows.append({"steps": k, "error": str(e).splitlines()[0]})
                print(f"{name} steps {k}: error {rows[-1]['error']}", file=sys.stderr, flush=True)
                continue
            s = r["summary"][0]
            rows.append({"steps": k, "psnr": s["psnr"], "ssim": s["ssim"],
                         "seconds_per_image": s["seconds_per_image"], "images": s["images"]})
            result["records"].extend({**rec, "steps": k} for rec in r["records"])
            for key in ("dataset", "noise", "images"):
                result[key] = r["config"][key]
            result["environment"] = {k2: r["config"][k2] for k2 in ("date", "hostname", "torch", "device_name",
                                                                     "python", "torch_threads")}
            print(f"{name} steps {k}: {s['psnr']:.2f} dB, {s['seconds_per_image']:.3g} s/image "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
            result["methods"][name] = {"rows": rows, "within_0.1dB": fewest_within(rows)}
            write_text(out.with_name(out.name + ".json"), json.dumps(result, indent=1) + "\n")   # partial results
        result["methods"][name] = {"rows": rows, "within_0.1dB": fewest_within(rows)}
    if "environment" not in result:
        raise SystemExit("steps_table: nothing ran (no method has weights?)")
    write_text(out.with_name(out.name + ".json"), json.dumps(result, indent=1) + "\n")
    write_text(out.with_name(out.name + ".md"), markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
