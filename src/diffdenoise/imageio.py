"""Reading and writing images: 8/16-bit PNG, TIFF and JPEG; gray, RGB and alpha; EXIF orientation.

Inside the library an image is float32 in [0, 1].  ``read_image`` returns an :class:`Image` holding the colour
planes (H x W x C, C = 1 or 3), the alpha plane if any, and the bit depth of the file so that the output can follow
the input.  Writes are atomic: a temporary file in the target folder, then a rename.
"""
from __future__ import annotations

import os
import secrets
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import DiffDenoiseError

READ_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp"}
WRITE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}
MAX_PIXELS = 250_000_000  # refuse decompression bombs and absurd inputs (a 24 MP photo is ~10x under this)


@dataclass(frozen=True)
class Image:
    data: np.ndarray            # float32, H x W x C, C in {1, 3}, values in [0, 1]
    alpha: np.ndarray | None    # float32, H x W, or None
    bit_depth: int              # 8 or 16: what the file held (float TIFF counts as 16)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape  # type: ignore[return-value]

    def with_data(self, data: np.ndarray) -> "Image":
        return replace(self, data=np.ascontiguousarray(data, dtype=np.float32))


def to_tensor(data: np.ndarray) -> torch.Tensor:
    """H x W x C float array -> 1 x C x H x W float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1), dtype=np.float32)).unsqueeze(0)


def from_tensor(x: torch.Tensor) -> np.ndarray:
    """1 x C x H x W tensor -> H x W x C float32 array."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected a 1xCxHxW tensor, got {tuple(x.shape)}")
    return x[0].detach().float().cpu().permute(1, 2, 0).numpy()


