"""Realistic sRGB camera noise by unprocessing (Brooks et al. 2019, "Unprocessing Images for Learned Raw
Denoising", Sec. 3; the same idea as CBDNet's noise model, Guo et al. 2019, Eq. 3-5).

A clean sRGB image is taken back to a linear raw mosaic, noised there with the heteroscedastic shot + read model,
and processed forward again by a simple camera pipeline (the ISP below):

    unprocess:  untone -> ungamma -> inverse CCM -> inverse white balance -> RGGB mosaic     = raw
    noise:      noisy = raw + sqrt(shot * raw + read) n
    ISP:        white balance -> clip -> bilinear demosaic -> CCM -> clip -> gamma -> tone

What is returned (``mode``):

- ``noise`` (default): only what the noise changes, ``y = clip(x + ISP(noisy) - ISP(raw), 0, 1)``, the two ISP runs
  with the same camera.  Zero noise gives ``y == x`` exactly, while the added noise keeps everything the pipeline
  does to it: spatial correlation (demosaic), colour mixing (CCM), signal dependence (shot noise, gains, gamma and
  tone curve, clipping at black and white).  The re-mosaicked clean image is never shown: its bilinear demosaic
  blurs and aliases sharp detail (26-29 dB against ``x`` on sharp photos), which a denoiser trained on the pairs
  would learn to undo (sharpen), a wrong habit on real photographs.
- ``full``: ``ISP(noisy)`` itself, Brooks' output: the degradation includes the demosaicking error of the clean
  image as well.

Optional JPEG is applied last, to ``y``, in both modes: it is the one part of the default degradation that alters
the content of ``x`` (block artefacts and lost detail even without noise), as a camera's compression does.

Random camera per image (Brooks Sec. 3.2, 4.1): ``log shot ~ U(log 1e-4, log 0.012)``,
``log read = 2.18 log shot + 1.20 + N(0, 0.26^2)``; red gain ~ U(1.9, 2.4), blue gain ~ U(1.5, 1.9); the colour
matrix a random convex mix of a few camera matrices with rows normalised to sum to 1 (so gray stays gray).

Batching: every image's random numbers are drawn first from its own generator, the same draws whatever the options
(9 uniforms, 1 normal, then the H x W raw noise), so image ``i`` with a generator seeded ``s`` gets the same camera
and noise in any batch.  The pipeline then runs once on the whole batch with the per-image parameters as N x ...
tensors.  It is written with element-wise arithmetic only (no convolution or matrix-multiply routine, whose
algorithm may change with the batch size) and, on CPU, applies the transcendental transfer curves image by image
(:func:`_per_image`), so each image's output is bit-for-bit what it is alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from .base import (GeneratorArg, Noisy, NoiseModel, Range, check_image, choice, flag, number,
                   per_image_generators)
from .colour import CURVES, from_linear, inverse_smoothstep, smoothstep, to_linear

# Camera-to-sRGB colour correction matrices (rows sum to 1) of the saturation-boosting kind raw converters apply:
# representative values written for this project, not the calibration of any particular camera.
_CAM2RGB = torch.tensor([
    [[1.75, -0.62, -0.13], [-0.20, 1.58, -0.38], [0.02, -0.55, 1.53]],
    [[1.92, -0.86, -0.06], [-0.25, 1.46, -0.21], [0.05, -0.42, 1.37]],
    [[1.60, -0.48, -0.12], [-0.16, 1.70, -0.54], [-0.01, -0.68, 1.69]],
    [[1.84, -0.70, -0.14], [-0.31, 1.62, -0.31], [0.04, -0.61, 1.57]],
], dtype=torch.float64)
_RGB2CAM = torch.linalg.inv(_CAM2RGB)

_RED_GAIN = (1.9, 2.4)
_BLUE_GAIN = (1.5, 1.9)
_LOG_SHOT = (math.log(1e-4), math.log(0.012))
_N_UNIFORMS = 9            # per image: shot, read, 4 colour weights, red gain, blue gain, JPEG quality

# Bilinear demosaicking (normalised convolution: divided by the same filter applied to the site mask).  Both kernels
# have centre weight 1: red/blue [1/2, 1, 1/2] x [1/2, 1, 1/2] (separable), green 1/4 on the four edge neighbours.
# Squared (for variances) they keep their shape with 1/4 and 1/16.
_A_RB, _A_G = 0.5, 0.25


def bayer_masks(h: int, w: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                ) -> torch.Tensor:
    """1 x 3 x H x W indicator of the R, G, B sites of an RGGB mosaic (R at even row, even column)."""
    i = torch.arange(h, device=device)[:, None] % 2
    j = torch.arange(w, device=device)[None, :] % 2
    r = (i == 0) & (j == 0)
    b = (i == 1) & (j == 1)
    g = ~(r | b)
    return torch.stack([r, g, b])[None].to(dtype)


def mosaic(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> N x 1 x H x W RGGB raw mosaic."""
    return (rgb * bayer_masks(*rgb.shape[2:], rgb.device, rgb.dtype)).sum(1, keepdim=True)


