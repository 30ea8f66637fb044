"""``python -m diffdenoise.train.export CHECKPOINT --stem NAME [--metrics JSON] [--folder DIR]``: ship a model.

Writes the EMA weights of a training checkpoint as fp16 safetensors (sharded under 15 MiB) and the JSON card.
CHECKPOINT may also be a weights card (``other-stem.json``): those weights shipped under NAME.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..errors import DiffDenoiseError
from .checkpoint import export_weights


def _metrics(text: str | None) -> dict:
    if not text:
        return {}
    p = Path(text)
    raw = p.read_text() if p.is_file() else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise DiffDenoiseError(f"--metrics is neither a JSON object nor a JSON file: {e}") from None
    if not isinstance(value, dict):
        raise DiffDenoiseError("--metrics must be a JSON object")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffdenoise.train.export",
        description="Export a training checkpoint's EMA weights as fp16 safetensors plus a JSON card.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
               "  python -m diffdenoise.train.export runs/my-run --stem my-dncnn --folder mine/\n"
               "  python -m diffdenoise.train.export runs/dncnn-color/last.safetensors --stem dncnn-color --force\n"
               "  python -m diffdenoise.train.export runs/dncnn-gray --stem dncnn-gray "
               "--metrics '{\"bsd68\": {\"sigma25\": {\"psnr\": 29.1}}}'\n"
               "  python -m diffdenoise.train.export .carry/r10b/realdiff-gray-wide-ddpm-b1.json "
               "--stem realdiff-gray\n")
    parser.add_argument("checkpoint",
                        help="last.safetensors of a run, the run folder, or a weights card (.json) to rename")
    parser.add_argument("--stem", required=True, help="weights name, e.g. dncnn-color (required)")
    parser.add_argument("--metrics", default=None, help="JSON object or JSON file put in the card (default: {})")
    parser.add_argument("--folder", default=None,
                        help="output folder (default: $DIFFDENOISE_WEIGHTS, else <repo>/weights)")
    parser.add_argument("--force", action="store_true",
                        help="replace weights of that name already in the folder (default: refuse; the shipped "
                             "models live in <repo>/weights)")
    args = parser.parse_args(argv)
    try:
        card_path = export_weights(args.checkpoint, args.stem, {"metrics": _metrics(args.metrics)}, args.folder,
                                   overwrite=args.force)
    except DiffDenoiseError as e:
        print(f"diffdenoise: error: {e}", file=sys.stderr)
        return 2
    card = json.loads(card_path.read_text())
    print(f"wrote {card_path} and {', '.join(card['files'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
