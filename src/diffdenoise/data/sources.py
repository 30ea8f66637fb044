"""Data-source specs (the ``data`` list of a training config) -> one device :class:`Mixture`.

A spec is a small JSON object, keys checked strictly, paths relative to the data root:

``{"kind": "clean", "paths": ["bsds500/train/*.jpg", "bsd400/*.png"], "color": "rgb", "weight": 1.0}``
    clean images (globs, files or folders); ``color`` defaults to the config's color (``"rgb+gray"`` allowed);
    optional ``"exposure": [0.05, 1]`` scales each crop by a log-uniform factor (dim scenes, see PatchSampler).
``{"kind": "paired", "noisy": "polyu/noisy", "clean": "polyu/clean", "exclude": "polyu/test_split.txt"}``
    real noisy/clean pairs; ``include``/``exclude`` are name lists or text files; a ``test_split.txt`` beside the
    folders is always excluded.
``{"kind": "mnist", "path": "mnist", "split": "train"}``
    MNIST digits (32 x 32, with labels).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import DiffDenoiseError
from .images import MNIST, CleanImages, PairedImages, channels_of
from .sampling import Mixture

SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "clean": ("kind", "paths", "color", "weight", "exposure"),
    "paired": ("kind", "noisy", "clean", "include", "exclude", "color", "weight"),
    "mnist": ("kind", "path", "split", "weight"),
}


def check_source_spec(spec: dict[str, Any]) -> None:
    """Raise a DiffDenoiseError for an unknown kind, an unknown key or a missing required key."""
    if not isinstance(spec, dict):
        raise DiffDenoiseError(f"a data source must be a JSON object, got {spec!r}")
    kind = spec.get("kind")
    if kind not in SOURCE_KEYS:
        raise DiffDenoiseError(f"unknown data source kind {kind!r}; valid: {', '.join(SOURCE_KEYS)}")
    bad = sorted(set(spec) - set(SOURCE_KEYS[kind]))
    if bad:
        raise DiffDenoiseError(f"data source {kind!r}: unknown key(s) {', '.join(bad)}; "
                               f"valid: {', '.join(SOURCE_KEYS[kind])}")
    required = {"clean": ("paths",), "paired": ("noisy", "clean"), "mnist": ("path",)}[kind]
    missing = [k for k in required if k not in spec]
    if missing:
        raise DiffDenoiseError(f"data source {kind!r}: missing key(s) {', '.join(missing)}")


def build_source(spec: dict[str, Any], root: str | os.PathLike, color: str, device: str | torch.device):
    """One spec -> a sampler on ``device`` (training sources: evaluation folders are refused)."""
    check_source_spec(spec)
    kind, want, exposure = spec["kind"], channels_of(color), spec.get("exposure")
    if kind == "clean":
        src_color = spec.get("color", color)
        data = CleanImages(spec["paths"], color=src_color, root=root)
        if exposure is not None and (not isinstance(exposure, (list, tuple)) or len(exposure) != 2):
            raise DiffDenoiseError(f"data source 'clean': exposure must be [lo, hi], got {exposure!r}")
    elif kind == "paired":
        src_color = spec.get("color", color)
        data = PairedImages(spec["noisy"], spec["clean"], include=spec.get("include"), exclude=spec.get("exclude"),
                            color=src_color, root=root)
    else:
        p = Path(spec["path"])
        data = MNIST(p if p.is_absolute() else Path(root) / p, split=spec.get("split", "train"))
    if data.channels != want:
        raise DiffDenoiseError(f"data source {spec} gives {data.channels} channels but color={color!r} wants {want}")
    return data.sampler(device, exposure=exposure) if kind == "clean" else data.sampler(device)


def build_data(specs: Sequence[dict[str, Any]], root: str | os.PathLike, color: str = "rgb",
               device: str | torch.device = "cpu") -> Mixture:
    """All sources of a config, mixed by their ``weight`` (default 1)."""
    if not specs:
        raise DiffDenoiseError("the config names no data sources (data = [])")
    samplers = [build_source(s, root, color, device) for s in specs]
    return Mixture(samplers, [float(s.get("weight", 1.0)) for s in specs])