def _filter3(t: torch.Tensor, a: float, cross: bool) -> torch.Tensor:
    """Zero-padded 3 x 3 filter of every channel with centre weight 1: ``cross``, weight ``a`` on the four edge
    neighbours (0 on the corners); else the separable ``[a, 1, a] x [a, 1, a]``.  Fixed-order element-wise sums of
    shifted copies, so an image's result does not depend on its batch (a convolution routine may change algorithm
    with the batch size)."""
    p = F.pad(t, (1, 1, 1, 1))
    if cross:
        return t + (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) * a
    rows = p[..., 1:-1] + (p[..., :-2] + p[..., 2:]) * a                   # along W: (H + 2) x W
    return rows[..., 1:-1, :] + (rows[..., :-2, :] + rows[..., 2:, :]) * a


def _demosaic_conv(raw: torch.Tensor, power: int) -> torch.Tensor:
    masks = bayer_masks(*raw.shape[2:], raw.device, raw.dtype)
    m_rb, m_g = masks[:, 0::2], masks[:, 1:2]
    num_rb = _filter3(raw * m_rb, _A_RB ** power, cross=False)
    num_g = _filter3(raw * m_g, _A_G ** power, cross=True)
    den_rb, den_g = _filter3(m_rb, _A_RB, cross=False), _filter3(m_g, _A_G, cross=True)
    if power == 2:
        den_rb, den_g = den_rb * den_rb, den_g * den_g
    rb, g = num_rb / den_rb, num_g / den_g
    return torch.cat([rb[:, :1], g, rb[:, 1:]], 1)


def demosaic(raw: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaicking of an RGGB mosaic, N x 1 x H x W -> N x 3 x H x W (exact at image borders too)."""
    return _demosaic_conv(raw, 1)


def demosaic_variance(var: torch.Tensor) -> torch.Tensor:
    """Per-pixel variance after :func:`demosaic` of a mosaic of independent samples with variances ``var``: the
    same weights, squared."""
    return _demosaic_conv(var, 2)


def _apply_matrix(m: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """``out[:, i] = sum_j m[:, i, j] img[:, j]`` for a 3 x 3 matrix or one per image (N x 3 x 3); spelled out as
    products and sums in a fixed order rather than a matrix-multiply routine (see :func:`_filter3`)."""
    m = m.to(img.device, img.dtype)
    if m.dim() == 2:
        m = m.expand(img.shape[0], 3, 3)
    m = m[:, :, :, None, None]
    return torch.stack([m[:, i, 0] * img[:, 0] + m[:, i, 1] * img[:, 1] + m[:, i, 2] * img[:, 2]
                        for i in range(3)], 1)


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the 3 channels, N x 1 x H x W, in a fixed order."""
    return t[:, 0:1] + t[:, 1:2] + t[:, 2:3]


def _channel_mean(t: torch.Tensor) -> torch.Tensor:
    return _channel_sum(t) / 3


def _per_image(f: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor) -> torch.Tensor:
    """``f(t)`` for an element-wise ``f``, image by image on CPU.

    PyTorch's CPU kernels compute ``pow`` (and other transcendental functions) with SIMD code on full vector blocks
    and scalar code on the leftover elements of each block of work; the two differ in the last bit, and where the
    blocks fall depends on the batch size.  Calling ``f`` on each image alone gives every image the layout of a
    batch of one.  Other devices compute every element with the same code: one call."""
    if t.device.type != "cpu" or t.shape[0] == 1:
        return f(t)
    return torch.cat([f(t[i:i + 1]) for i in range(t.shape[0])])


def _inverse3(m: torch.Tensor) -> torch.Tensor:
    """Inverse of each 3 x 3 matrix of ``m`` (... x 3 x 3): column j is the cross product of the other two rows
    over the determinant.  Element-wise arithmetic, like the rest of the batched pipeline."""
    def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)
    r0, r1, r2 = m[..., 0, :], m[..., 1, :], m[..., 2, :]
    c0 = cross(r1, r2)
    det = r0[..., 0] * c0[..., 0] + r0[..., 1] * c0[..., 1] + r0[..., 2] * c0[..., 2]
    return torch.stack([c0, cross(r2, r0), cross(r0, r1)], -1) / det[..., None, None]


