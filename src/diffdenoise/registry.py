"""The method registry: every denoiser the CLI, the web app and the benchmark can name.

A method is built lazily from a ``module:attribute`` path so that ``import diffdenoise`` needs only torch and
numpy.  The built object follows one call (STYLE.md, example 1)::

    method(y, sigma=None, *, generator=None, progress=None) -> x_hat

``y`` is a float32 NCHW tensor in [0, 1] (C = 1 or 3); ``sigma`` is a float on the [0, 1] scale, a per-pixel map
(N x 1 x H x W or N x C x H x W) or ``None`` (blind: the method estimates what it needs); ``x_hat`` has the shape of
``y`` and is not necessarily clipped (callers clip).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import torch

from .errors import DiffDenoiseError


class Denoiser(Protocol):
    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None, progress: Callable[[float], None] | None = None
                 ) -> torch.Tensor: ...


class Wrapper:
    """Base of a denoiser that wraps another (tiling, self-ensemble): attributes the wrapper lacks are read from the
    wrapped ``method`` (``blind``, ``nets``, ``model_for``...), so code that inspects a method sees through it."""
    method: Any

    def __getattr__(self, name: str) -> Any:
        if name == "method":
            raise AttributeError(name)
        return getattr(self.method, name)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str                                  # one line for `diffdenoise methods`
    family: Literal["classical", "cnn", "diffusion"]
    target: str                                   # "module:callable" building the denoiser: f(device=..., **options)
    weights: tuple[str, ...] = ()                 # weight stems in weights/ the method needs (any one of them)
    options: tuple[str, ...] = ()                 # extra keyword options the builder accepts (steps, samples, ...);
                                                  # every cnn/diffusion builder also takes NEURAL_OPTIONS
    stochastic: bool = False                      # draws random numbers when denoising
    blind: bool = False                           # takes no noise level: sigma and noise maps are ignored
    defaults: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, MethodSpec] = {
    "gaussian": MethodSpec("gaussian", "Gaussian blur, width from sigma", "classical",
                           "diffdenoise.classical.methods:gaussian_method"),
    "median": MethodSpec("median", "median filter, size from sigma", "classical",
                         "diffdenoise.classical.methods:median_method"),
    "bilateral": MethodSpec("bilateral", "bilateral filter (OpenCV), range from sigma", "classical",
                            "diffdenoise.classical.methods:bilateral_method"),
    "wavelet": MethodSpec("wavelet", "wavelet shrinkage, BayesShrink soft thresholds (scikit-image)", "classical",
                          "diffdenoise.classical.methods:wavelet_method"),
    "tv": MethodSpec("tv", "total-variation denoising (Chambolle), weight from sigma", "classical",
                     "diffdenoise.classical.methods:tv_method"),
    "nlm": MethodSpec("nlm", "non-local means, patch 7 search 21, h tuned per sigma", "classical",
                      "diffdenoise.classical.methods:nlm_method"),
    "bm3d": MethodSpec("bm3d", "BM3D / CBM3D (optional `bm3d` package, non-commercial licence)", "classical",
                       "diffdenoise.classical.methods:bm3d_method"),
    "dncnn": MethodSpec("dncnn", "DnCNN (17 conv, BN, residual), blind Gaussian sigma 0-55", "cnn",
                        "diffdenoise.learned:dncnn_method", weights=("dncnn-color", "dncnn-gray"),
                        blind=True),
    "rednet": MethodSpec("rednet", "REDNet (5 conv + 5 deconv, symmetric skips), blind Gaussian", "cnn",
                         "diffdenoise.learned:rednet_method", weights=("rednet-color", "rednet-gray"),
                         blind=True),
    "mwcnn": MethodSpec("mwcnn", "MWCNN (Haar DWT/IWT UNet, 4 levels), blind Gaussian", "cnn",
                        "diffdenoise.learned:mwcnn_method", weights=("mwcnn-color", "mwcnn-gray"),
                        blind=True),
    "pridnet": MethodSpec("pridnet", "PRIDNet (channel attention, pyramid pooling, kernel selection)", "cnn",
                          "diffdenoise.learned:pridnet_method", weights=("pridnet-color", "pridnet-gray"),
                          blind=True),
    "pridnet-real": MethodSpec("pridnet-real", "PRIDNet trained on real camera noise (camera model + PolyU pairs)",
                               "cnn", "diffdenoise.learned:pridnet_real_method", weights=("pridnet-real",),
                               blind=True),
    "ddpm-match": MethodSpec("ddpm-match", "unconditional DDPM entered at the step matching sigma (seed 001 §3.1)",
                             "diffusion", "diffdenoise.diffusion.ddpm_match:build",
                             weights=("ddpm-natural",), options=("steps", "sampler", "samples", "offset", "repeat_last"),
                             stochastic=True),
    "cddpm": MethodSpec("cddpm", "conditional DDPM for Gaussian noise sigma 0-75, blind or non-blind", "diffusion",
                        "diffdenoise.diffusion.cddpm:build", weights=("cddpm-gaussian",),
                        options=("steps", "sampler", "samples"), stochastic=True),
    "cddpm-prob": MethodSpec("cddpm-prob", "conditional DDPM with probabilistic conditioning p(t)=1-exp(-d/tau)",
                             "diffusion", "diffdenoise.diffusion.cddpm:build_prob", weights=("cddpm-gaussian",),
                             options=("steps", "sampler", "samples", "mode"), stochastic=True),
    "svnr": MethodSpec("svnr", "SVNR: per-pixel time maps for spatially variant noise (Pearl et al. 2023)",
                       "diffusion", "diffdenoise.diffusion.svnr:build", weights=("svnr-color", "svnr-gray"),
                       options=("steps", "samples", "naive"), stochastic=True),
    "realdiff": MethodSpec("realdiff",
                           "real-world interpolation diffusion (Yang et al. 2023), blind, default for photos",
                           "diffusion", "diffdenoise.diffusion.realdiff:build",
                           weights=("realdiff-color", "realdiff-gray"),
                           options=("steps", "sampler", "samples", "jitter"),
                           stochastic=True, blind=True,
                           # one forward is within 0.1 dB of the best step count on PolyU test (38.11 vs 38.14 dB
                           # at 5 improved steps, benchmarks/results/gpu/round2a_eval.json) at a fifth of the cost
                           defaults={"steps": 1}),
}


# Options of every neural (cnn, diffusion) method: precision "auto" (bf16 autocast on CUDA) | "fp32" | "bf16";
# ensemble 1 | 2 | 4 | 8: geometric self-ensemble (diffdenoise.ensemble), handled here, not by the builders.
NEURAL_OPTIONS = ("precision", "ensemble")


def method_options(spec: MethodSpec) -> tuple[str, ...]:
    """The keyword options ``build_method`` accepts for ``spec``."""
    return spec.options + (NEURAL_OPTIONS if spec.family != "classical" else ())


def get_method_spec(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise DiffDenoiseError(f"unknown method {name!r}; valid: {', '.join(sorted(METHODS))}") from None


def resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_method(name: str, device: str | torch.device = "cpu", tile: int | str | None = "auto",
                 **options: Any) -> Denoiser:
    """Build the named denoiser; unknown options raise with the list of valid ones.  ``tile``: neural methods (cnn,
    diffusion) run over overlapping tiles of this side (``"auto"``: from memory; None or 0: whole image), see
    ``diffdenoise.tiling``; classical methods ignore it.  ``ensemble=n`` (neural methods) averages the result over
    n flips/rotations of the image (``diffdenoise.ensemble``), n times the cost."""
    spec = get_method_spec(name)
    bad = sorted(k for k in options if k not in method_options(spec))
    if bad:
        valid = ", ".join(method_options(spec)) or "none"
        raise DiffDenoiseError(f"method {name!r} does not take option(s) {', '.join(bad)}; valid: {valid}")
    n = options.pop("ensemble", 1)
    if n != 1:
        from .ensemble import check_size
        check_size(n)                               # before the (slow) build
    method = resolve(spec.target)(device=device, **{**spec.defaults, **options})
    if spec.family != "classical" and tile:
        from .tiling import Tiled
        method = Tiled(method, tile)                # inside the ensemble: tiling decides blind sigma on the method
    if n == 1:
        return method
    from .ensemble import SelfEnsemble
    return SelfEnsemble(method, n)


def list_methods() -> list[MethodSpec]:
    return list(METHODS.values())


DEFAULT_ORDER = ("realdiff", "cddpm", "dncnn", "nlm")  # best first: the first one usable here is the default


def weights_present(spec: MethodSpec) -> bool:
    """True when the method needs no weights or at least one of its weight files is in weights/."""
    if not spec.weights:
        return True
    from .train.checkpoint import weights_dir
    folder = weights_dir()
    return any((folder / f"{stem}.json").exists() for stem in spec.weights)


def weights_status(spec: MethodSpec) -> str:
    if spec.name == "bm3d":
        import importlib.util
        return "package present" if importlib.util.find_spec("bm3d") else "needs `pip install bm3d`"
    if not spec.weights:
        return "no weights needed"
    from .train.checkpoint import weights_dir
    have = [s for s in spec.weights if (weights_dir() / f"{s}.json").exists()]
    return f"weights {len(have)}/{len(spec.weights)}" if have else "weights missing"


def default_method() -> str:
    for name in DEFAULT_ORDER:
        if name in METHODS and weights_present(METHODS[name]):
            return name
    return "nlm"
