"""The one diffusion backbone: a time-conditioned UNet whose time may be a scalar or a per-pixel map.

Architecture after Ho et al. 2020 (DDPM, Appendix B) and Nichol & Dhariwal 2021: residual blocks with GroupNorm and
SiLU, stride-2 convolutions down, nearest-neighbour upsampling plus convolution up, skip connections between the
two paths, multi-head self-attention at the lowest resolution only (for the larger presets).

Time conditioning is computed PER PIXEL so that one network serves both the scalar-time methods (DDPM, DDIM,
conditional DDPM, SPEC 3.2-3.5) and the per-pixel time maps of SVNR (Pearl et al. 2023, SPEC 3.6):

    t            (N,) or (N, 1, H, W), the method's continuous time normalised to [0, 1]
    features     sinusoidal features of 1000 t (Vaswani et al. 2017), evaluated at each pixel
    emb          MLP of the features, written as 1x1 convolutions -> an N x D x h x w map (h = w = 1 for scalar t)
    emb_l        emb average-pooled to the resolution of level l (a 1x1 map is used as is: it broadcasts)
    ResBlock     h <- GroupNorm(h) * (1 + scale) + shift, with (scale, shift) = 1x1 conv of SiLU(emb_l) (FiLM)

A scalar t is therefore exactly the 1 x 1 case of a time map, and a constant map gives the same output as the
scalar (up to float summation order). A class label (``num_classes`` > 0) adds a learned embedding to ``emb``;
label ``num_classes`` is the null label used by classifier-free guidance (Ho & Salimans 2022) and is what ``None``
means. Condition channels (``cond_channels`` > 0; e.g. the noisy image, a noise map, a mask) are concatenated to
``x_t`` at the input.

Any H x W is accepted: the input (and a per-pixel time map) is reflect-padded to a multiple of 2^(levels - 1) and
the output cropped back.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

PRESETS: dict[str, dict[str, Any]] = {
    # channels per level (downsamplings = len(channels) - 1); attn_levels: levels with self-attention, the lowest
    # only, where it is cheap. small has none: attention is quadratic in pixels and costly on CPU for large images.
    "tiny": dict(channels=(16, 32), num_res_blocks=1, attn_levels=(), head_channels=16, dropout=0.0),
    "small": dict(channels=(32, 64, 96, 128), num_res_blocks=1, attn_levels=(), head_channels=32, dropout=0.0),
    # base is sized by the shipping budget (all weights well under 100 MB in fp16): ~9.6M params, ~19 MB.
    "base": dict(channels=(64, 128, 128, 128), num_res_blocks=2, attn_levels=(3,), head_channels=64, dropout=0.0),
}


def _groups(channels: int) -> int:
    """Largest group count <= 32 that divides ``channels`` with at least 4 channels per group."""
    for g in (32, 16, 8, 4, 2, 1):
        if channels % g == 0 and channels // g >= 4:
            return g
    return 1


def timestep_features(t: torch.Tensor, dim: int, scale: float = 1000.0, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of ``scale * t`` per pixel: t (N, 1, h, w) -> (N, dim, h, w), float32.

    Feature k < dim/2 is cos(scale t w_k) and k >= dim/2 is sin(scale t w_k), w_k = max_period^(-k / (dim/2)).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    arg = (scale * t.float()) * freqs.view(1, half, 1, 1)
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, FiLM by the (pooled) embedding map, GroupNorm-SiLU-dropout-conv, plus a skip."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Conv2d(emb_dim, 2 * out_ch, 1)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb)).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over all positions (scaled_dot_product_attention: flash/efficient kernels)."""

    def __init__(self, channels: int, head_channels: int):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))       # (n, heads, hw, c/heads)
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(-1, -2).reshape(n, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """Time-conditioned UNet, ``forward(x_t, t, cond=None, label=None) -> (N, out_channels, H, W)``.

    Args:
        in_channels: channels of ``x_t`` (1 or 3).
        out_channels: channels predicted (eps, x0 or v; usually ``in_channels``).
        cond_channels: channels of ``cond``, concatenated to ``x_t`` at the input (0: no condition).
        size: preset, ``"tiny"`` (tests), ``"small"`` (CPU default) or ``"base"`` (GPU quality); see ``PRESETS``.
        num_classes: class-conditional when > 0; label ``num_classes`` is the null label (guidance).
        **overrides: any preset field (``channels``, ``num_res_blocks``, ``attn_levels``, ``head_channels``,
            ``dropout``) and ``emb_dim`` (default 4 x channels[0]) or ``time_features`` (default channels[0]).
    """

    def __init__(self, in_channels: int, out_channels: int, cond_channels: int = 0, size: str = "small",
                 num_classes: int = 0, **overrides: Any):
        super().__init__()
        if size not in PRESETS:
            raise ValueError(f"unknown UNet size {size!r}; valid: {', '.join(PRESETS)}")
        cfg = {**PRESETS[size], **overrides}
        unknown = set(cfg) - set(PRESETS["base"]) - {"emb_dim", "time_features"}
        if unknown:
            raise ValueError(f"unknown UNet option(s) {', '.join(sorted(unknown))}")
        channels: Sequence[int] = tuple(cfg["channels"])
        num_res_blocks = int(cfg["num_res_blocks"])
        attn_levels = set(cfg["attn_levels"])
        head_channels = int(cfg["head_channels"])
        dropout = float(cfg["dropout"])
        self.time_features = int(cfg.get("time_features", channels[0]))
        emb_dim = int(cfg.get("emb_dim", 4 * channels[0]))

        self.in_channels, self.out_channels, self.cond_channels = in_channels, out_channels, cond_channels
        self.num_classes = num_classes
        self.levels = len(channels)

        self.time_mlp = nn.Sequential(nn.Conv2d(self.time_features, emb_dim, 1), nn.SiLU(),
                                      nn.Conv2d(emb_dim, emb_dim, 1))
        self.label_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None

        self.conv_in = nn.Conv2d(in_channels + cond_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        skip_ch = [channels[0]]
        ch = channels[0]
        for level, out_ch in enumerate(channels):
            for _ in range(num_res_blocks):
                blocks = nn.ModuleList([ResBlock(ch, out_ch, emb_dim, dropout)])
                ch = out_ch
                if level in attn_levels:
                    blocks.append(Attention(ch, head_channels))
                self.down.append(blocks)
                skip_ch.append(ch)
            if level < self.levels - 1:
                self.down.append(nn.ModuleList([Downsample(ch)]))
                skip_ch.append(ch)

        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, dropout), Attention(ch, head_channels),
                                  ResBlock(ch, ch, emb_dim, dropout)])
        if self.levels - 1 not in attn_levels:
            self.mid = nn.ModuleList([self.mid[0], self.mid[2]])

        self.up = nn.ModuleList()
        for level in reversed(range(self.levels)):
            out_ch = channels[level]
            for i in range(num_res_blocks + 1):
                blocks = nn.ModuleList([ResBlock(ch + skip_ch.pop(), out_ch, emb_dim, dropout)])
                ch = out_ch
                if level in attn_levels:
                    blocks.append(Attention(ch, head_channels))
                if level > 0 and i == num_res_blocks:
                    blocks.append(Upsample(ch))
                self.up.append(blocks)

        self.norm_out = nn.GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def embed(self, t: torch.Tensor, n: int, label: torch.Tensor | None) -> torch.Tensor:
        """Embedding map (N, D, h, w) of a time ``t`` of shape (N,), (N, 1, h, w), () or (N, 1, 1, 1)."""
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() == 1:
            t = t.view(-1, 1, 1, 1)
        if t.dim() != 4 or t.shape[1] != 1:
            raise ValueError(f"t must have shape (N,) or (N, 1, H, W), got {tuple(t.shape)}")
        emb = self.time_mlp(timestep_features(t, self.time_features).to(self.conv_in.weight.dtype))
        if emb.shape[0] != n:
            emb = emb.expand(n, -1, -1, -1)
        if self.label_emb is not None:
            if label is None:
                label = torch.full((n,), self.num_classes, dtype=torch.long, device=emb.device)
            emb = emb + self.label_emb(label.to(emb.device).long()).view(n, -1, 1, 1)
        return emb

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> torch.Tensor:
        n, _, height, width = x_t.shape
        if not torch.is_tensor(t):
            t = torch.tensor(float(t), device=x_t.device)
        t = t.to(x_t.device)
        if self.cond_channels:
            if cond is None:
                cond = x_t.new_zeros(n, self.cond_channels, height, width)
            x_t = torch.cat([x_t, cond.to(x_t.dtype)], dim=1)
        elif cond is not None:
            raise ValueError("this UNet was built with cond_channels=0 but got a condition")

        multiple = 2 ** (self.levels - 1)
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        per_pixel = t.dim() == 4 and t.shape[-2:] != (1, 1)
        if per_pixel and tuple(t.shape[-2:]) != (height, width):
            raise ValueError(f"time map {tuple(t.shape[-2:])} does not match the image {(height, width)}")
        if pad_h or pad_w:
            x_t = _pad(x_t, pad_h, pad_w)
            if per_pixel:
                t = _pad(t.float(), pad_h, pad_w)

        emb = self.embed(t, n, label)
        pooled = [emb]                         # embedding per level; 1x1 maps broadcast at every level
        for _ in range(self.levels - 1):
            pooled.append(F.avg_pool2d(pooled[-1], 2) if pooled[-1].shape[-1] > 1 else pooled[-1])

        h = self.conv_in(x_t)
        skips = [h]
        level = 0
        for blocks in self.down:
            for block in blocks:
                if isinstance(block, ResBlock):
                    h = block(h, pooled[level])
                elif isinstance(block, Downsample):
                    h = block(h)
                    level += 1
                else:
                    h = block(h)
            skips.append(h)
        for block in self.mid:
            h = block(h, pooled[level]) if isinstance(block, ResBlock) else block(h)
        for blocks in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                if isinstance(block, ResBlock):
                    h = block(h, pooled[level])
                elif isinstance(block, Upsample):
                    h = block(h)
                    level -= 1
                else:
                    h = block(h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return out[..., :height, :width]


def _pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad bottom/right; reflect when the image is large enough, else replicate."""
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def fold_to_gray(state: dict[str, torch.Tensor], cond_channels: int = 0) -> dict[str, torch.Tensor]:
    """A colour (3 in / 3 out) UNet state as a gray (1 in / 1 out) one that computes the same function on gray input.

    Gray ``x`` replicated to RGB meets ``conv_in`` as ``sum_c W[:, c] x``, so the gray input weight is the sum over
    the RGB inputs (and over the RGB condition channels, when there are ``cond_channels`` = 3); averaging the RGB
    outputs back to gray is a mean over ``conv_out``'s rows.  So the folded net equals the colour net run on
    replicated gray and averaged back (what the methods do with gray input on a colour net): a gray model can start
    from a trained colour one.
    """
    w_in, w_out, b_out = state["conv_in.weight"], state["conv_out.weight"], state["conv_out.bias"]
    if w_out.shape[0] != 3 or w_in.shape[1] != 3 + cond_channels or cond_channels not in (0, 3):
        raise ValueError(f"not a 3-in/3-out UNet state (conv_in {tuple(w_in.shape)}, conv_out {tuple(w_out.shape)})")
    groups = [w_in[:, :3].sum(1, keepdim=True)] + ([w_in[:, 3:].sum(1, keepdim=True)] if cond_channels else [])
    return {**state, "conv_in.weight": torch.cat(groups, 1), "conv_out.weight": w_out.mean(0, keepdim=True),
            "conv_out.bias": b_out.mean(0, keepdim=True)}


def narrow_condition(state: dict[str, torch.Tensor], in_channels: int, cond_from: int, cond_to: int
                     ) -> dict[str, torch.Tensor]:
    """A conditional UNet state as one with fewer condition channels: ``cond_to`` of the seed's ``cond_from``.

    The first ``cond_to`` condition channels are kept and the rest dropped: the narrowed net computes what the seed
    computes with zeros in the dropped channels — for ``cddpm`` (condition ``[y, sigma map, flag]``) its blind
    condition ``[y, 0, 0]``.  With ``cond_to`` = 0 the condition's first ``in_channels`` weights are added to the
    input's: the seed fed its own input as ``y``, exact where a real-noise chain starts (``x_T = y``).  So the
    conditional Gaussian denoiser can seed a real-noise model with or without ``condition_on_y``.
    """
    w = state["conv_in.weight"]
    if w.shape[1] != in_channels + cond_from or not 0 <= cond_to <= cond_from or \
            (cond_to == 0 and cond_from < in_channels):
        raise ValueError(f"cannot narrow conv_in {tuple(w.shape)} from {in_channels}+{cond_from} to "
                         f"{in_channels}+{cond_to} input channels")
    if cond_to:
        w = w[:, :in_channels + cond_to]
    else:
        w = w[:, :in_channels] + w[:, in_channels:2 * in_channels]
    return {**state, "conv_in.weight": w.contiguous()}


def adapt_seed(state: dict[str, torch.Tensor], seed_kwargs: dict[str, Any], net: nn.Module
               ) -> tuple[dict[str, torch.Tensor], str]:
    """Another UNet's weights shaped for ``net`` where a function-preserving map exists: colour to gray
    (:func:`fold_to_gray`) or more condition channels to fewer (:func:`narrow_condition`); ``(state, what was done)``,
    the state unchanged with "" otherwise.  Raises ValueError when a map applies but the shapes do not fit it."""
    c_in, c_out, cond = seed_kwargs.get("in_channels"), seed_kwargs.get("out_channels"), \
        int(seed_kwargs.get("cond_channels", 0))
    net_in, net_out, net_cond = (getattr(net, a, None) for a in ("in_channels", "out_channels", "cond_channels"))
    if (c_in, c_out) == (3, 3) and (net_in, net_out) == (1, 1):
        return fold_to_gray(state, cond), "colour weights folded to gray (the same function on gray input)"
    if (c_in, c_out) == (net_in, net_out) and net_cond is not None and cond > net_cond:
        return (narrow_condition(state, int(net_in), cond, int(net_cond)),
                f"condition channels {cond} -> {net_cond} (nets.unet.narrow_condition)")
    return state, ""
