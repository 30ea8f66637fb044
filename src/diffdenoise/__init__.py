"""diffdenoise: image denoising with diffusion models, classical and CNN baselines.

The small public API::

    import diffdenoise
    x_hat = diffdenoise.denoise(y)                          # HxWxC float array in [0,1] -> same, best method
    x_hat = diffdenoise.denoise(y, method="bm3d", sigma=25 / 255)
    method = diffdenoise.load("nlm")                       # the Denoiser object: method(y_nchw, sigma) -> x_hat
    diffdenoise.list_methods()
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import DiffDenoiseError
from .registry import Denoiser, build_method as load, default_method, list_methods

__all__ = ["denoise", "load", "list_methods", "DiffDenoiseError", "Denoiser"]
__version__ = "0.1.0"


def denoise(image: np.ndarray | torch.Tensor, method: str | None = None, sigma: float | None = None,
            device: str = "cpu", seed: int = 0, **options: Any) -> np.ndarray | torch.Tensor:
    """Denoise one image: an H x W (x C) float array in [0, 1], or an N x C x H x W tensor (returned as a tensor).

    ``sigma`` is the noise std on the [0, 1] scale (None: estimated by the method)."""
    from .imageio import from_tensor, to_tensor
    name = method or default_method()
    fn = load(name, device=device, **options)
    is_array = not isinstance(image, torch.Tensor)
    if is_array:
        arr = np.asarray(image, dtype=np.float32)
        y = to_tensor(arr[:, :, None] if arr.ndim == 2 else arr)
    else:
        y = image.float()
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.inference_mode():
        x_hat = fn(y.to(device), sigma, generator=gen).float().cpu()
    if not is_array:
        return x_hat
    out = from_tensor(x_hat)
    return out[:, :, 0] if np.asarray(image).ndim == 2 else out
