"""Patch samplers that live on the training device.

All images of a source are packed into one flat uint8 buffer on the device (a few hundred MB for the whole
training set); a batch is ONE gather with an index tensor that encodes, per sample, the image, the crop offset and
one of the 8 flips/rotations (the dihedral group of the square).  No DataLoader, no worker processes, no host
synchronisation: the GPU is never waiting for the CPU.  Randomness comes only from the ``generator`` argument,
which must live on the sampler's device; the same generator state gives the same batch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import DiffDenoiseError

LUMA = (0.299, 0.587, 0.114)


class _Packed:
    """uint8 images (H x W x C arrays) packed channel-planar into one flat device buffer."""

    def __init__(self, images: Sequence[np.ndarray], device: str | torch.device):
        if not images:
            raise DiffDenoiseError("no images to sample from")
        self.device = torch.device(device)
        self.channels = images[0].shape[2]
        if any(a.shape[2] != self.channels for a in images):
            raise DiffDenoiseError("images of one source must have the same number of channels")
        flat = np.concatenate([np.ascontiguousarray(a.transpose(2, 0, 1)).ravel() for a in images])
        self.buffer = torch.from_numpy(flat).to(self.device)
        self.sizes = np.array([a.shape[:2] for a in images], dtype=np.int64)  # host copy: (H, W) per image
        offsets = np.concatenate([[0], np.cumsum(self.sizes.prod(axis=1) * self.channels)[:-1]])
        self.offsets = torch.from_numpy(offsets).to(self.device)
        self.heights = torch.from_numpy(self.sizes[:, 0].copy()).to(self.device)
        self.widths = torch.from_numpy(self.sizes[:, 1].copy()).to(self.device)
        self._weights: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.sizes)

    def weights(self, patch: int) -> torch.Tensor:
        """Sampling weight per image: its area if it holds a ``patch`` x ``patch`` crop, else 0."""
        if patch not in self._weights:
            ok = (self.sizes >= patch).all(axis=1)
            if not ok.any():
                raise DiffDenoiseError(f"no image is at least {patch}x{patch}; largest is {self.sizes.max(0)}")
            w = np.where(ok, self.sizes.prod(axis=1), 0).astype(np.float64)
            self._weights[patch] = torch.from_numpy(w / w.sum()).float().to(self.device)
        return self._weights[patch]

    def indices(self, n: int, patch: int, generator: torch.Generator | None) -> torch.Tensor:
        """n x C x patch x patch int64 indices into ``buffer``: random image (area-weighted), crop and D4 element."""
        dev = self.device
        img = torch.multinomial(self.weights(patch), n, replacement=True, generator=generator)
        h, w = self.heights[img], self.widths[img]
        top = (torch.rand(n, generator=generator, device=dev) * (h - patch + 1)).long().clamp_(max=h - patch)
        left = (torch.rand(n, generator=generator, device=dev) * (w - patch + 1)).long().clamp_(max=w - patch)
        k = torch.randint(0, 8, (n, 1, 1), generator=generator, device=dev)
        u = torch.arange(patch, device=dev)
        r, c = u.view(1, patch, 1).expand(n, patch, patch), u.view(1, 1, patch).expand(n, patch, patch)
        r, c = torch.where(k & 4 > 0, c, r), torch.where(k & 4 > 0, r, c)      # transpose
        r = torch.where(k & 1 > 0, patch - 1 - r, r)                            # vertical flip
        c = torch.where(k & 2 > 0, patch - 1 - c, c)                            # horizontal flip
        pix = (self.offsets[img] + top * w + left).view(n, 1, 1) + r * w.view(n, 1, 1) + c
        plane = (h * w).view(n, 1, 1, 1) * torch.arange(self.channels, device=dev).view(1, -1, 1, 1)
        return pix.unsqueeze(1) + plane


def _to_float(u8: torch.Tensor) -> torch.Tensor:
    return u8.float().div_(255.0)


class PatchSampler:
    """Random ``patch`` x ``patch`` crops of clean images, with random flips and 90-degree rotations.

    ``gray_prob``: probability that a (colour) crop is replaced by its BT.601 luma, replicated to every channel.
    ``exposure``: ``(lo, hi)`` in (0, 1]: each crop is scaled by a factor drawn log-uniformly from that range, a dim
    scene (fluorescence microscopy, low light) before the noise model adds the photon noise that goes with it.
    """

    def __init__(self, images: Sequence[np.ndarray], device: str | torch.device = "cpu", gray_prob: float = 0.0,
                 exposure: tuple[float, float] | None = None):
        self.packed = _Packed(images, device)
        self.device, self.channels, self.gray_prob = self.packed.device, self.packed.channels, gray_prob
        if exposure is not None:
            lo, hi = (float(v) for v in exposure)
            if not 0 < lo <= hi <= 1:
                raise DiffDenoiseError(f"exposure must be [lo, hi] with 0 < lo <= hi <= 1, got {list(exposure)}")
            exposure = (lo, hi)
        self.exposure = exposure
        self.paired, self.labeled = False, False

    def __len__(self) -> int:
        return len(self.packed)

    def batch(self, batch_size: int, patch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """N x C x P x P float32 in [0, 1]."""
        x = self.packed.buffer[self.packed.indices(batch_size, patch, generator)].float()
        if self.gray_prob > 0 and self.channels == 3:
            luma = torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA, device=x.device)).round_().unsqueeze(1)
            gray = torch.rand(batch_size, 1, 1, 1, generator=generator, device=x.device) < self.gray_prob
            x = torch.where(gray, luma.expand_as(x), x)
        x = x.div_(255.0)
        if self.exposure is not None:
            lo, hi = np.log(self.exposure[0]), np.log(self.exposure[1])
            u = torch.rand(batch_size, 1, 1, 1, generator=generator, device=x.device)
            x = x.mul_(torch.exp(lo + (hi - lo) * u))
        return x


class PairedSampler:
    """The same random crops and flips/rotations cut from clean and noisy partners: ``batch`` -> (x, y)."""

    def __init__(self, clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray], device: str | torch.device = "cpu"):
        self.packed = _Packed(clean, device)
        self.noisy = torch.from_numpy(
            np.concatenate([np.ascontiguousarray(a.transpose(2, 0, 1)).ravel() for a in noisy])).to(self.device)
        if self.noisy.numel() != self.packed.buffer.numel():
            raise DiffDenoiseError("noisy and clean images differ in size")
        self.channels, self.paired, self.labeled = self.packed.channels, True, False

    @property
    def device(self) -> torch.device:
        return self.packed.device

    def __len__(self) -> int:
        return len(self.packed)

    def batch(self, batch_size: int, patch: int, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.packed.indices(batch_size, patch, generator)
        return _to_float(self.packed.buffer[idx]), _to_float(self.noisy[idx])


class LabeledSampler:
    """Whole images with class labels (MNIST), drawn uniformly, no augmentation: ``batch`` -> (x, label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.images, self.labels = images.to(self.device), labels.to(self.device)
        self.channels, self.paired, self.labeled = images.shape[1], False, True

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, batch_size: int, patch: int | None = None, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.images.shape[-1]
        if patch is not None and patch != size:
            raise DiffDenoiseError(f"these images are {size}x{size}; set patch={size}")
        i = torch.randint(0, len(self.labels), (batch_size,), generator=generator, device=self.device)
        return _to_float(self.images[i]), self.labels[i]


class Mixture:
    """Several samplers mixed by weight into one batch dict.

    ``batch(n, patch, generator)`` returns ``{"x": clean}``, plus ``"y"`` (the real noisy partner; NaN in rows
    that came from clean-only sources) and ``"paired"`` (bool per row) when any source is paired, plus
    ``"label"`` when every source is labeled.  Rows are grouped by source.  How many rows each source gets is
    deterministic: the exact share ``weight * n`` accumulates across calls and each source gets the whole part
    (largest credit first for the remainder), so small weights are honoured over time without a host sync.
    """

    def __init__(self, samplers: Sequence, weights: Sequence[float] | None = None):
        if not samplers:
            raise DiffDenoiseError("no data sources")
        weights = [1.0] * len(samplers) if weights is None else [float(w) for w in weights]
        if len(weights) != len(samplers) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise DiffDenoiseError(f"bad source weights {weights}")
        if len({s.channels for s in samplers}) > 1:
            raise DiffDenoiseError("data sources differ in channel count; give every source the same color")
        labeled = [s.labeled for s in samplers]
        if any(labeled) and not all(labeled):
            raise DiffDenoiseError("cannot mix labeled and unlabeled data sources")
        self.samplers = list(samplers)
        total = sum(weights)
        self.shares = np.array([w / total for w in weights])
        self.credit = np.zeros(len(weights))
        self.channels, self.device = samplers[0].channels, samplers[0].device
        self.paired = any(s.paired for s in samplers)
        self.labeled = all(labeled)

    def counts(self, n: int) -> list[int]:
        self.credit += self.shares * n
        # a source given one more image than its share last time carries a negative credit: it gets none, not < 0
        counts = np.maximum(np.floor(self.credit), 0).astype(np.int64)
        short = n - int(counts.sum())
        if short > 0:
            counts[np.argsort(-(self.credit - counts), kind="stable")[:short]] += 1
        elif short < 0:
            for i in np.argsort(self.credit - counts, kind="stable"):
                take = min(-short, counts[i])
                counts[i] -= take
                short += take
                if short == 0:
                    break
        self.credit -= counts
        return counts.tolist()

    def batch(self, batch_size: int, patch: int | None, generator: torch.Generator | None = None
              ) -> dict[str, torch.Tensor]:
        xs, ys, paired, labels = [], [], [], []
        for sampler, n in zip(self.samplers, self.counts(batch_size)):
            if n == 0:
                continue
            out = sampler.batch(n, patch, generator)
            if sampler.labeled:
                xs.append(out[0])
                labels.append(out[1])
            elif sampler.paired:
                xs.append(out[0])
                ys.append(out[1])
            else:
                xs.append(out)
                if self.paired:
                    ys.append(torch.full_like(out, float("nan")))
            if self.paired:
                paired.append(torch.full((n,), sampler.paired, dtype=torch.bool, device=xs[-1].device))
        batch = {"x": torch.cat(xs) if len(xs) > 1 else xs[0]}
        if self.paired:
            batch["y"] = torch.cat(ys) if len(ys) > 1 else ys[0]
            batch["paired"] = torch.cat(paired)
        if self.labeled:
            batch["label"] = torch.cat(labels) if len(labels) > 1 else labels[0]
        return batch
