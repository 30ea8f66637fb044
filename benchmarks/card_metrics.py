"""Write measured figures and the training lineage into weight cards.

    python benchmarks/card_metrics.py --eval runs/round2a/eval.json [--eval ...] \
        --lineage cddpm-gaussian="round1: <command>" ...

``eval.json`` is what benchmarks/gpu_train.py writes (bench summaries keyed by method|data|noise|options); each
summary goes into the card of the stem that produced it, under metrics[dataset][noise][options].  A ``--bench``
file's rows go into the ``--stem`` cards the same way, with the bench file as their source and, on synthetic noise,
the sigma mode in the options key when it is not the true sigma.  An entry of the same options is replaced, also one
measured on another device: give such a run options of its own.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from diffdenoise.train.checkpoint import weights_dir  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", action="append", default=[], help="eval.json from gpu_train.py")
    ap.add_argument("--lineage", action="append", default=[], metavar="STEM=TEXT",
                    help="an earlier training stage of STEM (weights continued from it with init_from)")
    ap.add_argument("--source", default="", help="where the --eval runs ran, e.g. the plan file")
    ap.add_argument("--bench", action="append", default=[], help="JSON written by `diffdenoise bench --json`")
    ap.add_argument("--stem", action="append", default=[], metavar="METHOD=STEM",
                    help="with --bench: the weights a method used in that run (e.g. dncnn=dncnn-gray)")
    args = ap.parse_args()
    folder = weights_dir()
    for path in args.eval:
        for rec in json.loads(Path(path).read_text()).values():
            card_path = folder / f"{rec['stem']}.json"
            if not card_path.exists():
                continue
            card = json.loads(card_path.read_text())
            mode = rec.get("sigma_mode", "true")   # observed / blind runs of one setting must not overwrite each other
            opts = json.dumps({**rec.get("options", {}), **({} if mode == "true" else {"sigma": mode})}, sort_keys=True)
            entry = {k: rec[k] for k in ("psnr", "ssim", "seconds_per_image", "images", "device", "gpu", "date")}
            entry.update({"method": rec["method"], "source": args.source or path})
            card.setdefault("metrics", {}).setdefault(rec["dataset"], {}).setdefault(rec["noise"], {})[opts] = entry
            card_path.write_text(json.dumps(card, indent=1) + "\n")
            print(f"{rec['stem']}: {rec['dataset']} {rec['noise']} {opts} PSNR {rec['psnr']:.2f}")
    stems = dict(item.split("=", 1) for item in args.stem)
    for path in args.bench:
        result = json.loads(Path(path).read_text())
        device = result["config"].get("device_name") or result["config"].get("device", "")
        for row in result["summary"]:
            stem = stems.get(row["method"])
            card_path = folder / f"{stem}.json"
            if not stem or not card_path.exists():
                continue
            card = json.loads(card_path.read_text())
            entry = {k: row[k] for k in ("psnr", "ssim", "seconds_per_image", "images")}
            entry.update({"method": row["method"], "device": device, "date": result["config"].get("date", ""),
                          "source": path})           # the bench file itself; --source describes the --eval runs
            # true-sigma and estimated-sigma runs of one setting on synthetic noise must not overwrite each other
            mode = result["config"].get("sigma_mode", "true")
            options = result["config"].get("method_options", {}).get(row["method"], {})
            opts = json.dumps({**options, **({} if mode == "true" or row["noise"] == "real" else {"sigma": mode})},
                              sort_keys=True)
            card.setdefault("metrics", {}).setdefault(row["dataset"], {}).setdefault(row["noise"], {})[opts] = entry
            card_path.write_text(json.dumps(card, indent=1) + "\n")
            print(f"{stem}: {row['dataset']} {row['noise']} {opts} PSNR {row['psnr']:.2f}")
    for item in args.lineage:
        stem, _, text = item.partition("=")
        card_path = folder / f"{stem}.json"
        card = json.loads(card_path.read_text())
        if text not in card.setdefault("lineage", []):
            card["lineage"].append(text)
        card_path.write_text(json.dumps(card, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
