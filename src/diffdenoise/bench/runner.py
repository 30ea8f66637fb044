"""Methods x one dataset x one noise -> per-image records, a summary, and the settings that produced them.

The evaluation protocol is SPEC §1:

- synthetic noise: the clean image is read as uint8, ``x = u8 / 255`` (float32, 1 x C x H x W);
  ``y = parse_noise(noise).sample(x, generator)`` with ``generator = torch.Generator().manual_seed(i)``, ``i`` the
  image's 0-based position in sorted file order; ``y`` is **not** clipped.  The method gets ``y`` and, with
  ``sigma_mode="true"``, the true noise level (a float when the model's map is constant, as for Gaussian noise,
  else the exact per-pixel map of that draw); with ``sigma_mode="observed"`` the map a user could know
  (``NoiseModel.observed_map(y)``: for signal-dependent noise the exact map reveals the clean image); with
  ``sigma_mode="auto"`` it gets ``None`` and estimates it.
- real pairs: the method gets the noisy file as read (float in [0, 1]) and ``sigma=None``.
- the output is clipped to [0, 1] and rounded to uint8; PSNR and SSIM against the uint8 clean image with
  :mod:`diffdenoise.metrics` (peak 255, all channels, no border crop).
- ``seconds`` is the wall time of the method call alone (CUDA synchronised on both sides).
- ``config["weights"]`` names, per method, the weight cards it could load when it was built (training steps and a
  sha256 prefix of the card), so a result still says which weights produced it after they are replaced.

Failures: a method that raises :class:`DiffDenoiseError` (missing weights, missing optional package, an input it
cannot take) is skipped with a warning when ``on_error="skip"`` (the default): its partial records are dropped, it
appears in ``config["skipped"]`` and as a "skipped" row of :func:`format_table`.  If every method is skipped the run
raises.  ``on_error="raise"`` aborts at the first failure.  Other exceptions are bugs and always propagate.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
import math
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from .. import metrics
from ..errors import DiffDenoiseError
from ..imageio import atomic_output, from_tensor, quantize, read_image, to_tensor
from ..registry import build_method, get_method_spec
from .datasets import BenchData, load_benchmark, read_u8

log = logging.getLogger("diffdenoise.bench")

SUMMARY_KEYS = ("method", "dataset", "noise", "psnr", "ssim", "seconds_per_image", "images")
RECORD_KEYS = ("method", "dataset", "noise", "image", "psnr", "ssim", "seconds", "device")
REAL_NOISE = "real"
DEFAULT_NOISE = "gaussian:25"    # for a clean folder when no noise is given: the main setting of SPEC §5


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DiffDenoiseError(f"bad device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DiffDenoiseError(f"device {device!r} asked for but CUDA is not available")
    return dev


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def device_name(dev: torch.device) -> str:
    """The GPU's name, else the CPU model from /proc/cpuinfo, for result records."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _noise_model(noise: Any) -> tuple[Any, str]:
    from ..noise import parse_noise, spec
    model = parse_noise(noise) if isinstance(noise, str) else noise
    return model, spec(model)


SIGMA_MODES = ("true", "observed", "auto")


def _noisy_input(model: Any, x: torch.Tensor, index: int, sigma_mode: str
                 ) -> tuple[torch.Tensor, float | torch.Tensor | None]:
    """SPEC §1: seeded draw, no clipping; the true sigma (a float when the map is constant) or None."""
    generator = torch.Generator().manual_seed(index)
    if sigma_mode == "auto":
        return model.sample(x, generator), None
    if hasattr(model, "draw"):
        drawn = model.draw(x, generator)
        y, s = drawn.y, drawn.sigma_map
        if sigma_mode == "observed" and getattr(model, "signal_dependent", False):
            s = model.observed_map(y)
    else:
        y, s = model.sample(x, generator), model.sigma_map(x)
    s = torch.as_tensor(s, dtype=torch.float32)
    flat = s.reshape(-1)
    if flat.numel() == 1 or bool(torch.all(flat == flat[0])):
        return y, float(flat[0])
    return y, s


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _environment(dev: torch.device) -> dict[str, Any]:
    import diffdenoise
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "diffdenoise": getattr(diffdenoise, "__version__", None),
        "device_name": device_name(dev),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def _weights_dir() -> Path:
    from ..train.checkpoint import weights_dir
    return weights_dir()


