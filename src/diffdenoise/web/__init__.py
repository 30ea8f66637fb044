"""The web app (`diffdenoise serve`): a Gradio page over :mod:`diffdenoise.web.pipeline`.

Gradio is imported only inside :mod:`diffdenoise.web.app`, when the app is built; ``import diffdenoise.web`` and
the pipeline need torch and numpy alone.
"""
from __future__ import annotations

import argparse
import sys

from .pipeline import Limits


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the app and serve it until interrupted (loopback by default, no share link, no telemetry)."""
    from .app import build_app, launch
    limits = Limits(max_megapixels=args.max_megapixels, max_mb=args.max_mb)
    demo = build_app(limits=limits)
    print(f"diffdenoise web app on http://{args.host}:{args.port} ({limits.describe()}); Ctrl+C stops it",
          file=sys.stderr)
    launch(demo, host=args.host, port=args.port, limits=limits)
    return 0


__all__ = ["cmd_serve", "Limits"]