def quantize(data: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Clip to [0, 1] and round to uint8 or uint16."""
    peak = 255 if bit_depth == 8 else 65535
    out = np.clip(np.asarray(data, dtype=np.float64), 0.0, 1.0) * peak
    return np.rint(out).astype(np.uint8 if bit_depth == 8 else np.uint16)


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR; (8, -1) when it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return 8, -1
    return head[24], head[25]


def _write_png16_gray_alpha(path: str, a: np.ndarray) -> None:
    """16-bit gray+alpha PNG (colour type 4): neither Pillow nor OpenCV writes it, so encode the chunks here."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    h, w = a.shape[:2]
    rows = np.ascontiguousarray(a.astype(">u2")).reshape(h, w * 2)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation tag (1..8) -> the upright array (the same rules as Pillow's ``exif_transpose``)."""
    ops = {2: lambda z: z[:, ::-1], 3: lambda z: z[::-1, ::-1], 4: lambda z: z[::-1],
           5: lambda z: np.swapaxes(z, 0, 1), 6: lambda z: np.rot90(z, -1),
           7: lambda z: np.swapaxes(z, 0, 1)[::-1, ::-1], 8: lambda z: np.rot90(z, 1)}
    fn = ops.get(orientation)
    return np.ascontiguousarray(fn(a)) if fn else a


def _to_float(a: np.ndarray) -> tuple[np.ndarray, int]:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0, 8
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0, 16
    if a.dtype == bool:
        return a.astype(np.float32), 8
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(a.astype(np.float32), 0.0, 1.0), 16
    if np.issubdtype(a.dtype, np.integer):
        hi = float(np.iinfo(a.dtype).max)
        return (np.clip(a, 0, None).astype(np.float64) / hi).astype(np.float32), 16
    raise DiffDenoiseError(f"unsupported pixel type {a.dtype}")


def _split_planes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """H x W (x C) -> colour planes H x W x {1,3} and alpha plane."""
    if a.ndim == 2:
        return a[:, :, None], None
    if a.ndim != 3:
        raise DiffDenoiseError(f"unsupported image layout {a.shape}")
    c = a.shape[2]
    if c == 1:
        return a, None
    if c == 2:
        return a[:, :, :1], a[:, :, 1]
    if c == 3:
        return a, None
    if c == 4:
        return a[:, :, :3], a[:, :, 3]
    raise DiffDenoiseError(f"unsupported number of channels: {c}")


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile
    a = tifffile.imread(str(path))
    a = np.squeeze(a) if a.ndim > 3 else a
    if a.ndim == 3 and a.shape[0] in (1, 2, 3, 4) and a.shape[2] not in (1, 2, 3, 4):
        a = np.moveaxis(a, 0, 2)  # planar configuration
    return a


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image as PILImage
    PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS
    with warnings.catch_warnings():           # between 1 and 2 x MAX_PIXELS Pillow warns; the size check below
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)  # refuses such images in one line
        im = PILImage.open(path)
    with im:
        if im.size[0] * im.size[1] > MAX_PIXELS:           # before decoding it into memory
            raise DiffDenoiseError(f"image too large ({im.size[0]}x{im.size[1]}): {path}")
        im.load()
        orientation = im.getexif().get(0x0112, 1)
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L"):
            a = np.array(im, dtype=np.uint16)
        elif mode == "I":
            a = np.clip(np.array(im, dtype=np.int64), 0, 65535).astype(np.uint16)
        elif mode == "F":
            a = np.array(im, dtype=np.float32)
        elif mode in ("L", "RGB", "RGBA", "LA"):
            a = np.array(im)
        elif mode == "1":
            a = np.array(im.convert("L"))
        elif mode in ("P", "PA"):
            a = np.array(im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB"))
        else:  # CMYK, YCbCr, LAB, HSV...
            a = np.array(im.convert("RGB"))
    return _apply_orientation(a, int(orientation))


def _read_cv2_16bit(path: Path, color_type: int) -> np.ndarray:
    import cv2
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise DiffDenoiseError(f"cannot decode {path}")
    if color_type == 4 and a.ndim == 3:  # gray + alpha, expanded to BGRA by OpenCV
        a = a[:, :, [0, 3]] if a.shape[2] == 4 else a
    elif a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    from PIL import Image as PILImage
    with PILImage.open(path) as im:
        orientation = im.getexif().get(0x0112, 1)
    return _apply_orientation(np.ascontiguousarray(a), int(orientation))


def read_image(path: str | os.PathLike) -> Image:
    """Read an image file; one clear :class:`DiffDenoiseError` for anything unreadable."""
    path = Path(path)
    if not path.exists():
        raise DiffDenoiseError(f"no such file: {path}")
    if path.is_dir():
        raise DiffDenoiseError(f"is a folder, not an image: {path}")
    if path.stat().st_size == 0:
        raise DiffDenoiseError(f"empty file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            a = _read_tiff(path)
        elif suffix == ".png" and _png_header(path)[0] == 16:
            a = _read_cv2_16bit(path, _png_header(path)[1])
        else:
            a = _read_pillow(path)
    except DiffDenoiseError:
        raise
    except Exception as e:  # Pillow/tifffile/OpenCV raise many types for broken files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DiffDenoiseError(f"cannot read image {path}: {msg}") from None
    if a.size == 0 or min(a.shape[:2]) == 0:
        raise DiffDenoiseError(f"image has zero size: {path}")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise DiffDenoiseError(f"image too large ({a.shape[1]}x{a.shape[0]}): {path}")
    color, alpha = _split_planes(a)
    data, depth = _to_float(color)
    alpha_f = _to_float(alpha)[0] if alpha is not None else None
    return Image(np.ascontiguousarray(data), alpha_f, depth)


def _compose(img: Image, bit_depth: int) -> np.ndarray:
    planes = quantize(img.data, bit_depth)
    if img.alpha is not None:
        planes = np.concatenate([planes, quantize(img.alpha, bit_depth)[:, :, None]], axis=2)
    if planes.shape[2] == 1:
        planes = planes[:, :, 0]
    return planes


def _create_beside(path: Path) -> str:
    """A new empty file beside ``path`` with a unique hidden name, created as ``open(path, "w")`` would create it
    (0o666 under the umask, applied by the OS at creation: no umask read, safe in threads)."""
    for _ in range(100):
        tmp = path.parent / f".{path.stem}.tmp-{secrets.token_hex(6)}{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return str(tmp)
        except FileExistsError:
            continue
    raise DiffDenoiseError(f"cannot create a temporary file beside {path}")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` (same suffix); rename it onto ``path`` only if the block
    succeeds, else delete it: a reader never sees a half-written output."""
    tmp = _create_beside(Path(path))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_image(path: str | os.PathLike, img: Image | np.ndarray, bit_depth: int | None = None,
                jpeg_quality: int = 95) -> Path:
    """Write atomically; ``bit_depth`` defaults to the image's own (JPEG is always 8-bit)."""
    path = Path(path)
    if not isinstance(img, Image):
        arr = np.asarray(img, dtype=np.float32)
        img = Image(arr[:, :, None] if arr.ndim == 2 else arr, None, 8)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise DiffDenoiseError(f"cannot write {suffix or 'files without a suffix'}; use one of "
                               f"{', '.join(sorted(WRITE_SUFFIXES))}")
    depth = bit_depth or img.bit_depth
    if suffix in (".jpg", ".jpeg"):
        depth = 8
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DiffDenoiseError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise DiffDenoiseError(f"output folder is not writable: {folder}")
    a = _compose(img, depth)
    with atomic_output(path) as tmp:
        if suffix in (".tif", ".tiff"):
            import tifffile
            tifffile.imwrite(tmp, a, photometric="rgb" if img.data.shape[2] == 3 else "minisblack",
                             extrasamples=("unassalpha",) if img.alpha is not None else None,
                             compression="zlib")
        elif suffix == ".png" and depth == 16:
            import cv2
            b = a
            if a.ndim == 3:
                b = a[:, :, ::-1] if a.shape[2] == 3 else a[:, :, [2, 1, 0, 3]] if a.shape[2] == 4 else a
            if a.ndim == 3 and a.shape[2] == 2:
                _write_png16_gray_alpha(tmp, a)
            elif not cv2.imwrite(tmp, np.ascontiguousarray(b)):
                raise DiffDenoiseError(f"cannot write {path}")
        else:
            from PIL import Image as PILImage
            mode = {2: "L", 3: None}[a.ndim] if a.ndim == 2 else {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
            im = PILImage.fromarray(a, mode=mode) if mode else PILImage.fromarray(a)
            if suffix in (".jpg", ".jpeg"):
                if im.mode in ("RGBA", "LA"):
                    im = im.convert("RGB" if im.mode == "RGBA" else "L")
                im.save(tmp, quality=jpeg_quality)
            else:
                im.save(tmp)
    return path
