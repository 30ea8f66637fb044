"""Realistic sRGB camera noise by unprocessing (Brooks et al. 2019, "Unprocessing Images for Learned Raw
Denoising", Sec. 3; the same idea as CBDNet's noise model, Guo et al. 2019, Eq. 3-5).

A clean sRGB image is taken back to a linear raw mosaic, noised there with the heteroscedastic shot + read model,
and processed forward again by a simple camera pipeline:

    untone -> ungamma -> inverse CCM -> inverse white balance -> RGGB mosaic
    raw += sqrt(shot * raw + read) n
    white balance -> clip -> bilinear demosaic -> CCM -> clip -> gamma -> tone [-> JPEG]

Random camera per image (Brooks Sec. 3.2, 4.1): ``log shot ~ U(log 1e-4, log 0.012)``,
``log read = 2.18 log shot + 1.20 + N(0, 0.26^2)``; red gain ~ U(1.9, 2.4), blue gain ~ U(1.5, 1.9); the colour
matrix a random convex mix of a few camera matrices with rows normalised to sum to 1 (so gray stays gray).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Noisy, NoiseModel, Range, _Rng, choice, flag, number
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

# Bilinear demosaicking kernels (normalised convolution: divided by the same kernel applied to the site mask).
_K_RB = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4
_K_G = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4


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


def _demosaic_conv(raw: torch.Tensor, power: int) -> torch.Tensor:
    masks = bayer_masks(*raw.shape[2:], raw.device, raw.dtype)
    k = torch.stack([_K_RB, _K_G, _K_RB])[:, None].to(raw.device, raw.dtype)
    num = F.conv2d(raw * masks, k ** power, padding=1, groups=3)
    den = F.conv2d(masks.expand(raw.shape[0], 3, -1, -1), k, padding=1, groups=3)
    return num / den ** power


def demosaic(raw: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaicking of an RGGB mosaic, N x 1 x H x W -> N x 3 x H x W (exact at image borders too)."""
    return _demosaic_conv(raw, 1)


def demosaic_variance(var: torch.Tensor) -> torch.Tensor:
    """Per-pixel variance after :func:`demosaic` of a mosaic of independent samples with variances ``var``: the
    same weights, squared."""
    return _demosaic_conv(var, 2)


def _apply_matrix(m: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(img.device, img.dtype), img)