def _weights_used(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Which weights each method could load: per stem present in the weights folder, the card's training steps and
    the first 16 hex digits of the card's sha256 (a card is rewritten with its weights), so that a result still
    says which weights produced it after they are replaced."""
    import hashlib
    folder = _weights_dir()
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        for stem in get_method_spec(name).weights:
            card = folder / f"{stem}.json"
            try:
                raw = card.read_bytes()
            except OSError:
                continue
            try:
                steps = json.loads(raw).get("steps")
            except (ValueError, AttributeError):
                steps = None
            out.setdefault(name, {})[stem] = {"card_sha256": hashlib.sha256(raw).hexdigest()[:16], "steps": steps}
    return out


class _MethodFailed(Exception):
    """Carries a DiffDenoiseError raised by a method out of the per-image loop (data errors are not wrapped)."""


def _call(method: Any, y: torch.Tensor, s: float | torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    try:
        with torch.no_grad():
            return method(y, s, generator=generator)
    except DiffDenoiseError as e:
        raise _MethodFailed(e) from e


def _run_method(name: str, options: dict[str, Any], bench: BenchData, inputs: Callable[..., Any],
                dev: torch.device, noise_name: str, warmup: bool, progress: bool) -> list[dict[str, Any]]:
    """One method over the dataset, one record per image.  A DiffDenoiseError of the method (build or call) comes out
    as _MethodFailed; one of the data (an unreadable file) comes out as itself."""
    from tqdm.auto import tqdm
    try:
        method = build_method(name, dev, **options)
    except DiffDenoiseError as e:
        raise _MethodFailed(e) from e
    rows: list[dict[str, Any]] = []
    bar = tqdm(bench.items, desc=f"{name} {bench.name}", unit="img", file=sys.stderr, disable=not progress)
    try:
        if warmup and len(bench):
            y, s, _ = inputs(0, bench.items[0])
            _call(method, y.to(dev), s.to(dev) if isinstance(s, torch.Tensor) else s, torch.Generator(dev))
        for index, item in enumerate(bar):
            y, s, clean = inputs(index, item)
            y = y.to(dev)
            s = s.to(dev) if isinstance(s, torch.Tensor) else s
            # Stochastic methods get a generator seeded by the image index: a run is repeatable image by image.
            generator = torch.Generator(dev).manual_seed(index)
            _sync(dev)
            t0 = time.perf_counter()
            x_hat = _call(method, y, s, generator)
            _sync(dev)
            seconds = time.perf_counter() - t0
            if tuple(x_hat.shape) != tuple(y.shape):
                raise RuntimeError(f"method {name!r} returned shape {tuple(x_hat.shape)} for input {tuple(y.shape)}")
            out = quantize(from_tensor(x_hat), 8)
            rows.append({"method": name, "dataset": bench.name, "noise": noise_name, "image": item.name,
                         "psnr": metrics.psnr(out, clean), "ssim": metrics.ssim(out, clean),
                         "seconds": seconds, "device": str(dev)})
            bar.set_postfix(psnr=f"{_mean([r['psnr'] for r in rows]):.2f}")
    finally:
        bar.close()
    return rows


def run_bench(methods: Sequence[str], data: str | Path | BenchData, noise: str | Any | None = None,
              limit: int | None = None, device: str | torch.device = "cpu",
              method_options: dict[str, dict[str, Any]] | None = None,
              sigma_mode: Literal["true", "observed", "auto"] = "true", progress: bool = True, *,
              split: str | None = None, on_error: Literal["skip", "raise"] = "skip",
              warmup: bool = False) -> dict[str, Any]:
    """Run each method over the dataset; return ``{"summary": [...], "records": [...], "config": {...}}``.

    ``noise`` is a noise spec (8-bit units) for a folder of clean images, default ``"gaussian:25"``; it must be None
    for real pairs.  ``split`` selects ``<split>_split.txt`` in the folder; ``limit`` keeps the first images (after the
    split).  ``method_options`` maps a method name to keyword options of its builder.  ``warmup`` runs each method
    once, untimed, on the first image before timing (first-call costs: CUDA kernels, lazy weight loading).
    """
    methods = list(methods)
    if not methods:
        raise DiffDenoiseError("no methods to benchmark")
    if len(set(methods)) != len(methods):
        twice = sorted({m for m in methods if methods.count(m) > 1})
        raise DiffDenoiseError(f"methods listed twice: {', '.join(twice)}")
    specs = {name: get_method_spec(name) for name in methods}
    method_options = dict(method_options or {})
    stray = sorted(set(method_options) - set(methods))
    if stray:
        raise DiffDenoiseError(f"options given for method(s) not being run: {', '.join(stray)}")
    if sigma_mode not in SIGMA_MODES:
        raise DiffDenoiseError(f"sigma_mode must be one of {', '.join(SIGMA_MODES)}, got {sigma_mode!r}")
    if on_error not in ("skip", "raise"):
        raise DiffDenoiseError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    dev = _device(device)

    bench = data.head(limit) if isinstance(data, BenchData) else load_benchmark(data, split=split, limit=limit)
    if bench.kind == "pairs":
        if noise is not None:
            raise DiffDenoiseError(f"{bench.name} holds real noisy/clean pairs: give no noise spec")
        model, noise_name = None, REAL_NOISE
    else:
        model, noise_name = _noise_model(DEFAULT_NOISE if noise is None else noise)

    def inputs(index: int, item: Any) -> tuple[torch.Tensor, float | torch.Tensor | None, np.ndarray]:
        clean = read_u8(item.clean)
        if model is None:
            y = to_tensor(read_image(item.noisy).data)
            if tuple(y.shape[1:]) != (clean.shape[2], clean.shape[0], clean.shape[1]):
                raise DiffDenoiseError(f"noisy and clean {item.name} differ in size: "
                                       f"{tuple(y.shape[1:])} vs {clean.shape}")
            return y, None, clean
        x = to_tensor(clean.astype(np.float32) / 255.0)
        y, s = _noisy_input(model, x, index, sigma_mode)
        return y, s, clean

    summary: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    resolved_options: dict[str, dict[str, Any]] = {}
    weights_used: dict[str, dict[str, Any]] = {}
    for name in methods:
        weights_used.update(_weights_used([name]))          # read as the method is built
        options = method_options.get(name, {})
        resolved_options[name] = {**specs[name].defaults, **options}
        try:
            rows = _run_method(name, options, bench, inputs, dev, noise_name, warmup, progress)
        except _MethodFailed as failed:
            error = failed.args[0]
            if on_error == "raise":
                raise error from None
            skipped[name] = str(error).splitlines()[0] if str(error) else type(error).__name__
            if len(methods) > 1:
                log.warning("skipping %s: %s", name, skipped[name])
            continue
        records.extend(rows)
        summary.append({"method": name, "dataset": bench.name, "noise": noise_name,
                        "psnr": _mean([r["psnr"] for r in rows]), "ssim": _mean([r["ssim"] for r in rows]),
                        "seconds_per_image": _mean([r["seconds"] for r in rows]), "images": len(rows)})
    if not summary:
        raise DiffDenoiseError("; ".join(v if v.startswith(k) else f"{k}: {v}" for k, v in skipped.items()))

    config = {
        "methods": methods,
        "method_options": resolved_options,
        "data": str(bench.path),
        "dataset": bench.name,
        "kind": bench.kind,
        "split": bench.split,
        "noise": noise_name,
        "limit": limit,
        "images": len(bench),
        "sigma_mode": sigma_mode if model is not None else "auto",
        "device": str(dev),
        "on_error": on_error,
        "warmup": warmup,
        "protocol": "SPEC §1: noise seeded by sorted index, y unclipped, output clipped and rounded to uint8, "
                    "PSNR/SSIM on uint8 (peak 255, all channels, no crop)",
        "skipped": skipped,
        "weights_dir": None if not any(specs[m].weights for m in methods) else str(_weights_dir()),
        "weights": weights_used,
        **_environment(dev),
    }
    return {"summary": summary, "records": records, "config": config}


def _fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def format_table(result: dict[str, Any]) -> str:
    """The summary as a markdown table; methods skipped by the run appear as "skipped" rows."""
    lines = ["| method | dataset | noise | PSNR | SSIM | s/image | images |",
             "|---|---|---|---:|---:|---:|---:|"]
    for row in result["summary"]:
        lines.append(f"| {row['method']} | {row['dataset']} | {row['noise']} | {_fmt(row['psnr'], 2)} | "
                     f"{_fmt(row['ssim'], 4)} | {row['seconds_per_image']:.3g} | {row['images']} |")
    config = result.get("config", {})
    for name, reason in config.get("skipped", {}).items():
        reason = reason.replace("|", "\\|")
        lines.append(f"| {name} | {config.get('dataset', '')} | {config.get('noise', '')} | "
                     f"skipped: {reason} | | | 0 |")
    return "\n".join(lines) + "\n"


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` through a temporary file and a rename: never a half-written result."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DiffDenoiseError(f"output folder does not exist: {folder}")
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return path


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """The whole result as indented JSON (an infinite PSNR, identical images, is written as ``Infinity``)."""
    return write_text(path, json.dumps(result, indent=2, default=str) + "\n")


def write_csv(result: dict[str, Any], path: str | Path) -> Path:
    """One row per record: method, dataset, noise, image, psnr, ssim, seconds, device (and any extra keys)."""
    extra = sorted({k for r in result["records"] for k in r} - set(RECORD_KEYS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*RECORD_KEYS, *extra], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["records"])
    return write_text(path, buf.getvalue())
