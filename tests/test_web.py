"""The web app: the plain-python pipeline (no gradio), the `serve` command line, and one end-to-end browser run.

The browser test starts the Gradio app on a free loopback port in this process, drives Debian's chromium through
Playwright (never a downloaded browser), blocks and records every request that leaves the app's own address, and
saves a screenshot under test-artifacts/.  It skips, saying why, when gradio, playwright or chromium is missing.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import Image, quantize, read_image, write_image
from diffdenoise.metrics import psnr
from diffdenoise.registry import METHODS
from diffdenoise.web.pipeline import (EXAMPLE_RECIPES, Limits, MethodCache, check_upload, denoise_file, heat_map,
                                      make_examples, method_choices, method_options, output_suffix,
                                      pick_default_method, preview)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


class BoxBlur:
    """A stand-in denoiser for pipeline tests (the pipeline is under test, not a method): 3 x 3 mean filter.

    With ``samples`` it behaves like a stochastic method and exposes ``last_uncertainty``."""

    def __init__(self, samples: int | None = None):
        self.samples = samples
        self.last_uncertainty = None
        self.calls = 0

    def __call__(self, y, sigma=None, *, generator=None, progress=None):
        self.calls += 1
        x_hat = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(y, (1, 1, 1, 1), mode="replicate"), 3, 1)
        if self.samples:
            self.last_uncertainty = torch.full_like(y, 0.02)
        if progress:
            progress(0.5)
            progress(1.0)
        return x_hat


def box_cache(**_):
    return MethodCache(build=lambda name, device="cpu", **options: BoxBlur(options.get("samples")))


def _noisy_pair(tmp_path: Path, size: int = 64, channels: int = 3, bit_depth: int = 8, suffix: str = ".png"):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    clean = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.2 * xx * yy][:channels], axis=2).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    path = write_image(tmp_path / f"noisy{suffix}", Image(noisy, None, bit_depth), bit_depth=bit_depth)
    return clean, path


# ------------------------------------------------------------------------------------------------ pipeline

def test_check_upload_refuses_text_renamed_png(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is a text file, not a picture\n")
    with pytest.raises(DiffDenoiseError, match=r"notes\.png: not a readable image") as err:
        check_upload(bad)
    assert str(tmp_path) not in str(err.value)  # no server paths in messages shown to users


@pytest.mark.parametrize("name, content", [("empty.png", b""), ("data.csv", b"1,2,3\n")])
def test_check_upload_refuses_empty_and_unknown_types(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DiffDenoiseError, match=name.replace(".", r"\.")):
        check_upload(tmp_path / name)


def test_check_upload_limits_pixels_and_bytes(tmp_path):
    _, path = _noisy_pair(tmp_path, size=100)
    assert check_upload(path) == (100, 100)
    with pytest.raises(DiffDenoiseError, match=r"100x100 = 0\.0 megapixels; this app takes up to 0\.005 meg"):
        check_upload(path, Limits(max_megapixels=0.005))
    with pytest.raises(DiffDenoiseError, match=r"MB; this app takes"):
        check_upload(path, Limits(max_mb=1e-4))


def test_bad_upload_then_next_request_works(tmp_path):
    """What the app does per request: a refused file raises one clear line, and the same cache serves the next."""
    cache = box_cache()
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(DiffDenoiseError, match="bad.png"):
        denoise_file(bad, "median", tmp_path / "out", cache=cache)
    clean, path = _noisy_pair(tmp_path, size=100)
    with pytest.raises(DiffDenoiseError, match="megapixels"):
        denoise_file(path, "median", tmp_path / "out", cache=cache, limits=Limits(max_megapixels=0.001))
    out = denoise_file(path, "median", tmp_path / "out", cache=cache)
    assert out.result_path.exists() and out.result_path.suffix == ".png"
    assert psnr(quantize(clean), quantize(read_image(out.result_path).data)) > psnr(quantize(clean),
                                                                                     quantize(read_image(path).data))


def test_denoise_file_outputs_progress_and_estimate(tmp_path):
    clean, path = _noisy_pair(tmp_path)
    seen: list[float] = []
    ref = write_image(tmp_path / "clean.png", Image(clean, None, 8))
    out = denoise_file(path, "median", tmp_path / "out", cache=box_cache(), progress=seen.append, reference=ref)
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert 15 < out.sigma_estimate < 35                 # 25 in 8-bit units was added
    assert out.noisy_preview.dtype == np.uint8 and out.noisy_preview.shape == (64, 64, 3)
    assert out.noise_heat.dtype == np.uint8 and out.noise_heat.shape[1:] == (64, 3)
    assert read_image(out.noise_map_path).bit_depth == 16
    assert out.uncertainty_path is None                 # not stochastic
    assert out.psnr_result > out.psnr_noisy
    assert "estimated noise sigma" in out.summary() and "PSNR vs clean" in out.summary()


@pytest.mark.parametrize("suffix, channels", [(".tif", 1), (".png", 3)])
def test_16bit_input_gives_16bit_result(tmp_path, suffix, channels):
    _, path = _noisy_pair(tmp_path, channels=channels, bit_depth=16, suffix=suffix)
    out = denoise_file(path, "median", tmp_path / "out", cache=box_cache())
    assert out.result_path.suffix == output_suffix(path) == (".tif" if suffix == ".tif" else ".png")
    result = read_image(out.result_path)
    assert result.bit_depth == 16 and result.shape == (64, 64, channels)
    assert len(np.unique(quantize(result.data, 16))) > 256  # not 8-bit values stored in 16 bits


def test_jpeg_input_gives_png_result(tmp_path):
    _, path = _noisy_pair(tmp_path, suffix=".jpg")
    out = denoise_file(path, "median", tmp_path / "out", cache=box_cache())
    assert out.result_path.suffix == ".png" and read_image(out.result_path).bit_depth == 8


def test_uncertainty_map_for_stochastic_methods_with_samples(tmp_path):
    spec = next(s for s in METHODS.values() if s.stochastic and "samples" in s.options)
    _, path = _noisy_pair(tmp_path)
    out = denoise_file(path, spec.name, tmp_path / "out", samples=4, steps=3, cache=box_cache())
    assert out.uncertainty_heat is not None and out.uncertainty_heat.dtype == np.uint8
    assert out.uncertainty_path in out.files and read_image(out.uncertainty_path).shape == (64, 64, 3)
    single = denoise_file(path, spec.name, tmp_path / "out1", samples=1, cache=box_cache())
    assert single.uncertainty_path is None


def test_method_options_reach_only_methods_that_take_them(tmp_path):
    built = []
    cache = MethodCache(build=lambda name, device="cpu", **options: built.append((name, options)) or BoxBlur())
    diffusion = next(s.name for s in METHODS.values() if {"steps", "samples"} <= set(s.options))
    _, path = _noisy_pair(tmp_path)
    denoise_file(path, "median", tmp_path / "a", steps=5, samples=3, ensemble=8, cache=cache)
    denoise_file(path, diffusion, tmp_path / "b", steps=5, samples=3, cache=cache)
    denoise_file(path, "dncnn", tmp_path / "c", steps=5, ensemble=4, cache=cache)
    assert built == [("median", {}), (diffusion, {"steps": 5, "samples": 3}), ("dncnn", {"ensemble": 4})]
    assert method_options("median") == {"steps": False, "samples": False, "stochastic": False, "ensemble": False}
    assert method_options("dncnn")["ensemble"]
    assert method_options(diffusion)["samples"] and method_options(diffusion)["steps"]


def test_method_cache_reuses_and_evicts():
    cache = MethodCache(size=2, build=lambda name, device="cpu", **o: object())
    a = cache.get("median", "cpu", {})
    assert cache.get("median", "cpu", {}) is a
    cache.get("nlm", "cpu", {})
    cache.get("tv", "cpu", {})
    assert cache.get("median", "cpu", {}) is not a


def test_method_choices_cover_the_registry():
    choices = method_choices()
    assert [c.name for c in choices] == list(METHODS)
    assert all(c.label.startswith(c.name + " — ") for c in choices)
    for c in choices:
        if METHODS[c.name].weights and c.status == "weights missing":
            assert not c.usable
    usable = [c.name for c in choices if c.usable]
    assert pick_default_method(choices) in (usable or [pick_default_method(choices)])


def test_heat_map_and_preview():
    m = np.zeros((40, 60), np.float32)
    m[:, 30:] = 10.0
    rgb, vmax = heat_map(m, unit="u")
    assert vmax == 10.0 and rgb.dtype == np.uint8 and rgb.shape[1:] == (60, 3) and rgb.shape[0] > 40
    assert rgb[:40, :30].mean() < rgb[:40, 30:].mean()          # hot is brighter
    big = preview(np.full((300, 100, 1), 0.5, np.float32), side=150)
    assert big.shape == (150, 50, 3) and big.dtype == np.uint8


def test_examples_are_deterministic(tmp_path):
    a = make_examples(tmp_path / "a")
    b = make_examples(tmp_path / "b")
    if not a:
        pytest.skip("examples/ folder not found (installed without the source tree)")
    assert [e.name for e in a] == [r[0] for r in EXAMPLE_RECIPES]
    for ea, eb in zip(a, b):
        assert ea.noisy.read_bytes() == eb.noisy.read_bytes()
        assert ea.clean is not None
        clean, noisy = read_image(ea.clean).data, read_image(ea.noisy).data
        assert clean.shape == noisy.shape and 10 < psnr(quantize(clean), quantize(noisy)) < 35


def test_serve_command_line():
    from diffdenoise.cli import build_parser
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.max_megapixels, args.max_mb) == ("127.0.0.1", 7860, 50, 100)
    args = build_parser().parse_args(["serve", "--port", "8000", "--max-megapixels", "12", "--max-mb", "20"])
    assert (args.port, args.max_megapixels, args.max_mb) == (8000, 12, 20)
    assert args.func.__name__ == "cmd_serve"


def test_web_package_does_not_import_gradio():
    import subprocess
    import sys
    code = "import sys, diffdenoise.web, diffdenoise.web.pipeline; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ browser

def _chromium() -> str | None:
    for cand in (os.environ.get("DIFFDENOISE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                 "/usr/bin/chromium"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def _fast_method() -> str:
    usable = {c.name for c in method_choices() if c.usable}
    for name in ("tv", "gaussian", "median"):   # fast, and a clear gain on the Gaussian example
        if name in usable:
            return name
    pytest.skip("no fast classical method (tv, gaussian, median) is importable here")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_browser_end_to_end(tmp_path, monkeypatch):
    """Upload a bad file (error shown, app keeps serving), then a bundled noisy example: pick a method, Denoise,
    download the result, and check it is closer to the clean image than the upload was."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not found (apt-get install chromium, or set DIFFDENOISE_CHROMIUM)")
    method = _fast_method()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    pytest.importorskip("gradio", reason="gradio not installed (pip install 'diffdenoise[ui]')")
    examples = make_examples(tmp_path / "examples")
    example = next((e for e in examples if e.name == "photo_gaussian25.png"), None)
    if example is None:
        pytest.skip("examples/ folder not found")
    bad = tmp_path / "holiday.png"
    bad.write_text("a text file renamed .png\n")

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-cache"))  # apart from other apps' uploads
    from diffdenoise.web.app import build_app, launch
    start = time.perf_counter()
    demo = build_app(limits=Limits(max_megapixels=50, max_mb=100), device="cpu", workdir=tmp_path / "app")
    port = _free_port()
    launch(demo, port=port, block=False, quiet=True)
    base = f"http://127.0.0.1:{port}"
    outside: list[str] = []

    def only_loopback(route):
        if route.request.url.startswith(base) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.route("**/*", only_loopback)
            page.goto(base)
            page.wait_for_selector("#denoise", timeout=30_000)
            assert "50 megapixels and 100 MB" in page.inner_text("body")   # the limit is stated
            assert page.locator("#ensemble").is_visible()                    # the default method is neural

            upload = page.locator("#upload input[type=file]")
            status = page.locator("#status textarea")
            upload.set_input_files(str(bad))
            page.wait_for_selector("#upload td.filename", timeout=15_000)
            page.click("#denoise")
            page.wait_for_function("document.querySelector('#status textarea').value.includes('ERROR')",
                                   timeout=30_000)
            assert "holiday.png: not a readable image" in status.input_value()

            page.click("#upload button[aria-label='Clear']")
            upload.set_input_files(str(example.noisy))
            page.wait_for_selector("#upload td.filename[aria-label='photo_gaussian25.png']", timeout=15_000)
            page.click("#method input")
            page.get_by_role("option", name=f"{method} — ").click()
            page.click("#denoise")
            link = page.locator("#downloads a[download$='_denoised.png']")
            link.wait_for(timeout=60_000)
            text = status.input_value()
            assert "ERROR" not in text and f"{method} with sigma auto" in text and "estimated noise sigma" in text
            with page.expect_download() as info:
                link.click()
            got = tmp_path / "downloaded.png"
            info.value.save_as(got)
            page.wait_for_selector("#compare img", timeout=15_000)
            page.wait_for_selector("#noise-map img", timeout=15_000)
            for close in page.locator(".toast-close").all():   # the first request's warning, if still up
                close.click()
            page.screenshot(path=str(ARTIFACTS / "web_end_to_end.png"), full_page=True)
            browser.close()
    finally:
        demo.close()

    clean = quantize(read_image(example.clean).data)
    before = psnr(clean, quantize(read_image(example.noisy).data))
    after = psnr(clean, quantize(read_image(got).data))
    assert after > before + 1.0, (before, after)
    assert outside == [], f"the page tried to reach outside hosts: {outside}"
    assert time.perf_counter() - start < 90
