"""Tiled inference: run a neural denoiser over overlapping tiles so that photos of any size fit in memory.

``Tiled(method, tile="auto", overlap=32)`` is itself a denoiser with the common call
``(y, sigma=None, *, generator=None, progress=None) -> x_hat``.  An image that fits in one tile goes straight
through; a larger one is cut into a grid of equal tiles that overlap by at least ``overlap`` pixels, each tile (or a
batch of them) is denoised by the wrapped method, and the results are blended into one float32 N x C x H x W
output with a separable window, normalised by the summed weights:

    x_hat(p) = sum_k w_k(p) x_hat_k(p) / sum_k w_k(p),      w_k(row, col) = u_k(row) v_k(col)

Window (per axis, per tile): 1 inside, and over each overlap of length o shared with a neighbour a ramp that is
0 for the first ``o // 4`` pixels at the tile's edge, rises as a raised cosine (half a Hann window,
sin^2(pi (i + 1/2) / (2 m)), i = 0..m-1) over the middle ``m = o - 2 (o // 4)`` pixels and is 1 for the last
``o // 4``.  A neighbour's ramp is the mirror image, so the two sum to exactly 1: a constant stays constant, and
the pixels next to a tile's cut edge (where zero padding and the like make a tile's output wrong) get no weight,
so a CNN whose receptive-field radius is at most ``overlap // 4`` gives the untiled result.  Image borders are not
ramped.  Because the tiles form a full grid, sum_k w_k(p) is the product of two 1-D sums: no H x W weight buffer
is kept, only the output (and, for methods with one, the uncertainty map) at full size.  Tile starts are aligned
to the network's downsampling multiple where possible (the last tile ends at the image border), so tiles see the
same pixel grid phase as the whole image.  Networks with global statistics (the UNet's GroupNorm and its
lowest-level attention) see per-tile statistics, so tiled diffusion output is close to, not equal to, the untiled.

Noise level (``sigma``): a float is passed to every tile, a per-pixel map (N x 1|C x H x W) is cut with the tile
(methods that reduce a map to one level -- the entry step of ``cddpm`` and ``ddpm-match`` -- then use the RMS of
the tile's part of it).
``sigma=None`` (blind) depends on what the method does with it (``blind``, inferred from its type):

- ``"pass"``: ``None`` is passed on.  The CNNs and ``realdiff`` are blind and ignore sigma.
- ``"sigma"``: ``cddpm``, ``cddpm-prob`` and ``ddpm-match`` would estimate one global level; estimating it per
  tile would give each tile its own level (visible as tiles of different smoothness), so it is estimated ONCE per
  image with :func:`diffdenoise.estimate.estimate_sigma` (:func:`global_sigma`) and that scalar goes to every
  tile.  Note for ``cddpm``: the tiles are then conditioned on the estimated sigma rather than run in its blind
  mode (zero sigma channel); an image that fits in one tile is unaffected.
- ``"map"``: ``svnr`` estimates a per-pixel map whose Poisson-Gaussian law is fitted to the whole image, so
  :func:`diffdenoise.estimate.estimate_noise_map` runs once on the whole image and the map is cut with the tiles
  (its cost grows with the image: several float64 copies of it).

Randomness: from the given generator (image i's own when a sequence is given) one base seed is drawn per image and
tile k of that image (row-major in the grid) gets ``torch.Generator(device).manual_seed(base + k)``; a batch of
tiles gets the list of its tiles' generators (every method here takes one generator per image), so the result does
not depend on the batch size or the order tiles are run in (it does depend on the tile grid).

``last_uncertainty``: when the wrapped method exposes one (``realdiff`` with ``samples`` > 1), the per-tile std maps
are blended with the same weights (a weighted mean of stds, not a pooled std) and kept here.

``tile="auto"``: the largest side (multiple of 16, in [128, 1024]) whose estimated working memory fits a budget:
a quarter of MemAvailable (``/proc/meminfo``) capped at 2.5 GiB on the CPU -- which keeps a 24-megapixel photo
under about 4 GB in all with the base UNet -- or half the free memory (``torch.cuda.mem_get_info``) on CUDA; when
neither can be read the tile is 512.  Working memory per tile pixel (float32 inference, measured peak RSS on the
CPU and rounded up; :func:`pixel_cost`): DnCNN 1 KiB, REDNet 5 KiB, MWCNN 0.75 KiB, PRIDNet 2.5 KiB, any other net
4 KiB; the UNet 48 bytes per first-level channel (3 KiB for the "base" preset) plus its lowest-level self-attention,
4 bytes x heads x tokens^2 (tokens = pixels / 4^(levels - 1)), which grows quadratically with the tile.  A colour
image on a gray net (run channel by channel) counts three times.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from .errors import DiffDenoiseError
from .registry import Wrapper

Blind = Literal["pass", "sigma", "map"]
TileArg = int | Literal["auto"] | None

AUTO_MIN, AUTO_MAX, AUTO_STEP = 128, 1024, 16      # "auto" tile side: clamp and multiple
AUTO_FALLBACK = 512                                # when no memory figure can be read
CPU_FRACTION, CPU_CAP = 0.25, int(2.5 * 2 ** 30)   # budget for one tile's working memory: share of MemAvailable, cap
CUDA_FRACTION = 0.5                                # share of the free GPU memory
MAX_BATCH = 16                                     # tiles per call on CUDA ("auto" batch); 1 on the CPU
BYTES_PER_PIXEL = {"DnCNN": 1024, "REDNet": 5120, "MWCNN": 768, "PRIDNet": 2560}
UNET_BYTES_PER_CHANNEL = 48                        # per pixel, per channel of the UNet's first level
DEFAULT_BYTES_PER_PIXEL = 4096                     # unknown nets and plain callables
ESTIMATE_PIXELS = 4_000_000                        # global_sigma: larger images are estimated on crops
ESTIMATE_CROP, ESTIMATE_GRID = 1024, 3             # crop side, crops per axis


def window(size: int, left: int, right: int) -> torch.Tensor:
    """1-D float32 weights over a tile of ``size`` pixels that overlaps its neighbours by ``left`` and ``right``
    pixels (0: no neighbour on that side).  See the module docstring; ramps that meet inside a small tile multiply."""
    w = torch.ones(size, dtype=torch.float64)
    if left:
        w[:left] *= _ramp(left)
    if right:
        w[size - right:] *= _ramp(right).flip(0)
    return w.float()


def _ramp(o: int) -> torch.Tensor:
    """Rising ramp over an overlap of ``o`` pixels: o // 4 zeros, a raised cosine, o // 4 ones; r + r.flip(0) = 1."""
    dead = o // 4
    m = o - 2 * dead
    rise = torch.sin(math.pi * (torch.arange(m, dtype=torch.float64) + 0.5) / (2 * m)) ** 2
    return torch.cat([torch.zeros(dead, dtype=torch.float64), rise, torch.ones(dead, dtype=torch.float64)])


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Starts of the tiles covering ``length`` pixels with tiles of ``tile`` (one tile when it fits): as few as
    keep every overlap >= ``overlap``, spread evenly, all but the last aligned down to ``multiple``, the last ending
    at the border."""
    if length <= tile:
        return [0]
    stride = tile - overlap - (multiple - 1)        # the largest spacing that alignment cannot push past `overlap`
    if stride < 1:
        raise DiffDenoiseError(f"tile {tile} is too small for an overlap of {overlap} (network multiple {multiple})")
    n = max(2, math.ceil((length - tile) / stride) + 1)
    starts = [round(k * (length - tile) / (n - 1)) // multiple * multiple for k in range(n - 1)] + [length - tile]
    return sorted(set(starts))


def axis_weights(length: int, starts: Sequence[int], tile: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-tile 1-D windows along one axis and their sum over the axis (``length``,), float32."""
    size = min(tile, length)
    ws, total = [], torch.zeros(length, dtype=torch.float32)
    for k, s in enumerate(starts):
        left = starts[k - 1] + size - s if k > 0 else 0
        right = s + size - starts[k + 1] if k + 1 < len(starts) else 0
        w = window(size, left, right)
        ws.append(w)
        total[s:s + size] += w
    return ws, total


