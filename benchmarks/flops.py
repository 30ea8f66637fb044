"""Parameters and forward FLOPs per 512 x 512 image of the shipped networks (one network call = one step).

    .venv/bin/python benchmarks/flops.py [--size 512] [--out benchmarks/results/cpu/flops.md] [STEM ...]

Counted by ``torch.utils.flop_counter.FlopCounterMode`` on one image of the card's channel count (a multiply-add
counts as 2 FLOPs; convolutions and matrix products only, as that counter does).  Default stems: every card in
``weights/`` with a network.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from diffdenoise.bench import write_text  # noqa: E402
from diffdenoise.nets import build_net  # noqa: E402


def count(name: str, kwargs: dict, size: int) -> tuple[int, float]:
    """(parameters, GFLOP of one forward at size x size) of the network ``name(**kwargs)``."""
    net = build_net(name, **kwargs).eval()
    x = torch.zeros(1, int(kwargs.get("in_channels", kwargs.get("channels", 3))), size, size)
    call: dict = {}
    if name == "unet":
        call = {"t": torch.zeros(1)}
        if int(kwargs.get("cond_channels", 0)):
            call["cond"] = torch.zeros(1, int(kwargs["cond_channels"]), size, size)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x, **call)
    return sum(p.numel() for p in net.parameters()), counter.get_total_flops() / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stems", nargs="*")
    parser.add_argument("--net", action="append", default=[], metavar='LABEL=NAME:JSON',
                        help='an architecture that is not shipped, e.g. \'base=unet:{"size": "base"}\'')
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    stems = args.stems or sorted(p.stem for p in (REPO / "weights").glob("*.json")
                                 if "net" in json.loads(p.read_text()))
    lines = [f"| weights | params | GFLOP per {args.size}² (one call) |", "|---|---:|---:|"]
    nets = [(stem, *(lambda n: (n["name"], n["kwargs"]))(json.loads((REPO / "weights" / f"{stem}.json").read_text())
                                                          ["net"])) for stem in stems]
    for spec in args.net:
        label, _, rest = spec.partition("=")
        name, _, kwargs = rest.partition(":")
        nets.append((f"{label} (not shipped)", name, json.loads(kwargs or "{}")))
    for label, name, kwargs in nets:
        params, gflop = count(name, kwargs, args.size)
        lines.append(f"| `{label}` | {params / 1e6:.2f}M | {gflop:.1f} |")
        print(lines[-1], flush=True)
    if args.out:
        command = " ".join(["benchmarks/flops.py", *sys.argv[1:]] if argv is None else ["benchmarks/flops.py", *argv])
        write_text(args.out, "\n".join(lines) + f"\n\n`{command}` (torch {torch.__version__}, FlopCounterMode).\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
