"""What the web app does, without the web: check an upload, run a method on one file, draw the maps.

Nothing here imports gradio, so all of it is unit-tested without a browser; ``web/app.py`` only lays out widgets
and calls :func:`denoise_file`.  Files are read and written with :mod:`diffdenoise.imageio`, so a 16-bit TIFF or
PNG comes back at 16 bits.  Sigma crosses this boundary in 8-bit units (SPEC §0: what the CLI and the web app
speak) and is divided by 255 before it reaches a method.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import DiffDenoiseError
from ..imageio import READ_SUFFIXES, Image, from_tensor, quantize, read_image, to_tensor, write_image
from ..registry import METHODS, MethodSpec, build_method, default_method, get_method_spec, weights_status

PREVIEW_SIDE = 2048              # longest side of the images sent to the browser; downloads keep full resolution
METHOD_CACHE_SIZE = 2            # built methods kept (a diffusion net is slow to load, and large)
_MiB = 1024 * 1024               # "MB" as gradio's max_file_size counts it


@dataclass(frozen=True)
class Limits:
    """What one upload may be: pixels (decoded size) and bytes (file size)."""
    max_megapixels: float = 50.0
    max_mb: float = 100.0

    def describe(self) -> str:
        return f"up to {self.max_megapixels:g} megapixels and {self.max_mb:g} MB per image"


# ------------------------------------------------------------------------------------------------------- methods

@dataclass(frozen=True)
class MethodChoice:
    name: str
    label: str                   # what the dropdown shows
    usable: bool
    status: str                  # registry.weights_status, or why the method cannot run here


def _module_present(spec: MethodSpec) -> bool:
    import importlib.util
    module = spec.target.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def method_choices() -> list[MethodChoice]:
    """Every registered method with its one-line summary and whether it can run here (weights, packages)."""
    out = []
    for spec in METHODS.values():
        status = weights_status(spec)
        usable = status not in ("weights missing",) and not status.startswith("needs ")
        if usable and not _module_present(spec):
            usable, status = False, "not installed in this build"
        out.append(MethodChoice(spec.name, f"{spec.name} — {spec.summary}", usable, status))
    return out


def pick_default_method(choices: list[MethodChoice] | None = None) -> str:
    """registry.default_method() when it can run here, else the first usable method."""
    choices = method_choices() if choices is None else choices
    usable = [c.name for c in choices if c.usable]
    name = default_method()
    if name in usable or not usable:
        return name
    return usable[0]


def method_options(name: str) -> dict[str, bool]:
    """Which of the app's per-method widgets apply: steps, samples, self-ensemble (neural methods); and whether
    results vary with the seed."""
    spec = get_method_spec(name)
    return {"steps": "steps" in spec.options, "samples": "samples" in spec.options, "stochastic": spec.stochastic,
            "ensemble": spec.family != "classical"}


class MethodCache:
    """Built denoisers by (name, options, device); the least recently used one is dropped past ``size``."""

    def __init__(self, size: int = METHOD_CACHE_SIZE, build: Callable[..., Any] = build_method):
        self.size, self.build = size, build
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, device: str, options: dict[str, Any]) -> Any:
        key = (name, device, tuple(sorted(options.items())))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        method = self.build(name, device=device, **options)
        with self._lock:
            self._items[key] = method
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return method


# ------------------------------------------------------------------------------------------------------- uploads

def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile
        with tifffile.TiffFile(str(path)) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    from PIL import Image as PILImage
    from ..imageio import MAX_PIXELS
    PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS
    with PILImage.open(path) as im:
        return im.size


def check_upload(path: str | Path, limits: Limits = Limits()) -> tuple[int, int]:
    """Refuse what the app will not process, with one line naming the file; returns (width, height).

    Checks, cheapest first: the file exists and is not empty, its size in MB, its suffix, that its header is an
    image header, and the pixel count (from the header, before decoding anything)."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DiffDenoiseError(f"{name}: upload not found; please upload it again")
    size = path.stat().st_size
    if size == 0:
        raise DiffDenoiseError(f"{name}: the file is empty")
    if size > limits.max_mb * _MiB:
        raise DiffDenoiseError(f"{name}: file is {size / _MiB:.1f} MB; this app takes {limits.describe()}")
    if path.suffix.lower() not in READ_SUFFIXES:
        kinds = ", ".join(sorted(s.lstrip(".").upper() for s in READ_SUFFIXES))
        raise DiffDenoiseError(f"{name}: not an image file this app reads ({kinds})")
    try:
        width, height = _header_size(path)
    except Exception:  # Pillow and tifffile raise many types for non-images; their messages name server paths
        kind = path.suffix.lstrip(".").upper()
        raise DiffDenoiseError(f"{name}: not a readable image: the content is not {kind} image data "
                               "(or the file is damaged)") from None
    if width * height > limits.max_megapixels * 1e6:
        raise DiffDenoiseError(f"{name}: image is {width}x{height} = {width * height / 1e6:.1f} megapixels; this "
                               f"app takes {limits.describe()} (the `diffdenoise denoise` command has no limit)")
    return width, height


