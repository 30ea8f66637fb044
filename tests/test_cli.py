"""The command line end to end: every command on small files, and one clear line + non-zero exit on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffdenoise.cli import main
from diffdenoise.imageio import Image, quantize, read_image, write_image
from diffdenoise.metrics import psnr

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kodim05_crop.png"


@pytest.fixture()
def clean(tmp_path):
    img = read_image(EXAMPLE)
    small = img.with_data(img.data[:64, :64])
    return write_image(tmp_path / "clean.png", small)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_noise_then_denoise_improves_psnr(tmp_path, clean, capsys):
    noisy = tmp_path / "noisy.png"
    code, _, _ = run(["add-noise", clean, "-o", noisy, "--noise", "gaussian:25", "--seed", "0", "-q"], capsys)
    assert code == 0
    out = tmp_path / "den.png"
    cmp_png = tmp_path / "cmp.png"
    code, _, err = run(["denoise", noisy, "-o", out, "--method", "nlm", "--sigma", "25", "--compare", cmp_png,
                        "--reference", clean], capsys)
    assert code == 0, err
    x = quantize(read_image(clean).data)
    assert psnr(quantize(read_image(out).data), x) > psnr(quantize(read_image(noisy).data), x) + 3
    assert read_image(cmp_png).data.shape[1] > 3 * 64


def test_add_noise_is_seeded_and_saves_map(tmp_path, clean, capsys):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((a, 0), (b, 0), (c, 1)):
        assert run(["add-noise", clean, "-o", path, "--noise", "gaussian:10", "--seed", seed, "-q",
                    "--save-map", tmp_path / f"{path.stem}_map.tif"], capsys)[0] == 0
    assert np.array_equal(read_image(a).data, read_image(b).data)
    assert not np.array_equal(read_image(a).data, read_image(c).data)
    s = read_image(tmp_path / "a_map.tif").data
    assert np.allclose(s, 10 / 255, atol=2 / 65535)


def test_folder_in_folder_out_keeps_16bit(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(src / f"im{i}.png", Image(rng.random((24, 20, 3)).astype(np.float32), None, 16))
    code, _, err = run(["denoise", src, "-o", tmp_path / "out", "--method", "gaussian", "--sigma", "10", "-q"],
                       capsys)
    assert code == 0, err
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outs] == ["im0.png", "im1.png"]
    assert read_image(outs[0]).bit_depth == 16


def test_alpha_passes_through(tmp_path, capsys):
    rng = np.random.default_rng(1)
    alpha = rng.random((16, 16)).astype(np.float32)
    write_image(tmp_path / "rgba.png", Image(rng.random((16, 16, 3)).astype(np.float32), alpha, 8))
    assert run(["denoise", tmp_path / "rgba.png", "-o", tmp_path / "o.png", "--method", "median",
                "--sigma", "20", "-q"], capsys)[0] == 0
    back = read_image(tmp_path / "o.png")
    assert np.array_equal(quantize(back.alpha), quantize(alpha))


def test_estimate_noise_prints_sigma(tmp_path, clean, capsys):
    noisy = tmp_path / "n.png"
    run(["add-noise", clean, "-o", noisy, "--noise", "gaussian:25", "-q"], capsys)
    code, out, _ = run(["estimate-noise", noisy, "--json"], capsys)
    assert code == 0
    sigma = json.loads(out)[0]["sigma"]
    assert 15 < sigma < 35  # a 64x64 crop of a textured photo: a loose bound


def test_methods_lists_registry(capsys):
    code, out, _ = run(["methods"], capsys)
    assert code == 0
    for name in ("nlm", "bm3d", "gaussian", "median", "bilateral", "wavelet", "tv"):
        assert name in out


@pytest.mark.parametrize("argv,needle", [
    (["denoise", "{missing}", "-o", "{tmp}/o.png"], "no such file"),
    (["denoise", "{bad}", "-o", "{tmp}/o.png", "--method", "median"], "cannot read image"),
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "nope"], "valid:"),
    (["denoise", "{clean}", "-o", "{clean}", "--method", "median"], "refusing to overwrite"),
    (["add-noise", "{clean}", "-o", "{tmp}/o.png", "--noise", "wobble:3"], "wobble"),
    (["denoise", "{clean}", "-o", "{tmp}/nowhere/deeper/o.png", "--method", "median"], "folder"),
    # side outputs never overwrite what the command reads, nor each other
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "median", "--compare", "{clean}"], "refusing"),
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--samples", "2", "--uncertainty", "{clean}"], "refusing"),
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "median", "--compare", "{gray}",
      "--reference", "{gray}"], "refusing"),
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "median", "--compare", "{tmp}/o.png"], "two outputs"),
    (["add-noise", "{clean}", "-o", "{tmp}/o.png", "--noise", "gaussian:5", "--save-map", "{clean}"], "refusing"),
    (["estimate-noise", "{clean}", "--map", "{clean}"], "refusing"),
    (["impute", "{clean}", "-o", "{tmp}/o.png", "--missing", "0.5", "--method", "telea", "--save-mask", "{clean}"],
     "refusing"),
    # checked before any work, not after
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "median", "--reference", "{gray}"], "reference"),
    (["denoise", "{clean}", "{gray}", "-o", "{tmp}/two.png", "--method", "median"], "give a folder"),
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "median", "--format", "tif"], "disagree"),
    (["denoise", "{clean}", "-o", "{tmp}/o.jpg", "--method", "median", "--bit-depth", "16"], "8 bits"),
    (["denoise", "{clean}", "-o", "{tmp}/o.png", "--method", "median", "--device", "foo"], "not a device name"),
    (["bench", "--methods", "nlm", "--data", "{tmp}", "--options", "{bad json"], "not valid JSON"),
])
def test_bad_input_one_line_nonzero(tmp_path, clean, capsys, argv, needle):
    """Exit code 2 and one line; no file written; what the command reads is unchanged."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    gray = write_image(tmp_path / "gray.png", Image(read_image(clean).data[:, :, :1], None, 8))
    subst = {"{missing}": str(tmp_path / "missing.png"), "{bad}": str(bad), "{clean}": str(clean),
             "{gray}": str(gray), "{tmp}": str(tmp_path)}
    args = []
    for a in argv:
        for k, v in subst.items():
            a = a.replace(k, v)
        args.append(a)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = run(args, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("diffdenoise: error") and needle in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no partial output, inputs untouched


@pytest.mark.parametrize("command", [["denoise", "-o", "{tmp}/den", "--method", "median"],
                                     ["add-noise", "-o", "{tmp}/noisy", "--noise", "gaussian:5",
                                      "--save-map", "{tmp}/maps"],
                                     ["impute", "-o", "{tmp}/filled", "--missing", "0.3", "--method", "telea"],
                                     ["estimate-noise", "--map", "{tmp}/maps"]])
def test_a_folder_with_a_bad_file_does_the_rest(tmp_path, clean, capsys, command):
    """One line per failed file, every good file done, exit code 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        (folder / name).write_bytes(Path(clean).read_bytes())
    (folder / "b.png").write_bytes(b"not an image")
    argv = [command[0], folder] + [a.replace("{tmp}", str(tmp_path)) for a in command[1:]] + ["-q"] * \
        (command[0] != "estimate-noise")
    code, out, err = run(argv, capsys)
    assert code == 1
    assert [line for line in err.splitlines() if "error" in line] == [
        f"diffdenoise: error: cannot read image {folder / 'b.png'}: cannot identify image file "
        f"'{folder / 'b.png'}'"], err
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and p.parent != folder
                     and p.name != "clean.png")
    if command[0] == "estimate-noise":
        assert out.count("sigma=") == 2 and written == ["a_map.tif", "c_map.tif"]
    elif command[0] == "add-noise":
        assert written == ["a.png", "a_map.tif", "c.png", "c_map.tif"]
    else:
        assert written == ["a.png", "c.png"]


def test_blind_method_notes_an_ignored_sigma(tmp_path, clean, capsys):
    code, _, err = run(["denoise", clean, "-o", tmp_path / "o.png", "--method", "dncnn", "--sigma", "25"], capsys)
    assert code == 0 and "dncnn is blind" in err and "--sigma" in err


def test_sigma_out_of_range_is_rejected(clean, tmp_path):
    r = subprocess.run([sys.executable, "-m", "diffdenoise.cli", "denoise", str(clean), "-o",
                        str(tmp_path / "o.png"), "--sigma", "900"], capture_output=True, text=True)
    assert r.returncode == 2 and "sigma must be in (0, 255]" in r.stderr


def test_16bit_gradient_through_a_network_has_no_banding(tmp_path, capsys):
    """16-bit in, 16-bit out, and the values are not squeezed through 8 bits on the way (no banding)."""
    ramp = np.linspace(0.2, 0.8, 96 * 96, dtype=np.float32).reshape(96, 96)
    img = np.stack([ramp, ramp, ramp], axis=2)
    src = write_image(tmp_path / "ramp16.png", Image(img, None, 16))
    code, _, err = run(["denoise", src, "-o", tmp_path / "out16.png", "--method", "dncnn", "--device", "cpu", "-q"],
                       capsys)
    assert code == 0, err
    out = read_image(tmp_path / "out16.png")
    assert out.bit_depth == 16
    assert len(np.unique(out.data[:, :, 0])) > 2000          # an 8-bit round trip would leave at most 256
    assert np.abs(out.data - img).mean() < 0.005              # a clean smooth image stays itself


def test_without_o_results_go_beside_the_inputs(tmp_path, clean, capsys):
    """`diffdenoise denoise photo.jpg` with no options: photo_denoised.png beside it (JPEG written as PNG); a
    folder F into F_denoised/; add-noise and impute name theirs _noisy and _filled."""
    photo = tmp_path / "photo.jpg"
    write_image(photo, read_image(clean))
    assert run(["denoise", photo, "--method", "median", "-q"], capsys)[0] == 0
    assert read_image(tmp_path / "photo_denoised.png").data.shape == read_image(photo).data.shape
    folder = tmp_path / "shots"
    folder.mkdir()
    write_image(folder / "a.tif", read_image(clean))
    assert run(["denoise", folder, "--method", "median", "-q"], capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "shots_denoised").iterdir()) == ["a.tif"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.tif"]
    assert run(["add-noise", clean, "--noise", "gaussian:5", "-q"], capsys)[0] == 0
    assert run(["impute", clean, "--missing", "0.2", "--method", "telea", "-q"], capsys)[0] == 0
    assert (tmp_path / "clean_noisy.png").is_file() and (tmp_path / "clean_filled.png").is_file()


@pytest.mark.parametrize("argv", [["denoise", "x.png", "--sigma", "900"], ["denoise"], ["frobnicate"],
                                  ["denoise", "x.png", "--ensemble", "3"]])
def test_usage_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("diffdenoise: error: ") and "--help" in err, err