class _Cameras(NamedTuple):
    """The per-image camera of a batch: shot, read (N), rgb2cam, cam2rgb (N x 3 x 3, float64), white-balance gains
    (N x 3, float64), JPEG quality (N ints)."""
    shot: torch.Tensor
    read: torch.Tensor
    rgb2cam: torch.Tensor
    cam2rgb: torch.Tensor
    gains: torch.Tensor
    quality: list[int]


def _pick(value: float | Range | None, u: float, prior: Callable[[], float]) -> float:
    """A parameter for one image: a fixed value, a :class:`Range` (uniform draw ``u``) or ``None`` (the prior)."""
    if isinstance(value, Range):
        return value.lo + (value.hi - value.lo) * u
    return prior() if value is None else float(value)


@dataclass(frozen=True)
class Camera(NoiseModel):
    """Realistic in-camera sRGB noise by unprocessing (Brooks et al. 2019; module docstring has the pipeline).

    Parameters (spec keywords, all optional: ``camera``, ``camera:jpeg=true``, ``camera:shot=0.002,read=1e-5``):
    ``shot``, ``read``: the raw variance coefficients, ``var = shot * raw + read`` on the linear [0, 1] raw scale
    (no 8-bit units); ``none`` draws them from Brooks' prior.  ``colour``: ``random`` mixes a random camera matrix and
    white-balance gains per image, ``mean`` uses the average camera (equal mix, gains 2.15 and 1.7).  ``gamma``:
    ``2.2`` (Brooks) or ``srgb``.  ``highlights``: Brooks' highlight-preserving inverse gains (bright pixels are
    un-white-balanced less, so they saturate like a real sensor).  ``jpeg``: compress the output with OpenCV at a
    ``quality`` drawn per image (default 60..100).  ``mode``: ``noise`` (default) adds to ``x`` only the change the
    noise makes to the pipeline's output, so that zero noise returns ``x``; ``full`` returns the pipeline's output
    of the noisy raw, demosaicking error of the clean image included (module docstring).

    The output is a display image, clipped to [0, 1] like a camera's.  Gray input is replicated to RGB, processed,
    and averaged back to one channel.  JPEG, when on, is applied to the final ``y`` and is the one step that changes
    the content of ``x`` in ``noise`` mode.

    ``sigma_map`` (approximate) is the std of the pipeline's noise, ``ISP(noisy) - ISP(raw)``, which in ``noise``
    mode is ``y - x``.  The raw std is carried exactly through the linear steps (gains, bilinear demosaic with
    squared weights, CCM with squared entries: the colour planes come from disjoint, independent raw sites), then
    through the non-linear clip + gamma + tone curve ``g`` by a secant over one std around the clean pipeline value
    ``v``, ``(g(v + s) - g(v - s)) / 2``, which stays finite near black and saturates at white where a derivative
    would not.  Ignored: the clip of the noisy raw before demosaicking, the final clip of ``x + noise`` in ``noise``
    mode, and JPEG (which removes some high-frequency noise).  In ``full`` mode ``y - x`` also holds the deterministic
    demosaicking error, which is not noise and not in the map.  ``sigma_map(x)`` is available only for a fixed
    camera (``shot`` and ``read`` numbers, ``colour=mean``); ``draw`` always returns it.
    """
    name = "camera"
    example = "camera:jpeg=true"
    map_ignores = ("quality",)                  # JPEG is not in the map (class docstring)
    shot: float | Range | None = number(None, lo=0.0, optional=True)
    read: float | Range | None = number(None, lo=0.0, optional=True)
    colour: str = choice("random", ("random", "mean"))
    gamma: str = choice("2.2", CURVES)
    highlights: bool = flag(True)
    jpeg: bool = flag(False)
    quality: float | Range = number(Range(60.0, 100.0), lo=1.0, hi=100.0)
    mode: str = choice("noise", ("noise", "full"))

    @property
    def random_map(self) -> bool:
        return super().random_map or self.colour == "random" or self.shot is None or self.read is None

    # -- per-image parameters --------------------------------------------------------------------------------
    def _cameras(self, draws: Sequence[Sequence[float]]) -> _Cameras:
        """The camera of each image from its draws: ``_N_UNIFORMS`` uniforms then one standard normal (used or not,
        depending on the options).  Scalars in Python, matrices in float64 on the CPU."""
        shots, reads, weights, gains, quality = [], [], [], [], []
        for d in draws:
            shot = _pick(self.shot, d[0], lambda: math.exp(_LOG_SHOT[0] + (_LOG_SHOT[1] - _LOG_SHOT[0]) * d[0]))
            # Brooks' read prior follows the shot level (log-linear); shot = 0 means a noiseless sensor.
            read = _pick(self.read, d[1], lambda: math.exp(2.18 * math.log(shot) + 1.20 + 0.26 * d[_N_UNIFORMS])
                         if shot > 0 else 0.0)
            if self.colour == "mean":
                weights.append([0.25] * 4)
                gains.append([sum(_RED_GAIN) / 2, 1.0, sum(_BLUE_GAIN) / 2])
            else:
                weights.append([1e-8 + (1.0 - 1e-8) * u for u in d[2:6]])
                gains.append([_RED_GAIN[0] + (_RED_GAIN[1] - _RED_GAIN[0]) * d[6], 1.0,
                              _BLUE_GAIN[0] + (_BLUE_GAIN[1] - _BLUE_GAIN[0]) * d[7]])
            shots.append(shot)
            reads.append(read)
            quality.append(int(round(_pick(self.quality, d[8], lambda: 0.0))))
        w = torch.tensor(weights, dtype=torch.float64)
        w = w / (w[:, 0:1] + w[:, 1:2] + w[:, 2:3] + w[:, 3:4])
        rgb2cam = w[:, 0, None, None] * _RGB2CAM[0]
        for k in range(1, len(_RGB2CAM)):
            rgb2cam = rgb2cam + w[:, k, None, None] * _RGB2CAM[k]
        rgb2cam = rgb2cam / (rgb2cam[:, :, 0:1] + rgb2cam[:, :, 1:2] + rgb2cam[:, :, 2:3])
        return _Cameras(torch.tensor(shots, dtype=torch.float64), torch.tensor(reads, dtype=torch.float64),
                        rgb2cam, _inverse3(rgb2cam), torch.tensor(gains, dtype=torch.float64), quality)

    # -- the pipeline, on a batch ----------------------------------------------------------------------------
    def _unprocess(self, x3: torch.Tensor, rgb2cam: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """sRGB N x 3 x H x W -> clean linear raw mosaic N x 1 x H x W (Brooks Sec. 3.1, inverted in order)."""
        lin = _per_image(lambda t: to_linear(inverse_smoothstep(t), self.gamma), x3).clamp(min=0)
        cam = _apply_matrix(rgb2cam, lin)
        inv_gains = (1.0 / gains).to(x3.device, x3.dtype)[:, :, None, None]
        if self.highlights:
            # Blend the inverse gain towards 1 for pixels near saturation (weight 0 below 0.9, 1 at 1).
            bright = ((_channel_mean(cam) - 0.9).clamp(min=0) / 0.1).clamp(max=1)
            inv_gains = inv_gains + bright * bright * (1 - inv_gains)
        return mosaic(cam * inv_gains)

    def _develop(self, raw: torch.Tensor, gain_sites: torch.Tensor, cam2rgb: torch.Tensor) -> torch.Tensor:
        """The linear part of the ISP: white balance, clip, demosaic, CCM (N x 3 x H x W, before the tone curve)."""
        return _apply_matrix(cam2rgb, demosaic((raw * gain_sites).clamp(0.0, 1.0)))

    def _tone(self, *lins: torch.Tensor) -> list[torch.Tensor]:
        """Clip, gamma and tone curve of each batch in ``lins``: one call on the concatenation off the CPU (fewer
        kernel launches), batch by batch on the CPU (which goes image by image anyway, :func:`_per_image`)."""
        def tone(t: torch.Tensor) -> torch.Tensor:
            return _per_image(lambda u: smoothstep(from_linear(u.clamp(0.0, 1.0), self.gamma)), t)
        if lins[0].device.type == "cpu" or len(lins) == 1:
            return [tone(t) for t in lins]
        return list(tone(torch.cat(lins)).chunk(len(lins)))

    def _run(self, x: torch.Tensor, cams: _Cameras, noise: torch.Tensor | None
             ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(y, sigma_map)`` for the batch ``x`` with one camera per image; ``noise`` N x 1 x H x W standard normal
        raw noise, or ``None`` for the map alone."""
        channels = x.shape[1]
        x3 = x.expand(-1, 3, -1, -1) if channels == 1 else x
        dev, dt = x.device, x.dtype
        cam2rgb = cams.cam2rgb.to(dev, dt)
        shot = cams.shot.to(dev, dt)[:, None, None, None]
        read = cams.read.to(dev, dt)[:, None, None, None]
        raw = self._unprocess(x3, cams.rgb2cam, cams.gains)
        gain_sites = mosaic(cams.gains.to(dev, dt)[:, :, None, None].expand_as(x3))
        var_raw = shot * raw.clamp(min=0) + read
        v = self._develop(raw, gain_sites, cam2rgb)
        # Propagated std (class docstring): exact through the linear steps, secant through the tone curve.
        var_k = demosaic_variance(var_raw * (gain_sites * gain_sites))
        s = _apply_matrix(cam2rgb * cam2rgb, var_k).clamp(min=0).sqrt()
        if noise is None:
            tone_hi, tone_lo = self._tone(v + s, v - s)
        else:
            noisy = raw + var_raw.sqrt() * noise
            v_noisy = self._develop(noisy, gain_sites, cam2rgb)
            out_noisy, out_clean, tone_hi, tone_lo = self._tone(v_noisy, v, v + s, v - s)
        half_rise = (tone_hi - tone_lo) / 2
        if channels == 3:
            sigma = half_rise
        else:
            slope = torch.where(s > 0, half_rise / s.clamp(min=1e-12), torch.zeros_like(s))
            # Gray output = mean over c of g_c(sum_k M_ck lin_k): linear coefficient of lin_k is mean_c slope_c M_ck.
            coef = _apply_matrix(cam2rgb.transpose(1, 2), slope) / 3
            sigma = _channel_sum(coef * coef * var_k).sqrt()
        if noise is None:
            return None, sigma
        if self.mode == "full":
            y = out_noisy if channels == 3 else _channel_mean(out_noisy)
        else:
            diff = out_noisy - out_clean
            y = (x + (diff if channels == 3 else _channel_mean(diff))).clamp(0.0, 1.0)
        if self.jpeg:
            y = jpeg_roundtrip(y, cams.quality)
        return y, sigma

    # -- the NoiseModel interface ----------------------------------------------------------------------------
    def draw(self, x: torch.Tensor, generator: GeneratorArg = None) -> Noisy:
        """One camera and raw noise field per image, drawn from that image's generator (or, for one shared
        generator, image after image in batch order); then the whole batch through the pipeline at once."""
        x = check_image(x)
        n, _, h, w = x.shape
        draws, fields = [], []
        for g in per_image_generators(generator, n):
            dev = g.device if g is not None else x.device
            draws.append(torch.cat([torch.rand(_N_UNIFORMS, generator=g, device=dev),
                                    torch.randn(1, generator=g, device=dev)]))
            fields.append(torch.randn(h, w, generator=g, device=dev))
        cams = self._cameras(torch.stack(draws).tolist())       # the batch's one host read-back
        noise = torch.stack(fields)[:, None].to(x.device, x.dtype)
        y, sigma = self._run(x, cams, noise)
        return Noisy(y, sigma)

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        # A fixed camera (random_map is False) uses none of the draws.
        return self._run(x, self._cameras([[0.5] * (_N_UNIFORMS + 1)] * x.shape[0]), None)[1]


def jpeg_roundtrip(y: torch.Tensor, quality: int | Sequence[int]) -> torch.Tensor:
    """Encode and decode each image as 8-bit JPEG at ``quality`` (one for all, or one per image; OpenCV, imported
    here only)."""
    import cv2
    import numpy as np

    qualities = [int(quality)] * y.shape[0] if isinstance(quality, (int, float)) else [int(q) for q in quality]
    out = []
    for img, q in zip(y, qualities):
        arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if arr.shape[2] == 3:
            arr = arr[:, :, ::-1]                                  # OpenCV is BGR
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr), [int(cv2.IMWRITE_JPEG_QUALITY), q])
        if not ok:
            raise RuntimeError("OpenCV could not encode the JPEG")
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        dec = dec[:, :, None] if dec.ndim == 2 else dec[:, :, ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1))
    return (torch.stack(out).to(y.device, y.dtype)) / 255
