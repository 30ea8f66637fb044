"""Missing-pixel imputation: classical inpainting, the cddpm imputer, the ``impute`` command, the Kodak24 script."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from diffdenoise.classical import inpaint
from diffdenoise.cli import main
from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import Image, quantize, read_image, write_image
from diffdenoise.impute import CLASSICAL, IMPUTERS, TiledImputer, build_imputer
from diffdenoise.metrics import psnr
from diffdenoise.nets.unet import UNet
from diffdenoise.noise import Missing

ROOT = Path(__file__).resolve().parents[1]
UNET = {"in_channels": 3, "out_channels": 3, "cond_channels": 5, "size": "tiny", "channels": [8, 16]}


def smooth_image(h: int = 48, w: int = 64, c: int = 3) -> np.ndarray:
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    planes = [0.5 + 0.3 * np.sin(2 * np.pi * (xx + 0.3 * k)) * np.cos(np.pi * (yy - 0.2 * k)) for k in range(c)]
    return np.stack(planes, axis=2).astype(np.float32)


def nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def drawn_mask(x: torch.Tensor, p: float, seed: int = 0) -> torch.Tensor:
    return Missing(p).draw(x, torch.Generator().manual_seed(seed)).mask


def tiny_cddpm():
    from diffdenoise.diffusion.cddpm import CDDPMTask
    torch.manual_seed(0)
    net = UNet(**UNET)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval(), {"method": CDDPMTask(noise="missing:0.2..0.9", start="noise").method_card()}


@pytest.fixture()
def cddpm_weights(tmp_path, monkeypatch):
    """A tiny random ``cddpm-missing`` exported into a weights folder of its own (fp16 safetensors + card)."""
    pytest.importorskip("safetensors")
    from diffdenoise.train.checkpoint import export_weights
    net, card = tiny_cddpm()
    folder = tmp_path / "weights"
    export_weights(net, "cddpm-missing", {"net": {"name": "unet", "kwargs": UNET}, **card}, folder=folder)
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(folder))
    return folder


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_inpainting_of_a_smooth_image_beats_the_holes(name):
    x = smooth_image()
    mask = drawn_mask(nchw(x), 0.5)[0, 0].numpy() > 0.5
    y = x * mask[:, :, None]
    x8 = quantize(x)
    holed, filled = psnr(quantize(y), x8), psnr(quantize(inpaint.INPAINTERS[name](y, mask)), x8)
    assert holed < 12 and filled > 36 and filled > holed + 25, (holed, filled)


@pytest.mark.parametrize("name", [*CLASSICAL, "cddpm"])
def test_every_imputer_returns_observed_pixels_unchanged(name):
    """Bit for bit, whatever the values in the holes (NaN here), with a per-channel mask and a gray image."""
    g = torch.Generator().manual_seed(0)
    if name == "cddpm":
        from diffdenoise.diffusion.cddpm import build_impute
        net, card = tiny_cddpm()
        imputer = build_impute("cpu", steps=2, net=net, card=card)
    else:
        imputer = build_imputer(name)
    y = torch.rand(2, 3, 20, 24, generator=g)
    mask = (torch.rand(2, 3, 20, 24, generator=g) > 0.5).float()
    mask[:, :, :4] = 1                                            # every image keeps some whole observed pixels
    holes_nan = torch.where(mask > 0.5, y, torch.full_like(y, float("nan")))
    out = imputer(holes_nan, mask, generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    assert out.shape == y.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(out[mask > 0.5], y[mask > 0.5])
    gray, gmask = y[:, :1], mask[:, :1]
    out = imputer(gray * gmask, gmask, generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    assert out.shape == gray.shape and torch.equal(out[gmask > 0.5], gray[gmask > 0.5])


def test_tiny_cddpm_imputer_end_to_end_is_seeded_and_tiles():
    from diffdenoise.diffusion.cddpm import build_impute
    net, card = tiny_cddpm()
    imputer = build_impute("cpu", steps=2, net=net, card=card)
    x = nchw(smooth_image(40, 50))
    mask = drawn_mask(x, 0.5)
    gen = lambda: torch.Generator().manual_seed(3)                              # noqa: E731
    a = imputer(x * mask, mask, generator=gen())
    assert torch.equal(a, imputer(x * mask, mask, generator=gen()))
    assert not torch.equal(a, imputer(x * mask, mask, generator=torch.Generator().manual_seed(4)))
    tiled = TiledImputer(imputer, tile=32, overlap=8)(x * mask, mask, generator=gen())
    assert tiled.shape == x.shape and torch.isfinite(tiled).all()
    assert torch.equal(tiled[mask.expand_as(x) > 0.5], x[mask.expand_as(x) > 0.5])


def test_blocked_biharmonic_agrees_with_the_whole_image_solve():
    x = smooth_image(72, 80)
    x[20:40, 10:50] += 0.2                                        # an edge
    mask = drawn_mask(nchw(x), 0.8)[0, 0].numpy() > 0.5
    whole = inpaint.biharmonic(x, mask, block=None)
    blocked = inpaint.biharmonic(x, mask, block=24, halo=8)
    assert psnr(quantize(blocked), quantize(whole)) > 50


def test_inpaint_rejects_bad_masks():
    x = smooth_image(16, 16)
    with pytest.raises(ValueError, match="does not fit"):
        inpaint.telea(x, np.ones((8, 8), bool))
    with pytest.raises(DiffDenoiseError, match="every pixel is marked missing"):
        inpaint.navier_stokes(x, np.zeros((16, 16), bool))
    assert np.array_equal(inpaint.biharmonic(x, np.ones((16, 16), bool)), x)
    with pytest.raises(DiffDenoiseError, match="does not fit"):
        build_imputer("telea")(nchw(x), torch.ones(1, 1, 8, 8))


def test_registry_errors():
    with pytest.raises(DiffDenoiseError, match="valid: cddpm, telea, ns, biharmonic"):
        build_imputer("lama")
    with pytest.raises(DiffDenoiseError, match="does not take option"):
        build_imputer("telea", steps=4)
    assert set(CLASSICAL) == set(inpaint.INPAINTERS) and "cddpm" in IMPUTERS


def test_cli_round_trip_with_missing_then_with_the_saved_mask(tmp_path, capsys):
    x = smooth_image(48, 64)
    src = write_image(tmp_path / "clean.png", Image(x, None, 8))
    a, b, mask = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "mask.png"
    code, _, err = run(["impute", src, "-o", a, "--missing", "0.5", "--seed", "3", "--method", "ns",
                        "--save-mask", mask], capsys)
    assert code == 0, err
    m = read_image(mask).data[:, :, 0]
    assert set(np.unique(m)) == {0.0, 1.0} and 0.4 < (m == 0).mean() < 0.6           # black = missing
    expected = drawn_mask(nchw(quantize(x).astype(np.float32) / 255), 0.5, seed=3)[0, 0].numpy()
    assert np.array_equal(m, expected)
    out, x8 = quantize(read_image(a).data), quantize(x)
    assert np.array_equal(out[m > 0], x8[m > 0]) and psnr(out, x8) > 36
    code, _, err = run(["impute", src, "-o", b, "--mask", mask, "--method", "ns", "-q"], capsys)
    assert code == 0, err
    assert np.array_equal(quantize(read_image(b).data), out)
    inverted = write_image(tmp_path / "holes_white.png", Image(1 - m[:, :, None], None, 8))
    code, _, err = run(["impute", src, "-o", tmp_path / "c.png", "--mask", inverted, "--missing-is", "white",
                        "--method", "ns", "-q"], capsys)
    assert code == 0, err
    assert np.array_equal(quantize(read_image(tmp_path / "c.png").data), out)


def test_cli_keeps_16bit_gray_and_alpha(tmp_path, capsys):
    x = smooth_image(40, 48)
    g16 = write_image(tmp_path / "g16.png", Image(x[:, :, :1], None, 16))
    rgba = write_image(tmp_path / "rgba.png", Image(x, np.linspace(0, 1, 40 * 48, dtype=np.float32).reshape(40, 48),
                                                     8))
    for src in (g16, rgba):
        code, _, err = run(["impute", src, "-o", tmp_path / f"out_{src.name}", "--missing", "0.5",
                            "--method", "telea", "-q"], capsys)
        assert code == 0, err
        before, after = read_image(src), read_image(tmp_path / f"out_{src.name}")
        assert after.bit_depth == before.bit_depth and after.data.shape == before.data.shape
        assert (after.alpha is None) == (before.alpha is None)
        if before.alpha is not None:
            assert np.array_equal(quantize(after.alpha), quantize(before.alpha))
    assert len(np.unique(read_image(tmp_path / "out_g16.png").data)) > 256          # 16-bit precision kept


@pytest.mark.parametrize("case,needle", [
    ("small", "mask {mask} is 8x8, image"),
    ("bad", "cannot read image"),
    ("absent", "no such file"),
    ("none", "say which pixels are missing"),
    ("steps", "only apply to --method cddpm"),
    ("weights", "--method telea, ns or biharmonic"),
])
def test_cli_bad_mask_and_options_one_line_nonzero(tmp_path, capsys, monkeypatch, case, needle):
    src = write_image(tmp_path / "clean.png", Image(smooth_image(24, 32), None, 8))
    mask = {"small": write_image(tmp_path / "small.png", Image(np.ones((8, 8, 1), np.float32), None, 8)),
            "bad": tmp_path / "bad.png", "absent": tmp_path / "absent.png"}.get(case)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
    argv = ["impute", src, "-o", tmp_path / "o.png"]
    argv += ["--mask", mask, "--method", "ns"] if mask else []
    argv += {"steps": ["--missing", "0.5", "--method", "ns", "--steps", "4"],
             "weights": ["--missing", "0.5", "--method", "cddpm"], "none": ["--method", "ns"]}.get(case, [])
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(tmp_path / "no-weights-here"))
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffdenoise: error:")
    assert needle.format(mask=mask) in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before                    # no partial output


def test_cli_cddpm_from_exported_weights(tmp_path, capsys, cddpm_weights):
    src = write_image(tmp_path / "clean.png", Image(smooth_image(32, 40), None, 8))
    out = tmp_path / "filled.png"
    code, _, err = run(["impute", src, "-o", out, "--missing", "0.5", "--steps", "2", "--samples", "2",
                        "--device", "cpu", "--save-mask", tmp_path / "m.png"], capsys)
    assert code == 0, err
    assert "cddpm" in err and read_image(out).data.shape == (32, 40, 3)
    m = read_image(tmp_path / "m.png").data[:, :, 0] > 0.5
    assert np.array_equal(quantize(read_image(out).data)[m], quantize(read_image(src).data)[m])


def test_impute_table_script_writes_table_json_and_figure(tmp_path):
    data = tmp_path / "set"
    data.mkdir()
    for i in range(2):
        write_image(data / f"im{i}.png", Image(np.roll(smooth_image(40, 48), 7 * i, axis=1), None, 8))
    out = tmp_path / "res" / "impute"
    spec = importlib.util.spec_from_file_location("impute_table", ROOT / "benchmarks" / "impute_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--data", str(data), "--methods", "telea,ns", "--missing", "0.5", "0.8", "--out", str(out),
                        "--figure", str(tmp_path / "fig.png"), "--figure-image", "im1.png",
                        "--figure-crop", "4,8,32"]) == 0
    result = json.loads(Path(f"{out}.json").read_text())
    assert len(result["records"]) == 2 * 2 * 3                    # images x fractions x (input, telea, ns)
    rows = {(s["method"], s["missing"]): s for s in result["summary"]}
    assert rows[("ns", 0.5)]["psnr"] > rows[("ns", 0.8)]["psnr"] > rows[("masked input", 0.8)]["psnr"] + 15
    table = Path(f"{out}.md").read_text()
    assert "| telea |" in table and "50% missing PSNR / SSIM" in table
    fig = read_image(tmp_path / "fig.png")
    assert fig.data.shape[1] == 4 * 32 + 3 * 6 and fig.data.shape[0] == 2 * (32 + 24) + 6
