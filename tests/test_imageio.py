"""Image I/O: round trips for every supported depth/layout, EXIF orientation, atomic writes, clear errors."""
import numpy as np
import pytest
from PIL import Image as PILImage

from diffdenoise.errors import DiffDenoiseError
from diffdenoise.imageio import Image, from_tensor, quantize, read_image, to_tensor, write_image


def _rand(h, w, c, seed=0):
    return np.random.default_rng(seed).random((h, w, c)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels,alpha", [(1, False), (3, False), (3, True), (1, True)])
def test_lossless_round_trip(tmp_path, suffix, depth, channels, alpha):
    data = _rand(17, 23, channels)
    a = _rand(17, 23, 1, seed=1)[:, :, 0] if alpha else None
    path = write_image(tmp_path / f"x{suffix}", Image(data, a, depth))
    back = read_image(path)
    assert back.bit_depth == depth
    assert back.data.shape == data.shape
    np.testing.assert_array_equal(quantize(back.data, depth), quantize(data, depth))
    if alpha:
        np.testing.assert_array_equal(quantize(back.alpha, depth), quantize(a, depth))
    else:
        assert back.alpha is None


def test_16bit_keeps_precision(tmp_path):
    ramp = np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64, 1).repeat(3, axis=2)
    back = read_image(write_image(tmp_path / "ramp.png", Image(ramp, None, 16)))
    assert np.abs(back.data - ramp).max() < 1 / 65535
    assert len(np.unique(back.data[:, :, 0])) == 4096  # no 8-bit banding


def test_jpeg_is_8bit_and_close(tmp_path):
    data = np.full((32, 32, 3), 0.5, np.float32)
    back = read_image(write_image(tmp_path / "x.jpg", Image(data, None, 16)))
    assert back.bit_depth == 8 and np.abs(back.data - 0.5).max() < 2 / 255


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    from PIL import ImageOps
    arr = (np.arange(6 * 4 * 3) % 255).astype(np.uint8).reshape(6, 4, 3)
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    im.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(path)))
    np.testing.assert_array_equal(quantize(read_image(path).data), expected)


def test_tensor_round_trip():
    data = _rand(5, 7, 3)
    x = to_tensor(data)
    assert x.shape == (1, 3, 5, 7)
    np.testing.assert_array_equal(from_tensor(x), data)


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_bad_files_raise_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is None:  # truncated PNG
        PILImage.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(path)
        path.write_bytes(path.read_bytes()[:80])
    else:
        path.write_bytes(content)
    with pytest.raises(DiffDenoiseError) as e:
        read_image(path)
    assert "\n" not in str(e.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DiffDenoiseError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(DiffDenoiseError, match="folder"):
        read_image(tmp_path)


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    import PIL.Image
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(PIL.Image.Image, "save", boom)
    with pytest.raises(OSError):
        write_image(tmp_path / "out.png", Image(_rand(4, 4, 3), None, 8))
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    """The temporary file behind an atomic write gets the mode a plain open() would give, under the umask of the
    moment (the OS applies it at creation), so outputs are neither private nor wider than usual."""
    import os
    old = os.umask(0o022)
    try:
        out = write_image(tmp_path / "out.png", Image(_rand(4, 4, 3), None, 8))
        assert (out.stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        out = write_image(tmp_path / "private.tif", Image(_rand(4, 4, 1), None, 16))
        assert (out.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)


def test_bad_output_folder_and_suffix(tmp_path):
    with pytest.raises(DiffDenoiseError, match="does not exist"):
        write_image(tmp_path / "nowhere" / "x.png", Image(_rand(4, 4, 3), None, 8))
    with pytest.raises(DiffDenoiseError, match="cannot write"):
        write_image(tmp_path / "x.gif", Image(_rand(4, 4, 3), None, 8))