def output_suffix(path: str | Path) -> str:
    """The result's format: TIFF stays TIFF, everything else becomes PNG (lossless, 8 or 16 bits)."""
    return ".tif" if Path(path).suffix.lower() in (".tif", ".tiff") else ".png"


# ------------------------------------------------------------------------------------------------------- pictures

def preview(data: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """H x W x C float in [0, 1] -> uint8 H x W x 3 for the browser, shrunk (area average) to ``side`` at most."""
    a = quantize(data, 8)
    a = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a
    h, w = a.shape[:2]
    if max(h, w) > side:
        import cv2
        scale = side / max(h, w)
        a = cv2.resize(a, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(a)


def heat_map(values: np.ndarray, vmax: float | None = None, unit: str = "", side: int = PREVIEW_SIDE
             ) -> tuple[np.ndarray, float]:
    """A per-pixel map (H x W or H x W x C, channels averaged) -> (uint8 RGB heat map with a colour bar, vmax).

    Colours run from black (0) through red to light yellow (``vmax``, default the 99.5th percentile, so that a
    few hot pixels do not wash the map out); the bar under the map is labelled with 0 and vmax in ``unit``."""
    import cv2
    m = np.asarray(values, dtype=np.float32)
    m = m.mean(axis=2) if m.ndim == 3 else m
    m = np.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)
    if vmax is None:
        vmax = float(np.percentile(m, 99.5)) if m.size else 0.0
    vmax = vmax if vmax > 0 else max(float(m.max(initial=0.0)), 1e-6)
    h, w = m.shape
    if max(h, w) > side:
        scale = side / max(h, w)
        m = cv2.resize(m, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = m.shape
    levels = np.clip(m / vmax * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    bar_h = max(18, h // 12)
    ramp = np.tile(np.linspace(0, 255, w).astype(np.uint8), (bar_h // 2, 1))
    bar = np.full((bar_h, w, 3), 255, np.uint8)
    bar[: bar_h // 2] = cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    font_scale = bar_h / 2 / 22
    text_y = bar_h - 2
    cv2.putText(bar, "0", (1, text_y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    label = f"{vmax:.3g} {unit}".strip()
    (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    cv2.putText(bar, label, (max(0, w - tw - 2), text_y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([rgb, bar], axis=0)), vmax


# ------------------------------------------------------------------------------------------------------- examples

@dataclass(frozen=True)
class Example:
    name: str                    # file name of the noisy image
    caption: str
    noisy: Path
    clean: Path | None


EXAMPLE_RECIPES = (  # (file name, caption, source in examples/, noise spec or None for a real noisy image, seed)
    ("photo_gaussian25.png", "photo, Gaussian noise sigma 25", "kodim05_crop.png", "gaussian:25", 0),
    ("photo_camera.png", "photo, simulated camera noise", "kodim23_crop.png", "camera", 1),
    ("microscopy_fmdd.png", "fluorescence microscopy, real noise", "fmdd_noisy_crop.png", None, 0),
)
_CLEAN_OF = {"fmdd_noisy_crop.png": "fmdd_clean_crop.png"}


def examples_source() -> Path | None:
    """The repository's examples/ folder (source checkouts and editable installs), or None."""
    folder = Path(__file__).resolve().parents[3] / "examples"
    return folder if folder.is_dir() else None


def make_examples(folder: str | Path, source: Path | None = None) -> list[Example]:
    """Write the "try it" images into ``folder``: noise drawn on the bundled clean crops with fixed seeds, and the
    real microscopy pair copied; missing sources are skipped."""
    from ..noise import parse_noise
    source = examples_source() if source is None else Path(source)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if source is None:
        return out
    for name, caption, src_name, noise, seed in EXAMPLE_RECIPES:
        src = source / src_name
        if not src.is_file():
            continue
        img = read_image(src)
        if noise is None:
            data = img.data
            clean_name = _CLEAN_OF.get(src_name)
            clean = source / clean_name if clean_name and (source / clean_name).is_file() else None
        else:
            y = parse_noise(noise).sample(to_tensor(img.data), torch.Generator().manual_seed(seed))
            data = np.clip(from_tensor(y), 0.0, 1.0)
            clean = src
        dst = write_image(folder / name, img.with_data(data), bit_depth=8)
        out.append(Example(name, caption, dst, clean))
    return out


# ------------------------------------------------------------------------------------------------------- denoising

@dataclass
class Outcome:
    """One processed upload: the files to download and the pictures to show."""
    name: str
    size: tuple[int, int]                    # (width, height)
    bit_depth: int
    method: str
    sigma_estimate: float                    # estimated global noise std, 8-bit units
    sigma_used: float | None                 # 8-bit units; None: the method estimated it (blind)
    seconds: float
    noisy_preview: np.ndarray                # uint8 H x W x 3
    result_preview: np.ndarray
    noise_heat: np.ndarray                   # uint8 RGB heat map with colour bar
    noise_vmax: float                        # 8-bit units
    result_path: Path
    noise_map_path: Path                     # 16-bit TIFF, value = std on the [0, 1] scale (as the CLI writes it)
    uncertainty_heat: np.ndarray | None = None
    uncertainty_path: Path | None = None
    psnr_noisy: float | None = None          # against a known clean image (the bundled examples)
    psnr_result: float | None = None
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        w, h = self.size
        sigma = "auto (estimated by the method)" if self.sigma_used is None else f"{self.sigma_used:g}"
        text = (f"{self.name}: {w}x{h}, {self.bit_depth}-bit; estimated noise sigma {self.sigma_estimate:.1f} "
                f"(8-bit units); {self.method} with sigma {sigma}, {self.seconds:.1f} s")
        if self.psnr_noisy is not None and self.psnr_result is not None:
            text += f"; PSNR vs clean {self.psnr_noisy:.2f} -> {self.psnr_result:.2f} dB"
        return text


def _psnr_against(clean: Path, data: np.ndarray) -> float | None:
    from ..metrics import psnr
    ref = read_image(clean).data
    if ref.shape != data.shape:
        return None
    return psnr(quantize(ref, 8), quantize(data, 8))


def _clear_uncertainty(method: Any) -> None:
    if hasattr(method, "last_uncertainty"):
        try:
            method.last_uncertainty = None
        except AttributeError:
            pass


def denoise_file(path: str | Path, method: str, out_dir: str | Path, *, sigma: float | None = None,
                 steps: int | None = None, samples: int | None = None, ensemble: int = 1, seed: int = 0,
                 device: str = "cpu",
                 limits: Limits = Limits(), reference: str | Path | None = None,
                 progress: Callable[[float], None] | None = None, cache: MethodCache | None = None) -> Outcome:
    """Denoise one uploaded file into ``out_dir``; every user-fixable problem raises DiffDenoiseError.

    ``sigma`` in 8-bit units (None: blind, the method estimates it); ``steps``/``samples`` are passed only to
    methods whose MethodSpec.options name them, ``ensemble`` (1, 2, 4, 8 flips/rotations) only to neural methods.  ``progress`` receives fractions in [0, 1] for the whole job."""
    path, out_dir = Path(path), Path(out_dir)
    report = progress or (lambda f: None)
    spec = get_method_spec(method)
    width, height = check_upload(path, limits)
    try:
        img = read_image(path)
    except DiffDenoiseError as e:  # a header that parses over pixels that do not; keep server paths out of it
        raise DiffDenoiseError(str(e).replace(str(path), path.name)) from None
    report(0.02)
    from ..estimate import estimate_noise_map, estimate_sigma
    y = to_tensor(img.data)
    sigma_estimate = 255.0 * float(estimate_sigma(y))
    noise_map = from_tensor(estimate_noise_map(y))
    report(0.08)

    options = {k: int(v) for k, v in (("steps", steps), ("samples", samples)) if v is not None and k in spec.options}
    if spec.family != "classical" and int(ensemble) != 1:
        options["ensemble"] = int(ensemble)
    cache = cache or MethodCache()
    fn = cache.get(method, device, options)
    _clear_uncertainty(fn)
    start = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(int(seed))
    with torch.inference_mode():
        x_hat = fn(y.to(device), None if sigma is None else float(sigma) / 255.0, generator=gen,
                   progress=lambda f: report(0.08 + 0.84 * min(max(float(f), 0.0), 1.0)))
    seconds = time.perf_counter() - start
    x_hat_np = np.clip(from_tensor(x_hat.float().cpu()), 0.0, 1.0)
    if x_hat_np.shape != img.data.shape:
        raise DiffDenoiseError(f"{method} returned shape {x_hat_np.shape} for an image of shape {img.data.shape}")
    report(0.93)

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    result_path = write_image(out_dir / f"{stem}_denoised{output_suffix(path)}", img.with_data(x_hat_np),
                              bit_depth=img.bit_depth)
    noise_map_path = write_image(out_dir / f"{stem}_noise_map.tif",
                                 Image(np.clip(noise_map, 0, 1).astype(np.float32), None, 16), bit_depth=16)
    noise_heat, noise_vmax = heat_map(255.0 * noise_map, unit="(8-bit std)")
    outcome = Outcome(name=path.name, size=(width, height), bit_depth=img.bit_depth, method=method,
                      sigma_estimate=sigma_estimate, sigma_used=sigma, seconds=seconds,
                      noisy_preview=preview(img.data), result_preview=preview(x_hat_np), noise_heat=noise_heat,
                      noise_vmax=noise_vmax, result_path=result_path, noise_map_path=noise_map_path)
    outcome.files = [result_path, noise_map_path]

    uncertainty = getattr(fn, "last_uncertainty", None)
    if isinstance(uncertainty, torch.Tensor) and (samples or 1) > 1:
        u = uncertainty.detach().float().cpu()
        u = u[:1] if u.ndim == 4 else u[None] if u.ndim == 3 else u[None, None]
        u_np = from_tensor(u)
        if u_np.shape[:2] == img.data.shape[:2]:
            outcome.uncertainty_heat, _ = heat_map(255.0 * u_np, unit="(8-bit std)")
            outcome.uncertainty_path = write_image(out_dir / f"{stem}_uncertainty.tif",
                                                   Image(np.clip(u_np, 0, 1).astype(np.float32), None, 16),
                                                   bit_depth=16)
            outcome.files.append(outcome.uncertainty_path)
    if reference is not None:
        outcome.psnr_noisy = _psnr_against(Path(reference), img.data)
        outcome.psnr_result = _psnr_against(Path(reference), x_hat_np)
    report(1.0)
    return outcome
