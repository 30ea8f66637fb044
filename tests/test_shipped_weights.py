"""The weights shipped in weights/ load with safetensors and denoise a fixed crop above a stated PSNR.

Thresholds sit a few tenths of a dB under the values measured when the weights were committed, so a broken loader,
a wrong channel order or a changed preprocessing fails, while float differences between machines do not."""
from pathlib import Path

import numpy as np
import pytest
import torch

from diffdenoise.imageio import quantize, read_image, to_tensor
from diffdenoise.metrics import psnr
from diffdenoise.noise import parse_noise
from diffdenoise.registry import build_method

CROP = Path(__file__).resolve().parents[1] / "examples" / "kodim05_crop.png"

# (method, options, gray?, noise, sigma given to the method, minimum PSNR in dB)
CASES = [  # measured at commit time, in dB: 29.68, 29.30, 33.39, 28.68, 26.68, 29.19, 26.25, 25.79, 26.09, 25.90, 25.28
    ("cddpm", {}, False, "gaussian:25", 25 / 255, 29.3),
    ("cddpm", {"steps": 4}, False, "gaussian:25", 25 / 255, 29.0),
    ("realdiff", {}, False, "poisson_gaussian:0.005,3", None, 33.0),
    ("dncnn", {}, False, "gaussian:25", None, 28.3),
    ("dncnn", {}, True, "gaussian:25", None, 26.3),
    ("rednet", {}, False, "gaussian:25", None, 28.8),
    ("rednet", {}, True, "gaussian:25", None, 25.9),
    ("mwcnn", {}, False, "gaussian:25", None, 25.4),
    ("mwcnn", {}, True, "gaussian:25", None, 25.7),
    ("pridnet", {}, False, "gaussian:25", None, 25.5),
    ("pridnet", {}, True, "gaussian:25", None, 24.9),
]


@pytest.mark.parametrize("method,options,gray,noise,sigma,minimum", CASES,
                         ids=[f"{c[0]}{c[1].get('steps', '')}-{'gray' if c[2] else 'rgb'}" for c in CASES])
def test_shipped_weights_beat_stated_psnr(method, options, gray, noise, sigma, minimum):
    x = read_image(CROP).data[:128, :128]
    if gray:
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
    x_t = to_tensor(x)
    y = parse_noise(noise).sample(x_t, torch.Generator().manual_seed(0))
    fn = build_method(method, device="cpu", **options)
    with torch.inference_mode():
        x_hat = fn(y, sigma, generator=torch.Generator().manual_seed(0))
    ref = quantize(x)
    got = psnr(quantize(x_hat[0].permute(1, 2, 0).numpy()), ref)
    noisy = psnr(quantize(y[0].permute(1, 2, 0).numpy()), ref)
    print(f"{method} {options} gray={gray}: noisy {noisy:.2f} -> {got:.2f} dB")
    assert got > minimum, f"{method}: {got:.2f} dB <= {minimum} dB"