def available_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on ``device``: MemAvailable from /proc/meminfo on the CPU (Linux), the free memory
    from ``torch.cuda.mem_get_info`` on CUDA; None when it cannot be read."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_budget(device: torch.device) -> int | None:
    """Bytes one call on a batch of tiles may use (module docstring); None when no figure is available."""
    free = available_memory(device)
    if free is None:
        return None
    if device.type == "cuda":
        return int(CUDA_FRACTION * free)
    return min(int(CPU_FRACTION * free), CPU_CAP)


def pixel_cost(net: nn.Module | None) -> Callable[[int], float]:
    """Estimated working bytes of one forward pass of ``net`` on a tile of ``p`` pixels (module docstring)."""
    kind = type(net).__name__ if net is not None else ""
    if kind == "UNet":
        first = net.conv_in.out_channels
        heads = max((int(getattr(m, "heads", 0)) for m in net.modules() if type(m).__name__ == "Attention"),
                    default=0)
        shrink = 4 ** (int(net.levels) - 1)
        return lambda p: UNET_BYTES_PER_CHANNEL * first * p + 4.0 * heads * (p / shrink) ** 2
    per_pixel = BYTES_PER_PIXEL.get(kind, DEFAULT_BYTES_PER_PIXEL)
    return lambda p: float(per_pixel * p)


