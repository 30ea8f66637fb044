"""CNN denoising baselines (SPEC §3.1): DnCNN, REDNet, MWCNN and PRIDNet as pure ``nn.Module``s (and FFDNet, a
non-blind reference architecture for the speed benchmark, not trained or registered).

Every net maps a noisy image to an estimate of the clean one, ``forward(y) -> x_hat``, with ``channels`` (1 or 3)
channels in and out and any height and width: nets that halve the resolution pad the input internally (reflect,
or replicate where the image is too small to reflect) and crop the result back.  All four are blind (no noise level
input) and learn a residual: the output is ``y`` plus a correction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pad_to_multiple(y: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right edges so that H and W are multiples of ``multiple``."""
    h, w = y.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return y
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(y, (0, pw, 0, ph), mode=mode)


def _conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class DnCNN(nn.Module):
    """DnCNN (Zhang, Zuo, Chen, Meng & Zhang 2017, "Beyond a Gaussian Denoiser", Fig. 1).

    ``depth`` 3x3 conv layers of ``width`` channels: Conv+ReLU, (depth-2) x Conv+BN+ReLU, Conv.  The body predicts
    the residual (the noise ``v`` of the paper's ``R(y) ≈ v``) and the output is ``x_hat = y - R(y)``.
    17 layers and 64 channels give 0.56M parameters for RGB.
    """

    def __init__(self, channels: int = 3, depth: int = 17, width: int = 64):
        super().__init__()
        layers: list[nn.Module] = [_conv(channels, width), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [_conv(width, width, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(_conv(width, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.body(y)


class FFDNet(nn.Module):
    """FFDNet (Zhang, Zuo & Zhang 2018, "FFDNet: Toward a Fast and Flexible Solution for CNN-based Image
    Denoising", Fig. 1): non-blind, it works on the four 2x-downsampled sub-images.

    ``forward(y, sigma)``: ``y`` is reversibly downsampled (pixel unshuffle by 2: 4C channels at half size), the
    noise-level map ``M`` (``sigma`` a float, (N,) values, or an N x 1 x H x W map, averaged over each 2 x 2 block) is
    concatenated as one more channel, ``depth`` 3x3 convolutions of ``width`` channels (Conv+ReLU,
    (depth - 2) x Conv+BN+ReLU, Conv) give 4C channels, and pixel shuffle returns to full size.  Not residual: the
    output is the estimate itself.  The paper uses 15 layers of 64 channels for gray, 12 of 96 for colour; odd sizes
    are padded (replicate) and cropped back.
    """

    def __init__(self, channels: int = 3, depth: int = 12, width: int = 96):
        super().__init__()
        self.multiple = 2
        layers: list[nn.Module] = [_conv(4 * channels + 1, width), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [_conv(width, width, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(_conv(width, 4 * channels))
        self.body = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        n, _, h, w = y.shape
        yp = _pad_to_multiple(y, 2)
        small = F.pixel_unshuffle(yp, 2)
        if torch.is_tensor(sigma) and sigma.dim() == 4:
            m = F.avg_pool2d(_pad_to_multiple(sigma.to(y.dtype), 2), 2)
        else:
            m = torch.as_tensor(sigma, dtype=y.dtype, device=y.device).reshape(-1, 1, 1, 1)
            m = m.expand(n, 1, *small.shape[-2:])
        return F.pixel_shuffle(self.body(torch.cat([small, m.to(small.dtype)], dim=1)), 2)[..., :h, :w]


class REDNet(nn.Module):
    """RED-Net (Mao, Shen & Yang 2016, "Image Restoration Using Very Deep Convolutional Encoder-Decoder Networks
    with Symmetric Skip Connections"), the 10-layer variant.

    ``layers`` conv layers (encoder) and ``layers`` deconvolutions (decoder), 3x3, stride 1, ReLU.  Deconvolution
    ``k`` mirrors conv ``layers + 1 - k``; every ``skip_every`` layers the input of a conv layer is added to the
    output of its mirror before the ReLU (the paper's symmetric skips).  With 5 + 5 layers the skips leave the
    outputs of conv 2 and conv 4 and, at the end, the image itself: ``x_hat = y + decoder(...)``.
    """

    def __init__(self, channels: int = 3, width: int = 128, layers: int = 5, skip_every: int = 2):
        super().__init__()
        self.skip_every = skip_every
        self.convs = nn.ModuleList([_conv(channels if i == 0 else width, width) for i in range(layers)])
        self.deconvs = nn.ModuleList([nn.ConvTranspose2d(width, channels if i == layers - 1 else width, 3, padding=1)
                                      for i in range(layers)])

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        feats = [y]  # feats[i]: the output of conv i (feats[0]: the input), i.e. the input of conv i + 1
        h = y
        for conv in self.convs:
            h = F.relu(conv(h))
            feats.append(h)
        n = len(self.deconvs)
        for k, deconv in enumerate(self.deconvs[:-1], start=1):
            h = deconv(h)
            mirror = n - k  # deconv k outputs the shape of conv (n + 1 - k)'s input, feats[n - k]
            if mirror % self.skip_every == 0:
                h = h + feats[mirror]
            h = F.relu(h)
        return y + self.deconvs[-1](h)  # the last skip: feats[0] = y


class HaarDWT(nn.Module):
    """Orthonormal 2-D Haar transform: N x C x H x W -> N x 4C x H/2 x W/2 (bands LL, detail-x, detail-y, diagonal,
    interleaved per channel: output channel 4c + b).  ``HaarIWT`` is its exact inverse (the 4x4 matrix is symmetric
    and orthogonal), so the pair replaces pooling and upsampling without losing information (Liu et al. 2018).
    """

    def __init__(self):
        super().__init__()
        h = 0.5 * torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0],
                                [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])
        self.register_buffer("h", h, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        u = F.pixel_unshuffle(x, 2).reshape(n, c, 4, hh // 2, ww // 2)  # u[:, c, 2i+j] = x[:, c, 2y+i, 2x+j]
        return torch.einsum("ab,ncbhw->ncahw", self.h.to(u.dtype), u).reshape(n, 4 * c, hh // 2, ww // 2)


class HaarIWT(HaarDWT):
    """Inverse of :class:`HaarDWT`: N x 4C x h x w -> N x C x 2h x 2w."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, c4, hh, ww = z.shape
        u = torch.einsum("ab,ncbhw->ncahw", self.h.to(z.dtype), z.reshape(n, c4 // 4, 4, hh, ww))
        return F.pixel_shuffle(u.reshape(n, c4, hh, ww), 2)


def _conv_relu_block(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [_conv(cin if i == 0 else cout, cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class MWCNN(nn.Module):
    """Multi-level wavelet CNN (Liu, Zhang, Zhang, Lin & Zuo 2018, "Multi-level Wavelet-CNN for Image
    Restoration"): a UNet whose pooling is the Haar DWT and whose upsampling is the inverse DWT.

    Level ``k`` (k = 0..L-1, L = len(widths)) works at 1/2^(k+1) resolution with ``widths[k]`` channels: the
    encoder applies the DWT (4x the channels) and ``convs`` Conv+ReLU; the decoder applies ``convs`` Conv+ReLU and
    a conv to 4x the channels of the level above, the IWT, and sums the encoder features of that level (the paper's
    sum skips); the top level returns to the image and adds ``y`` (residual).  Inputs are padded to a multiple of
    2^L.  Defaults (L = 4, widths 32/64/128/256) give about 5.5M parameters.
    """

    def __init__(self, channels: int = 3, widths: tuple[int, ...] | list[int] = (32, 64, 128, 256), convs: int = 2):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.multiple = 2 ** len(widths)
        self.dwt, self.iwt = HaarDWT(), HaarIWT()
        above = (channels,) + widths[:-1]  # channel count one level up
        self.enc = nn.ModuleList([_conv_relu_block(4 * a, w, convs) for a, w in zip(above, widths)])
        self.dec = nn.ModuleList([nn.Sequential(_conv_relu_block(w, w, convs), _conv(w, 4 * a))
                                  for a, w in zip(above, widths)])

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        yp = _pad_to_multiple(y, self.multiple)
        feats = []
        z = yp
        for block in self.enc:
            z = block(self.dwt(z))
            feats.append(z)
        for k in range(len(self.dec) - 1, -1, -1):
            z = self.iwt(self.dec[k](z))
            if k > 0:
                z = z + feats[k - 1]
        return (yp + z)[..., :h, :w]


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu, Shen & Sun 2018): scale each channel by sigmoid(W2 relu(W1 mean_hw(f)))."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                nn.Sigmoid())

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f * self.fc(f.mean(dim=(2, 3))).to(f.dtype)[:, :, None, None]


class SmallUNet(nn.Module):
    """A two-level UNet (max pooling, bilinear upsampling, concatenation skips) used inside each PRIDNet branch."""

    def __init__(self, cin: int, cout: int, width: int = 32):
        super().__init__()
        w1, w2, w3 = width, 2 * width, 4 * width
        self.enc0 = _conv_relu_block(cin, w1, 2)
        self.enc1 = _conv_relu_block(w1, w2, 2)
        self.mid = _conv_relu_block(w2, w3, 2)
        self.up1 = _conv(w3, w2)
        self.dec1 = _conv_relu_block(2 * w2, w2, 2)
        self.up0 = _conv(w2, w1)
        self.dec0 = _conv_relu_block(2 * w1, w1, 2)
        self.out = _conv(w1, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = _pad_to_multiple(x, 4)
        e0 = self.enc0(x)
        e1 = self.enc1(F.max_pool2d(e0, 2))
        m = self.mid(F.max_pool2d(e1, 2))
        d1 = self.dec1(torch.cat([self.up1(F.interpolate(m, scale_factor=2.0, mode="bilinear")), e1], dim=1))
        d0 = self.dec0(torch.cat([self.up0(F.interpolate(d1, scale_factor=2.0, mode="bilinear")), e0], dim=1))
        return self.out(d0)[..., :h, :w]


class KernelSelect(nn.Module):
    """Selective-kernel fusion (Li, Wang, Hu & Yang 2019, SKNet), as PRIDNet's last stage.

    Branches ``U_k = relu(conv_kxk(f))`` for k in ``kernels``; ``s = mean_hw(sum_k U_k)``, ``z = relu(W s)``;
    per-branch channel logits ``W_k z`` are softmaxed across branches into ``a_k``; output ``sum_k a_k U_k``.
    """

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (3, 5, 7), reduction: int = 4):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(_conv(cin, cout, k), nn.ReLU(inplace=True)) for k in kernels])
        hidden = max(cout // reduction, 8)
        self.squeeze = nn.Sequential(nn.Linear(cout, hidden), nn.ReLU(inplace=True))
        self.select = nn.ModuleList([nn.Linear(hidden, cout) for _ in kernels])

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        u = torch.stack([b(f) for b in self.branches], dim=1)                 # N x K x C x H x W
        z = self.squeeze(u.sum(dim=1).mean(dim=(2, 3)))                        # N x hidden
        a = torch.softmax(torch.stack([s(z) for s in self.select], dim=1).float(), dim=1).to(u.dtype)
        return (a[:, :, :, None, None] * u).sum(dim=1)


class PRIDNet(nn.Module):
    """Pyramid Real Image Denoising Network (Zhao, Lam & Lun 2019).

    Three stages: (1) noise estimation: ``est_layers`` plain 3x3 Conv+ReLU of ``width`` channels with channel
    attention (squeeze-excitation) before the last conv, giving a C-channel noise estimate; (2) multi-scale
    denoising on ``cat(y, estimate)``: for each pooling size p in ``pools`` (1, 2, 4, 8, 16) an average pool of
    size and stride p, a small UNet, and bilinear upsampling back to full size; the branch outputs and the stage
    input are concatenated; (3) feature fusion by kernel selection over 3x3 / 5x5 / 7x7 branches (SKNet style),
    then a 3x3 conv to C channels.  We add the input to the output (residual learning, not in the paper) so that an
    untrained net starts at the identity.  Inputs are padded to a multiple of the largest pool.
    """

    def __init__(self, channels: int = 3, width: int = 32, est_layers: int = 5, unet_width: int = 32,
                 pools: tuple[int, ...] | list[int] = (1, 2, 4, 8, 16)):
        super().__init__()
        self.pools = tuple(int(p) for p in pools)
        self.multiple = max(self.pools)
        self.estimate = nn.Sequential(_conv_relu_block(channels, width, est_layers - 1), SqueezeExcitation(width),
                                      _conv(width, channels))
        cin = 2 * channels
        self.branches = nn.ModuleList([SmallUNet(cin, unet_width, unet_width) for _ in self.pools])
        self.fuse = KernelSelect(cin + unet_width * len(self.pools), width)
        self.out = _conv(width, channels)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        yp = _pad_to_multiple(y, self.multiple)
        f = torch.cat([yp, self.estimate(yp)], dim=1)
        size = yp.shape[-2:]
        outs = [f]
        for p, branch in zip(self.pools, self.branches):
            if p == 1:
                outs.append(branch(f))
            else:
                g = branch(F.avg_pool2d(f, p))
                outs.append(F.interpolate(g, size=size, mode="bilinear"))
        return (yp + self.out(self.fuse(torch.cat(outs, dim=1))))[..., :h, :w]
