"""The training configuration: one typed dataclass, JSON presets loaded strictly, ``key=value`` overrides."""
from __future__ import annotations

import json
import math
import os
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Sequence

from ..errors import DiffDenoiseError


@dataclass
class TrainConfig:
    name: str = ""                      # run name, written into cards; "" = the preset file's stem, else "run"
    task: str = "denoise"               # TASKS key: what the net learns (denoise, ddpm, cddpm, realdiff, svnr)
    task_options: dict = field(default_factory=dict)   # keyword arguments of the task (noise spec, loss, ...)
    net: str = "dncnn"                  # NETS key: the backbone
    net_kwargs: dict = field(default_factory=dict)     # keyword arguments of the net; the task fills in the rest
    data: list = field(default_factory=list)           # data-source specs (diffdenoise.data.sources), by "weight"
    data_root: str = ""                 # folder data paths are relative to; "" = $DIFFDENOISE_DATA or shared/data
    color: Literal["rgb", "gray"] = "rgb"   # channels the net sees: rgb = 3, gray = 1
    patch: int = 96                     # square training crop, pixels
    batch: int = 64                     # images per optimiser step, summed over all GPUs
    steps: int = 100_000                # optimiser steps in total (the cosine schedule ends here)
    lr: float = 1e-3                    # peak learning rate (AdamW)
    lr_min: float = 1e-6                # learning rate at the end of the cosine decay
    warmup: int = 500                   # steps of linear warm-up from 0 to lr
    schedule: Literal["cosine", "constant"] = "cosine"  # decay after warm-up
    weight_decay: float = 0.0           # AdamW decoupled weight decay, applied to weight matrices/kernels only
    grad_clip: float = 1.0              # clip the global gradient norm to this; 0 = off
    ema: float = 0.999                  # decay of the moving average of the weights (exported); 0 = off
    bf16: bool = True                   # bfloat16 autocast of the net's forward on CUDA (ignored on CPU)
    channels_last: bool = True          # NHWC memory layout on CUDA (faster convolutions)
    compile: bool = False               # torch.compile the net: slower start, faster steps
    seed: int = 0                       # seeds weight init; data and noise use seed + rank
    log_every: int = 100                # steps between log lines (log.jsonl in the run folder too)
    save_every: int = 1000              # steps between checkpoints; one is also written at the end and on time-out
    max_minutes: float = 0.0            # stop cleanly and save after this many minutes of training; 0 = no limit
    out: str = ""                       # run folder (last.safetensors, config.json, log.jsonl); "" = runs/<name>
    resume: str = ""                    # checkpoint (file or run folder) to continue: step, weights, EMA, optimiser
    init_from: str = ""                 # weights stem or .json card path (fp16 export) to start from, at step 0
    eval_every: int = 0                 # steps between evaluations of the task loss on eval_data; 0 = off
    eval_data: list = field(default_factory=list)      # data-source specs for evaluation (evaluation sets allowed)
    eval_batches: int = 4               # batches per evaluation, drawn with a fixed seed


def config_fields() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """``value`` converted to the field's type (int -> float only), or a DiffDenoiseError."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            valid = ", ".join(map(str, typing.get_args(hint)))
            raise DiffDenoiseError(f"config {name}: {value!r} is not one of {valid}")
        return value
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str),
          dict: lambda v: isinstance(v, dict),
          list: lambda v: isinstance(v, list)}[hint]
    if not ok(value):
        raise DiffDenoiseError(f"config {name}: expected {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Strict: unknown keys raise with the list of valid ones; values are type-checked."""
    if not isinstance(d, dict):
        raise DiffDenoiseError(f"a training config must be a JSON object, got {type(d).__name__}")
    valid = config_fields()
    bad = sorted(set(d) - set(valid))
    if bad:
        raise DiffDenoiseError(f"unknown config key(s) {', '.join(bad)}; valid: {', '.join(valid)}")
    hints = typing.get_type_hints(TrainConfig)
    cfg = TrainConfig(**{k: _check_type(k, v, hints[k]) for k, v in d.items()})
    check_ranges(cfg)
    return cfg


# (field, test, what it must be): values a run cannot use, refused before anything starts
_RANGES = (("patch", lambda v: v >= 8, "at least 8 pixels"), ("batch", lambda v: v >= 1, "at least 1"),
           ("steps", lambda v: v >= 1, "at least 1"), ("lr", lambda v: 0 <= v < math.inf, "a number >= 0"),
           ("lr_min", lambda v: 0 <= v < math.inf, "a number >= 0"), ("warmup", lambda v: v >= 0, ">= 0"),
           ("weight_decay", lambda v: 0 <= v < math.inf, "a number >= 0"),
           ("grad_clip", lambda v: 0 <= v < math.inf, ">= 0 (0 = off)"), ("ema", lambda v: 0 <= v < 1, "in [0, 1)"),
           ("log_every", lambda v: v >= 1, "at least 1"), ("save_every", lambda v: v >= 1, "at least 1"),
           ("max_minutes", lambda v: 0 <= v < math.inf, ">= 0 (0 = no limit)"),
           ("eval_every", lambda v: v >= 0, ">= 0 (0 = off)"), ("eval_batches", lambda v: v >= 1, "at least 1"))


def check_ranges(cfg: TrainConfig) -> None:
    """A DiffDenoiseError for the first field whose value no run can use (NaN fails every test)."""
    for name, ok, what in _RANGES:
        value = getattr(cfg, name)
        if not ok(value):
            raise DiffDenoiseError(f"config {name}: must be {what}, got {value!r}")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(d: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``key=value`` (value parsed as JSON when it parses, else taken as a string); ``a.b=value`` sets a key
    inside a dict field (``task_options.noise=gaussian:25``)."""
    d = json.loads(json.dumps(d))
    hints = typing.get_type_hints(TrainConfig)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise DiffDenoiseError(f"override {item!r} is not key=value")
        path = key.split(".")
        if path[0] not in hints:
            raise DiffDenoiseError(f"unknown config key {path[0]!r}; valid: {', '.join(config_fields())}")
        value = _parse_value(text)
        if len(path) == 1 and hints[path[0]] is str and not isinstance(value, str):
            value = text  # name=123 means the string "123"
        target = d
        for i, part in enumerate(path[:-1]):
            sub = target.get(part, {} if i or hints[path[0]] is dict else None)
            if not isinstance(sub, dict):
                raise DiffDenoiseError(f"override {item!r}: {'.'.join(path[:i + 1])} is not a dict")
            target[part] = sub
            target = sub
        target[path[-1]] = value
    return d


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a JSON preset (or start from the defaults when ``path`` is None), apply overrides, check strictly."""
    d: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DiffDenoiseError(f"config not found: {p}")
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise DiffDenoiseError(f"{p}: not valid JSON ({e})") from None
        if isinstance(d, dict) and not d.get("name"):
            d["name"] = p.stem
    return config_from_dict(apply_overrides(d, overrides))


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp-" + str(os.getpid()))
    tmp.write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")
    os.replace(tmp, path)
    return path
