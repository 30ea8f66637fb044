"""The noise-model registry and the spec strings the CLI, configs and benchmark records use.

Grammar (whitespace around items is ignored, names are case-insensitive)::

    spec   := NAME [":" item ("," item)*]
    item   := value | KEY "=" value          positional items first, filling parameters in declaration order
    value  := NUMBER | NUMBER ".." NUMBER    a range: drawn uniformly per image (``gaussian:0..55``)
            | true | false | none | WORD     flags, "no value" for optional numbers, choices

Numbers are in each parameter's spec units (see the model docstrings): stds of additive noise in 8-bit units.
"""
from __future__ import annotations

from dataclasses import MISSING, fields

from ..errors import DiffDenoiseError
from .base import NoiseModel, Range, spec
from .camera import Camera
from .models import Gaussian, Impulse, Missing, PoissonGaussian, Spatial, Speckle

NOISE_MODELS: dict[str, type[NoiseModel]] = {
    "gaussian": Gaussian,
    "poisson_gaussian": PoissonGaussian,
    "spatial": Spatial,
    "camera": Camera,
    "impulse": Impulse,
    "speckle": Speckle,
    "missing": Missing,
}

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def get_noise_model(name: str) -> type[NoiseModel]:
    try:
        return NOISE_MODELS[name]
    except KeyError:
        raise DiffDenoiseError(f"unknown noise model {name!r}; valid: {', '.join(sorted(NOISE_MODELS))}") from None


def _parse_value(text: str, f, model: str):
    kind = f.metadata["kind"]
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise DiffDenoiseError(f"{model}: {f.name} must be true or false, got {text!r}")
    if kind == "choice":
        return text.lower()
    if f.metadata["optional"] and text.lower() == "none":
        return None
    unit = f.metadata["unit"]
    try:
        if ".." in text:
            lo, hi = (float(end) for end in text.split(".."))
        else:
            return float(text) / unit
    except ValueError:
        raise DiffDenoiseError(f"{model}: {f.name} must be a number or a range a..b, got {text!r}") from None
    if not lo <= hi:
        raise DiffDenoiseError(f"{model}: range {text!r} for {f.name} is empty (the first end exceeds the second)")
    return Range(lo / unit, hi / unit)


def parse_noise(text: str | NoiseModel) -> NoiseModel:
    """Build a noise model from a spec string (module docstring); a model passes through unchanged.

    Raises DiffDenoiseError with one line naming the spec and what is wrong."""
    if isinstance(text, NoiseModel):
        return text
    name, _, args = text.strip().partition(":")
    cls = get_noise_model(name.strip().lower())
    params = [f for f in fields(cls) if "kind" in f.metadata]
    items = [a.strip() for a in args.split(",")] if args.strip() else []
    values: dict[str, object] = {}
    seen_keyword = False
    try:
        for i, item in enumerate(items):
            key, eq, raw = item.partition("=")
            if eq:
                seen_keyword = True
                f = next((p for p in params if p.name == key.strip().lower()), None)
                if f is None:
                    raise DiffDenoiseError(f"{cls.name} has no parameter {key.strip()!r}; "
                                           f"valid: {', '.join(p.name for p in params)}")
            else:
                if seen_keyword:
                    raise DiffDenoiseError("positional values must come before key=value ones")
                if i >= len(params):
                    raise DiffDenoiseError(f"{cls.name} takes at most {len(params)} value(s) "
                                           f"({', '.join(p.name for p in params)}), got {len(items)}")
                f, raw = params[i], key
            if f.name in values:
                raise DiffDenoiseError(f"{f.name} given twice")
            if not raw.strip():
                raise DiffDenoiseError(f"empty value for {f.name}")
            values[f.name] = _parse_value(raw.strip(), f, cls.name)
        missing = [p.name for p in params if p.default is MISSING and p.name not in values]
        if missing:
            raise DiffDenoiseError(f"{cls.name} needs {', '.join(missing)} (e.g. {cls.example!r})")
        return cls(**values)
    except DiffDenoiseError as err:
        raise DiffDenoiseError(f"bad noise spec {text.strip()!r}: {err}") from None


__all__ = ["NOISE_MODELS", "get_noise_model", "parse_noise", "spec"]