def net_multiple(net: nn.Module | None) -> int:
    """Side multiple the net pads its input to (UNet: 2^(levels - 1); MWCNN, PRIDNet: their ``multiple``)."""
    if net is None:
        return 1
    if type(net).__name__ == "UNet":
        return 2 ** (int(net.levels) - 1)
    return int(getattr(net, "multiple", 1))


def auto_tile(cost: Callable[[int], float], budget: int | None, multiple: int = 1) -> int:
    """Largest side in [AUTO_MIN, AUTO_MAX], a multiple of AUTO_STEP (and of ``multiple``), with cost(side^2) <=
    budget; AUTO_MIN when none fits, AUTO_FALLBACK without a budget."""
    step = math.lcm(AUTO_STEP, multiple)
    if budget is None:
        return max(step, AUTO_FALLBACK // step * step)
    side = AUTO_MAX // step * step
    while side > AUTO_MIN and cost(side * side) > budget:
        side -= step
    return max(side, math.ceil(AUTO_MIN / step) * step)


def global_sigma(y: torch.Tensor) -> float:
    """One noise std for one image (1 x C x H x W) with ``estimate.estimate_sigma``: on the whole image up to
    ESTIMATE_PIXELS pixels; above that, the median of the estimates on a 3 x 3 grid of 1024 x 1024 crops spread over
    the image (the PCA estimator's patch matrix of a whole 24-megapixel photo would take ~2 GB)."""
    from .estimate import estimate_sigma
    h, w = y.shape[-2:]
    if h * w <= ESTIMATE_PIXELS:
        return float(estimate_sigma(y.detach().float().cpu()))
    ch, cw = min(ESTIMATE_CROP, h), min(ESTIMATE_CROP, w)
    rows = sorted({round(k * (h - ch) / (ESTIMATE_GRID - 1)) for k in range(ESTIMATE_GRID)})
    cols = sorted({round(k * (w - cw) / (ESTIMATE_GRID - 1)) for k in range(ESTIMATE_GRID)})
    values = [estimate_sigma(y[..., r:r + ch, c:c + cw].detach().float().cpu()) for r in rows for c in cols]
    return float(np.median(values))


def blind_policy(method: Any) -> Blind:
    """What ``sigma=None`` needs under tiling (module docstring), from the method's type; "pass" when unknown.
    Only modules already imported are consulted: a method of a module never imported cannot be an instance."""
    table = (("diffdenoise.diffusion.cddpm", ("CDDPMDenoiser",), "sigma"),
             ("diffdenoise.diffusion.ddpm_match", ("MatchedStepDenoiser",), "sigma"),
             ("diffdenoise.diffusion.svnr", ("SVNR", "SVNRByChannels"), "map"))
    for module, names, policy in table:
        mod = sys.modules.get(module)
        if mod is not None and isinstance(method, tuple(getattr(mod, n) for n in names)):
            return policy  # type: ignore[return-value]
    return "pass"


def inner_net(method: Any, channels: int) -> tuple[nn.Module | None, int]:
    """The nn.Module that ``method`` runs on a ``channels``-channel image, and how many rows one image becomes (a
    colour image on a gray net runs as 3 rows).  Methods choosing a model by channel count (``model_for``) load it
    here, as their first call would."""
    inner = method.model_for(channels) if hasattr(method, "model_for") else method
    nets = getattr(inner, "nets", None)
    if isinstance(nets, dict) and nets:                          # CNNDenoiser: {channels: net}
        net = nets.get(channels) or next(iter(nets.values()))
    else:
        net = getattr(inner, "net", None)
    if not isinstance(net, nn.Module):
        return None, 1
    net_channels = getattr(net, "in_channels", None)
    if net_channels is None:
        conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
        net_channels = conv.in_channels if conv is not None else channels
    return net, (channels if int(net_channels) == 1 and channels > 1 else 1)


class Tiled(Wrapper):
    """A denoiser running ``method`` over overlapping tiles (module docstring).

    Args:
        method: any denoiser with the common call.
        tile: tile side in pixels (rounded up to the net's multiple), ``"auto"`` (from memory, per call) or
            None / 0 (never tile: a plain pass-through).
        overlap: least overlap between neighbouring tiles, pixels; its outer quarter on each side gets no weight.
        batch: tiles per call of ``method``; ``"auto"``: 1 on the CPU (no speed to gain, only memory), as many as
            the memory budget allows (at most 16) on CUDA.
        blind: what ``sigma=None`` means for ``method`` ("pass", "sigma", "map"); None infers it from the type.
    """

    def __init__(self, method: Callable[..., torch.Tensor], tile: TileArg = "auto", overlap: int = 32, *,
                 batch: int | Literal["auto"] = "auto", blind: Blind | None = None):
        if tile is not None and tile != "auto" and (not isinstance(tile, int) or tile < 0):
            raise DiffDenoiseError(f"tile must be 'auto', a positive number of pixels or 0/None, got {tile!r}")
        if overlap < 0:
            raise DiffDenoiseError(f"overlap must be >= 0, got {overlap}")
        if batch != "auto" and (not isinstance(batch, int) or batch < 1):
            raise DiffDenoiseError(f"batch must be 'auto' or >= 1, got {batch!r}")
        if blind not in (None, "pass", "sigma", "map"):
            raise DiffDenoiseError(f"blind must be pass, sigma or map, got {blind!r}")
        self.method, self.tile, self.overlap, self.batch = method, tile or None, int(overlap), batch
        self.blind: Blind = blind or blind_policy(method)
        self.last_uncertainty: torch.Tensor | None = None
        self.last_tile: tuple[int, int] | None = None                 # tile shape of the last call (info)

    def __repr__(self) -> str:
        return f"Tiled({self.method!r}, tile={self.tile!r}, overlap={self.overlap})"

    def plan(self, y: torch.Tensor) -> tuple[int, int, int]:
        """(tile side, network multiple, tiles per call) for ``y``: what a call on it would use."""
        net, rows = inner_net(self.method, y.shape[1])
        multiple = net_multiple(net)
        param = next(net.parameters(), None) if net is not None else None
        device = param.device if param is not None else y.device
        cost = pixel_cost(net)
        budget = memory_budget(device)
        if self.tile == "auto":
            side = auto_tile(lambda p: rows * cost(p), budget, multiple)
        else:
            side = max(multiple, math.ceil(int(self.tile) / multiple) * multiple)
        if self.batch != "auto":
            batch = int(self.batch)
        elif device.type == "cuda" and budget is not None:
            batch = max(1, min(MAX_BATCH, int(budget // max(rows * cost(side * side), 1.0))))
        else:
            batch = 1
        return side, multiple, batch

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None, *,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: Callable[[float], None] | None = None) -> torch.Tensor:
        if y.ndim != 4:
            raise DiffDenoiseError(f"expected an N x C x H x W tensor, got shape {tuple(y.shape)}")
        n, c, h, w = y.shape
        if self.tile is None:
            side, multiple, batch = max(h, w), 1, 1
        else:
            side, multiple, batch = self.plan(y)
        th, tw = min(side, h), min(side, w)
        self.last_tile = (th, tw)
        if (th, tw) == (h, w):                                         # fits: straight through
            x_hat = self.method(y, sigma, generator=generator, progress=progress)
            self.last_uncertainty = getattr(self.method, "last_uncertainty", None)
            return x_hat
        rows, cols = tile_starts(h, th, self.overlap, multiple), tile_starts(w, tw, self.overlap, multiple)
        wy, sy = axis_weights(h, rows, th)
        wx, sx = axis_weights(w, cols, tw)
        grid = [(i, j) for i in range(len(rows)) for j in range(len(cols))]       # row-major: tile index k
        total = n * len(grid)
        out = torch.zeros(n, c, h, w, dtype=torch.float32, device=y.device)
        uncertainty: torch.Tensor | None = None
        done = 0
        for b in range(n):
            s_img = self._image_sigma(y, sigma, b)
            seeds = _base_seed(generator, b)
            for first in range(0, len(grid), batch):
                part = grid[first:first + batch]
                spots = [(rows[i], cols[j]) for i, j in part]
                y_t = torch.cat([y[b:b + 1, :, r:r + th, q:q + tw] for r, q in spots])
                s_t = s_img if not torch.is_tensor(s_img) else \
                    torch.cat([s_img[:, :, r:r + th, q:q + tw] for r, q in spots])
                gens = None
                if seeds is not None:
                    base, device = seeds
                    gens = [torch.Generator(device).manual_seed(base + first + k) for k in range(len(part))]
                    gens = gens[0] if len(gens) == 1 else gens

                def report(f: float, start: int = done, m: int = len(part)) -> None:
                    if progress is not None:
                        progress((start + min(max(f, 0.0), 1.0) * m) / total)
                x_t = self.method(y_t, s_t, generator=gens, progress=report)
                u_t = getattr(self.method, "last_uncertainty", None)
                if u_t is not None and uncertainty is None:
                    uncertainty = torch.zeros_like(out)
                for k, ((i, j), (r, q)) in enumerate(zip(part, spots)):
                    weight = (wy[i][:, None] * wx[j][None, :]).to(out.device)
                    out[b, :, r:r + th, q:q + tw] += x_t[k].to(out.device, torch.float32) * weight
                    if u_t is not None and uncertainty is not None:
                        uncertainty[b, :, r:r + th, q:q + tw] += u_t[k].to(out.device, torch.float32) * weight
                done += len(part)
                if progress is not None:
                    progress(done / total)
        norm = (sy[:, None] * sx[None, :]).to(out.device)
        out /= norm
        if uncertainty is not None:
            uncertainty /= norm
        self.last_uncertainty = uncertainty
        return out

    def _image_sigma(self, y: torch.Tensor, sigma: float | torch.Tensor | None, b: int
                     ) -> float | torch.Tensor | None:
        """Image b's sigma: a float, a 1 x (1|C) x H x W map to cut, or None (blind, passed on)."""
        n, _, h, w = y.shape
        if sigma is None:
            if self.blind == "sigma":
                return global_sigma(y[b:b + 1])
            if self.blind == "map":
                from .estimate import estimate_noise_map
                return estimate_noise_map(y[b:b + 1])
            return None
        if not torch.is_tensor(sigma):
            return float(sigma)
        if sigma.numel() == 1:
            return float(sigma.reshape(()))
        if sigma.dim() == 1 and sigma.shape[0] == n:
            return float(sigma[b])
        if sigma.dim() == 4 and sigma.shape[0] == n and sigma.shape[-2:] == (1, 1):
            return float(sigma[b].double().pow(2).mean().sqrt())
        if sigma.dim() == 4 and sigma.shape[0] == n and tuple(sigma.shape[-2:]) == (h, w):
            return sigma[b:b + 1]
        raise DiffDenoiseError(f"sigma map of shape {tuple(sigma.shape)} does not fit the image {tuple(y.shape)} "
                               f"(expected a float, N values, N x 1 x H x W or N x C x H x W)")


def _base_seed(generator: torch.Generator | Sequence[torch.Generator] | None, b: int
               ) -> tuple[int, torch.device] | None:
    """Image b's base seed, drawn once from its generator (the shared one, or the b-th of a sequence)."""
    if generator is None:
        return None
    g = generator if isinstance(generator, torch.Generator) else generator[b]
    return int(torch.randint(0, 2 ** 62, (1,), generator=g, device=g.device)), g.device