@dataclass(frozen=True)
class Camera(NoiseModel):
    """Realistic in-camera sRGB noise by unprocessing (Brooks et al. 2019; module docstring has the pipeline).

    Parameters (spec keywords, all optional: ``camera``, ``camera:jpeg=true``, ``camera:shot=0.002,read=1e-5``):
    ``shot``, ``read``: the raw variance coefficients, ``var = shot * raw + read`` on the linear [0, 1] raw scale
    (no 8-bit units); ``none`` draws them from Brooks' prior.  ``colour``: ``random`` mixes a random camera matrix and
    white-balance gains per image, ``mean`` uses the average camera (equal mix, gains 2.15 and 1.7).  ``gamma``:
    ``2.2`` (Brooks) or ``srgb``.  ``highlights``: Brooks' highlight-preserving inverse gains (bright pixels are
    un-white-balanced less, so they saturate like a real sensor).  ``jpeg``: compress the output with OpenCV at a
    ``quality`` drawn per image (default 60..100).

    The output is a display image, clipped to [0, 1] like a camera's.  Gray input is replicated to RGB, processed,
    and averaged back to one channel.

    ``sigma_map`` (approximate): the raw std is carried exactly through the linear steps (gains, bilinear demosaic
    with squared weights, CCM with squared entries: the colour planes come from disjoint, independent raw sites), then
    through the non-linear clip + gamma + tone curve ``g`` by a secant over one std, ``(g(v + s) - g(v - s)) / 2``,
    which stays finite near black and saturates at white where a derivative would not.  Ignored: the clip of the
    noisy raw before demosaicking and JPEG (which removes some high-frequency noise).  ``sigma_map(x)`` is
    available only for a fixed camera (``shot`` and ``read`` numbers, ``colour=mean``); ``draw`` always returns it.
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

    @property
    def random_map(self) -> bool:
        return super().random_map or self.colour == "random" or self.shot is None or self.read is None

    def _camera(self, rng: _Rng | None) -> tuple[float, float, torch.Tensor, torch.Tensor]:
        """Draw (or fix) shot, read, rgb->cam matrix and white-balance gains, in that order."""
        shot = self.shot if self.shot is not None else math.exp(rng.uniform(*_LOG_SHOT))
        read = self.read if self.read is not None else math.exp(2.18 * math.log(shot) + 1.20 + 0.26 * rng.normal())
        if self.colour == "mean":
            weights = torch.full((4,), 0.25, dtype=torch.float64)
            gains = torch.tensor([sum(_RED_GAIN) / 2, 1.0, sum(_BLUE_GAIN) / 2], dtype=torch.float64)
        else:
            weights = torch.tensor([rng.uniform(1e-8, 1.0) for _ in range(4)], dtype=torch.float64)
            weights = weights / weights.sum()
            gains = torch.tensor([rng.uniform(*_RED_GAIN), 1.0, rng.uniform(*_BLUE_GAIN)], dtype=torch.float64)
        rgb2cam = (weights[:, None, None] * _RGB2CAM).sum(0)
        rgb2cam = rgb2cam / rgb2cam.sum(1, keepdim=True)
        return shot, read, rgb2cam, gains

    def _unprocess(self, x: torch.Tensor, rgb2cam: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """sRGB N x 3 x H x W -> clean linear raw mosaic N x 1 x H x W (Brooks Sec. 3.1, inverted in order)."""
        lin = to_linear(inverse_smoothstep(x), self.gamma).clamp(min=0)
        cam = _apply_matrix(rgb2cam, lin)
        inv_gains = (1.0 / gains).to(x.device, x.dtype)[None, :, None, None]
        if self.highlights:
            # Blend the inverse gain towards 1 for pixels near saturation (weight 0 below 0.9, 1 at 1).
            bright = ((cam.mean(1, keepdim=True) - 0.9).clamp(min=0) / 0.1).clamp(max=1) ** 2
            inv_gains = inv_gains + bright * (1 - inv_gains)
        return mosaic(cam * inv_gains)

    def _tone(self, lin: torch.Tensor) -> torch.Tensor:
        return smoothstep(from_linear(lin.clamp(0.0, 1.0), self.gamma))

    def _process(self, raw: torch.Tensor, cam2rgb: torch.Tensor, gain_sites: torch.Tensor) -> torch.Tensor:
        return self._tone(_apply_matrix(cam2rgb, demosaic((raw * gain_sites).clamp(0.0, 1.0))))

    def _map(self, raw: torch.Tensor, shot: float, read: float, cam2rgb: torch.Tensor, gain_sites: torch.Tensor,
             channels: int) -> torch.Tensor:
        """Propagated std (class docstring): exact through the linear steps, secant through the tone curve."""
        var_k = demosaic_variance((shot * raw.clamp(min=0) + read) * gain_sites ** 2)
        v = _apply_matrix(cam2rgb, demosaic((raw * gain_sites).clamp(0.0, 1.0)))
        s = _apply_matrix(cam2rgb ** 2, var_k).clamp(min=0).sqrt()
        half_rise = (self._tone(v + s) - self._tone(v - s)) / 2
        if channels == 3:
            return half_rise
        slope = torch.where(s > 0, half_rise / s.clamp(min=1e-12), torch.zeros_like(s))
        # Gray output = mean over c of g_c(sum_k M_ck lin_k): linear coefficient of lin_k is mean_c slope_c M_ck.
        coef = torch.einsum("nchw,ck->nkhw", slope, cam2rgb.to(slope.device, slope.dtype)) / 3
        return (coef ** 2 * var_k).sum(1, keepdim=True).sqrt()

    def _run(self, x: torch.Tensor, rng: _Rng | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        channels = x.shape[1]
        x3 = x.expand(-1, 3, -1, -1) if channels == 1 else x
        shot, read, rgb2cam, gains = self._camera(rng)
        cam2rgb = torch.linalg.inv(rgb2cam)
        raw = self._unprocess(x3, rgb2cam, gains)
        gain_sites = mosaic(gains.to(x.device, x.dtype)[None, :, None, None].expand_as(x3))
        sigma = self._map(raw, shot, read, cam2rgb, gain_sites, channels)
        if rng is None:
            return None, sigma
        noisy = raw + (shot * raw.clamp(min=0) + read).sqrt() * rng.randn(*raw.shape).to(x.dtype)
        y = self._process(noisy, cam2rgb, gain_sites)
        if channels == 1:
            y = y.mean(1, keepdim=True)
        if self.jpeg:
            y = jpeg_roundtrip(y, int(round(self.quality)))
        return y, sigma

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        y, sigma = self._run(x, rng)
        return Noisy(y, sigma)

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._run(x[i:i + 1], None)[1] for i in range(x.shape[0])])


def jpeg_roundtrip(y: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode each image as 8-bit JPEG at ``quality`` (OpenCV, imported here only)."""
    import cv2
    import numpy as np

    out = []
    for img in y:
        arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if arr.shape[2] == 3:
            arr = arr[:, :, ::-1]                                  # OpenCV is BGR
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr), [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode the JPEG")
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        dec = dec[:, :, None] if dec.ndim == 2 else dec[:, :, ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1))
    return (torch.stack(out).to(y.device, y.dtype)) / 255
