"""Image sets held in memory as uint8: clean images (Gaussian/synthetic training), noisy/clean pairs, MNIST.

Datasets return CLEAN images (and, for pairs, the real noisy partner); synthetic noise is added by a noise model in
the training task, never here.  Everything is decoded once; :mod:`.sampling` then cuts patches on the device.
"""
from __future__ import annotations

import glob
import gzip
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
import torch

from ..errors import DiffDenoiseError
from ..imageio import READ_SUFFIXES, quantize, read_image

Color = Literal["rgb", "gray", "rgb+gray"]
COLORS = ("rgb", "gray", "rgb+gray")
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights

# Folders that hold evaluation images (SPEC §1): no training source may read from them.  bsds500/val holds the
# CBSD68/BSD68 test images; the others are test sets outright.
EVAL_FOLDERS = (("bsds500", "val"), ("cbsd68",), ("bsd68",), ("set12",), ("kodak24",), ("kodak24_crop500",),
                ("fmdd",), ("sidd_sample",), ("rni15",), ("rni6",))


def default_data_root() -> Path:
    """``$DIFFDENOISE_DATA``, else ``<repo>/shared/data`` if it exists, else ``<repo>/../shared/data``."""
    env = os.environ.get("DIFFDENOISE_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    inside = repo / "shared" / "data"
    return inside if inside.is_dir() else repo.parent / "shared" / "data"


def check_training_path(path: Path) -> None:
    """Raise if ``path`` lies in an evaluation folder (bsds500/val, cbsd68, kodak24, ...): never train on those."""
    parts = [p.lower() for p in Path(path).resolve().parts]
    for folder in EVAL_FOLDERS:
        n = len(folder)
        if any(tuple(parts[i:i + n]) == folder for i in range(len(parts) - n + 1)):
            why = " (the CBSD68/BSD68 test images)" if folder == ("bsds500", "val") else ""
            raise DiffDenoiseError(f"refusing to train on {path}: {'/'.join(folder)} holds evaluation images{why}")


def expand_paths(patterns: str | Sequence[str], root: str | os.PathLike | None = None) -> list[Path]:
    """Sorted image files matched by files, folders or globs (relative ones taken from ``root``)."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    files: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if not p.is_absolute() and root is not None:
            p = Path(root) / p
        if p.is_dir():
            found = [q for q in p.iterdir() if q.suffix.lower() in READ_SUFFIXES]
        else:
            found = [Path(q) for q in glob.glob(str(p)) if Path(q).suffix.lower() in READ_SUFFIXES]
        if not found:
            raise DiffDenoiseError(f"no images match {p}")
        files += sorted(found)
    seen: set[Path] = set()
    return [f for f in files if not (f in seen or seen.add(f))]


def to_color(a: np.ndarray, channels: int) -> np.ndarray:
    """H x W x {1,3} uint8 -> ``channels`` channels: gray is replicated, colour becomes BT.601 luma."""
    if a.shape[2] == channels:
        return a
    if channels == 3:
        return np.ascontiguousarray(np.repeat(a, 3, axis=2))
    return np.rint(a.astype(np.float64) @ LUMA).clip(0, 255).astype(np.uint8)[:, :, None]


def read_uint8(path: Path, channels: int) -> np.ndarray:
    """Decode one file to H x W x ``channels`` uint8 (alpha dropped, 16-bit rounded to 8)."""
    return to_color(quantize(read_image(path).data, 8), channels)


def _read_all(files: Sequence[Path], channels: int) -> list[np.ndarray]:
    workers = max(1, min(8, os.cpu_count() or 1, len(files)))
    with ThreadPoolExecutor(workers) as pool:  # Pillow and OpenCV release the GIL while decoding
        return list(pool.map(lambda f: read_uint8(f, channels), files))


def channels_of(color: str) -> int:
    if color not in COLORS:
        raise DiffDenoiseError(f"unknown color {color!r}; valid: {', '.join(COLORS)}")
    return 1 if color == "gray" else 3


class CleanImages:
    """Clean images decoded once to uint8 H x W x C arrays.

    ``color``: ``"rgb"`` (3 channels; gray files replicated), ``"gray"`` (1 channel; colour files reduced to
    BT.601 luma, rounded), or ``"rgb+gray"`` (3 channels, and the sampler turns each crop into its luma, replicated,
    with probability 1/2, so that a colour model also learns achromatic images).  ``training=True`` refuses
    evaluation folders (:func:`check_training_path`).
    """

    def __init__(self, paths: str | Sequence[str], color: Color = "rgb", root: str | os.PathLike | None = None,
                 training: bool = True):
        self.color = color
        self.channels = channels_of(color)
        self.files = expand_paths(paths, root)
        if training:
            for f in self.files:
                check_training_path(f)
        self.images = _read_all(self.files, self.channels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.images[i]

    def sampler(self, device: str | torch.device = "cpu", exposure: tuple[float, float] | None = None):
        from .sampling import PatchSampler
        return PatchSampler(self.images, device, gray_prob=0.5 if self.color == "rgb+gray" else 0.0,
                            exposure=exposure)


def _read_names(spec: str | Iterable[str] | None, root: str | os.PathLike | None) -> set[str] | None:
    """A name list given inline or as a text file (one name a line)."""
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if not p.is_absolute() and root is not None:
            p = Path(root) / p
        if not p.is_file():
            raise DiffDenoiseError(f"name list not found: {p}")
        return {line.strip() for line in p.read_text().splitlines() if line.strip()}
    return {str(s) for s in spec}


def _matches(name: str, names: set[str]) -> bool:
    """Name equality up to the file extension on either side."""
    either = names | {Path(n).stem for n in names}
    return name in either or Path(name).stem in either


class PairedImages:
    """Real noisy/clean pairs: files of the same name in ``noisy_dir`` and ``clean_dir``.

    ``include`` / ``exclude``: names (with or without extension), inline or as a text file path.  With
    ``training=True`` the names listed in a ``test_split.txt`` beside the two folders (PolyU) are always left out;
    naming one of them in ``include`` raises.  ``self.noisy[i]`` and ``self.clean[i]`` are uint8 H x W x C.
    """

    def __init__(self, noisy_dir: str | os.PathLike, clean_dir: str | os.PathLike,
                 include: str | Sequence[str] | None = None, exclude: str | Sequence[str] | None = None,
                 color: Literal["rgb", "gray"] = "rgb", root: str | os.PathLike | None = None,
                 training: bool = True):
        noisy_dir, clean_dir = (Path(d) if Path(d).is_absolute() or root is None else Path(root) / d
                                for d in (noisy_dir, clean_dir))
        for d in (noisy_dir, clean_dir):
            if not d.is_dir():
                raise DiffDenoiseError(f"no such folder: {d}")
            if training:
                check_training_path(d)
        self.channels = channels_of(color)
        inc, exc = _read_names(include, root), _read_names(exclude, root) or set()
        if training:
            split = noisy_dir.parent / "test_split.txt"
            test = _read_names(str(split), None) if split.is_file() else set()
            if inc is not None:
                bad = sorted(n for n in inc if _matches(n, test))
                if bad:
                    raise DiffDenoiseError(f"refusing to train on test pairs listed in {split}: {', '.join(bad)}")
            exc = exc | test
        names = sorted(p.name for p in noisy_dir.iterdir() if p.suffix.lower() in READ_SUFFIXES)
        names = [n for n in names if (clean_dir / n).is_file()]
        if inc is not None:
            names = [n for n in names if _matches(n, inc)]
        names = [n for n in names if not _matches(n, exc)]
        if not names:
            raise DiffDenoiseError(f"no noisy/clean pairs found in {noisy_dir} and {clean_dir}")
        self.names = names
        self.noisy = _read_all([noisy_dir / n for n in names], self.channels)
        self.clean = _read_all([clean_dir / n for n in names], self.channels)
        for n, a, b in zip(names, self.noisy, self.clean):
            if a.shape != b.shape:
                raise DiffDenoiseError(f"pair {n}: noisy {a.shape} and clean {b.shape} differ in size")

    def __len__(self) -> int:
        return len(self.names)

    def sampler(self, device: str | torch.device = "cpu"):
        from .sampling import PairedSampler
        return PairedSampler(self.clean, self.noisy, device)


class MNIST:
    """MNIST digits from the IDX gzip files (images at byte offset 16, labels at 8), zero-padded to 32 x 32.

    Only the 10k test file is shipped (MANIFEST), so it is split here: the first 9000 digits are ``"train"``, the
    last 1000 ``"test"``.  ``images``: uint8 N x 1 x 32 x 32 tensor; ``labels``: int64 N.
    """

    TRAIN = 9000

    def __init__(self, path: str | os.PathLike, split: Literal["train", "test", "all"] = "train"):
        path = Path(path)
        img_file, lab_file = path / "t10k-images-idx3-ubyte.gz", path / "t10k-labels-idx1-ubyte.gz"
        for f in (img_file, lab_file):
            if not f.is_file():
                raise DiffDenoiseError(f"MNIST file not found: {f}")
        images = np.frombuffer(gzip.open(img_file).read(), np.uint8, offset=16).reshape(-1, 28, 28)
        labels = np.frombuffer(gzip.open(lab_file).read(), np.uint8, offset=8).astype(np.int64)
        if len(images) != len(labels):
            raise DiffDenoiseError(f"MNIST: {len(images)} images but {len(labels)} labels in {path}")
        part = {"train": slice(0, self.TRAIN), "test": slice(self.TRAIN, None), "all": slice(None)}
        if split not in part:
            raise DiffDenoiseError(f"unknown MNIST split {split!r}; valid: train, test, all")
        images = np.pad(images[part[split]], ((0, 0), (2, 2), (2, 2)))
        self.images = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
        self.labels = torch.from_numpy(np.ascontiguousarray(labels[part[split]]))
        self.channels = 1

    def __len__(self) -> int:
        return len(self.labels)

    def sampler(self, device: str | torch.device = "cpu"):
        from .sampling import LabeledSampler
        return LabeledSampler(self.images, self.labels, device)
