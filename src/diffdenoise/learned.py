"""The CNN baselines (DnCNN, REDNet, MWCNN, PRIDNet) as denoisers: ``method(y, sigma=None) -> x_hat``.

They are BLIND: trained on Gaussian noise with sigma drawn from 0..55 (8-bit units) per image, they take no noise
level, and the ``sigma`` argument is accepted for the common call and ignored.  Weights are
``weights/<net>-color`` and ``weights/<net>-gray``; the one matching the input's channel count is used.  When only
one exists the input is converted: a gray image is replicated to RGB for a colour model (the output averaged back
to one channel), an RGB image goes through a gray model one channel at a time.  ``precision`` (``auto``: bf16 autocast
on CUDA, float32 on the CPU; ``fp32``; ``bf16``) is the switch of :func:`diffdenoise.runtime.autocast`.
"""
from __future__ import annotations

from typing import Callable

import torch

from .errors import DiffDenoiseError
from .runtime import Precision, autocast, check_precision
from .train.checkpoint import load_net, weights_dir


class CNNDenoiser:
    """A trained CNN (or a colour/gray pair of them) behind the common denoiser call; eval mode, no_grad."""

    blind = True  # sigma is ignored

    def __init__(self, net: str, device: str | torch.device = "cpu", variant: str | None = None,
                 precision: Precision = "auto"):
        self.net_name, self.precision = net, check_precision(precision)
        self.device = torch.device(device)
        stems = [f"{net}-{variant}"] if variant else [f"{net}-color", f"{net}-gray"]
        folder = weights_dir()
        present = [s for s in stems if (folder / f"{s}.json").is_file()]
        if not present:
            names = " or ".join(str(folder / f"{s}.json") for s in stems)
            raise DiffDenoiseError(f"{net}: no weights found ({names}); train with configs/{stems[0]}.json and "
                                   f"export with `python -m diffdenoise.train.export`")
        self.nets: dict[int, torch.nn.Module] = {}
        self.cards: dict[int, dict] = {}
        for stem in present:
            model, card = load_net(stem, self.device)
            channels = int(card["net"].get("kwargs", {}).get("channels", 3))
            if channels not in self.nets:
                self.nets[channels], self.cards[channels] = model, card

    @torch.no_grad()
    def _run(self, y: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return self._run_nets(y).float()

    def _run_nets(self, y: torch.Tensor) -> torch.Tensor:
        c = y.shape[1]
        if c in self.nets:
            return self.nets[c](y)
        if c == 1:                                    # colour model only: replicate, average back
            return self.nets[3](y.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        if c == 3:                                    # gray model only: one channel at a time
            n, _, h, w = y.shape
            return self.nets[1](y.reshape(n * 3, 1, h, w)).reshape(n, 3, h, w)
        raise DiffDenoiseError(f"{self.net_name}: images must have 1 or 3 channels, got {c}")

    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None, progress: Callable[[float], None] | None = None
                 ) -> torch.Tensor:
        """``x_hat`` for each image of ``y`` (N x C x H x W); ``sigma`` and ``generator`` are ignored."""
        if y.ndim != 4:
            raise DiffDenoiseError(f"expected an N x C x H x W tensor, got shape {tuple(y.shape)}")
        out = []
        for i in range(y.shape[0]):                   # one image at a time bounds the memory of large photos
            out.append(self._run(y[i:i + 1].to(self.device, torch.float32)).to(y.device, torch.float32))
            if progress is not None:
                progress((i + 1) / y.shape[0])
        return torch.cat(out)


def dncnn_method(device: str | torch.device = "cpu", variant: str | None = None,
                 precision: Precision = "auto") -> CNNDenoiser:
    return CNNDenoiser("dncnn", device, variant, precision)


def rednet_method(device: str | torch.device = "cpu", variant: str | None = None,
                  precision: Precision = "auto") -> CNNDenoiser:
    return CNNDenoiser("rednet", device, variant, precision)


def mwcnn_method(device: str | torch.device = "cpu", variant: str | None = None,
                 precision: Precision = "auto") -> CNNDenoiser:
    return CNNDenoiser("mwcnn", device, variant, precision)


def pridnet_method(device: str | torch.device = "cpu", variant: str | None = None,
                   precision: Precision = "auto") -> CNNDenoiser:
    return CNNDenoiser("pridnet", device, variant, precision)


def pridnet_real_method(device: str | torch.device = "cpu", precision: Precision = "auto") -> CNNDenoiser:
    """PRIDNet trained for real camera noise (camera model + PolyU pairs), blind; color only."""
    return CNNDenoiser("pridnet", device, "real", precision)
