"""Benchmark datasets: a folder of clean images, or a folder of real noisy/clean pairs.

Two layouts are recognised (SPEC §1):

- **clean**: image files directly in the folder (PNG, JPEG, TIFF, BMP, WebP), in sorted file-name order.  The
  position of an image in that order is the seed of its synthetic noise, so ``limit`` keeps the first images' noise.
- **pairs**: ``noisy/`` and ``clean/`` subfolders whose files match by stem (``noisy/a.jpg`` with ``clean/a.png``).

A split is a text file ``<split>_split.txt`` in the folder, one file name (or stem) a line, e.g. PolyU's
``test_split.txt``.  ``split="train"`` without a ``train_split.txt`` means every item not in ``test_split.txt``.
A selected split is a dataset of its own: it is named ``<folder>:<split>`` and its images are indexed (and seeded)
by their order inside the split.

Images are read lazily, one at a time, as uint8 H x W x C (C = 1 or 3; alpha is dropped; 16-bit files are rounded to
8 bits, since the protocol measures on uint8).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from ..errors import DiffDenoiseError
from ..imageio import READ_SUFFIXES, quantize, read_image


@dataclass(frozen=True)
class BenchItem:
    name: str                   # file name of the clean image (pairs: of the clean file)
    clean: Path
    noisy: Path | None = None   # the real noisy partner (pairs only)


@dataclass(frozen=True)
class BenchData:
    name: str                           # folder name, plus ":<split>" when a split was selected
    path: Path                          # the dataset folder, resolved
    kind: Literal["clean", "pairs"]
    items: tuple[BenchItem, ...]
    split: str | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[BenchItem]:
        return iter(self.items)

    def head(self, n: int | None) -> "BenchData":
        """The first ``n`` items (all when ``n`` is None)."""
        return self if n is None else replace(self, items=self.items[:n])


def read_u8(path: str | Path) -> np.ndarray:
    """Read an image as uint8 H x W x C (C = 1 or 3), the form the protocol measures on."""
    return quantize(read_image(path).data, 8)


def _image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in READ_SUFFIXES),
                  key=lambda p: p.name)


def _pairs(folder: Path) -> tuple[BenchItem, ...]:
    noisy_dir, clean_dir = folder / "noisy", folder / "clean"
    if not (noisy_dir.is_dir() and clean_dir.is_dir()):
        raise DiffDenoiseError(f"a pairs dataset needs both noisy/ and clean/ subfolders: {folder}")
    noisy = {p.stem: p for p in _image_files(noisy_dir)}
    clean = {p.stem: p for p in _image_files(clean_dir)}
    for label, files in (("noisy", noisy), ("clean", clean)):
        if not files:
            raise DiffDenoiseError(f"no images in {folder / label}")
    only_noisy, only_clean = sorted(noisy.keys() - clean.keys()), sorted(clean.keys() - noisy.keys())
    if only_noisy or only_clean:
        first = (only_noisy or only_clean)[:3]
        where = "clean/" if only_noisy else "noisy/"
        raise DiffDenoiseError(f"{len(only_noisy) + len(only_clean)} file(s) in {folder} have no partner in the other "
                               f"subfolder, e.g. {', '.join(first)} missing from {where}")
    return tuple(BenchItem(clean[s].name, clean[s], noisy[s]) for s in sorted(clean, key=lambda s: clean[s].name))


def _read_names(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _select(folder: Path, items: tuple[BenchItem, ...], split: str) -> tuple[BenchItem, ...]:
    split_file = folder / f"{split}_split.txt"
    complement = False
    if not split_file.is_file():
        if split == "train" and (folder / "test_split.txt").is_file():
            split_file, complement = folder / "test_split.txt", True
        else:
            found = sorted(p.name[: -len("_split.txt")] for p in folder.glob("*_split.txt"))
            valid = ", ".join(found + (["train"] if "test" in found and "train" not in found else [])) or "none"
            raise DiffDenoiseError(f"no split {split!r} in {folder} (no {split}_split.txt); valid: {valid}")
    names = _read_names(split_file)
    by_key: dict[str, int] = {}
    for i, item in enumerate(items):
        by_key[item.name] = i
        by_key.setdefault(Path(item.name).stem, i)
    missing = [n for n in names if n not in by_key and Path(n).stem not in by_key]
    if missing:
        raise DiffDenoiseError(f"{split_file.name} names {len(missing)} image(s) not in {folder}, e.g. "
                               f"{', '.join(missing[:3])}")
    chosen = {by_key.get(n, by_key.get(Path(n).stem)) for n in names}
    if complement:
        chosen = set(range(len(items))) - chosen
    return tuple(item for i, item in enumerate(items) if i in chosen)


def load_benchmark(path: str | Path, split: str | None = None, limit: int | None = None) -> BenchData:
    """Describe the dataset in ``path`` (clean images or noisy/clean pairs); see the module docstring."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DiffDenoiseError(f"no such dataset folder: {folder}")
    if not folder.is_dir():
        raise DiffDenoiseError(f"dataset must be a folder of images or of noisy/ and clean/ subfolders: {folder}")
    if limit is not None and limit < 1:
        raise DiffDenoiseError(f"limit must be at least 1, got {limit}")
    folder = folder.resolve()
    files = _image_files(folder)
    if files:
        kind: Literal["clean", "pairs"] = "clean"
        items = tuple(BenchItem(p.name, p) for p in files)
    elif (folder / "noisy").is_dir() or (folder / "clean").is_dir():
        kind, items = "pairs", _pairs(folder)
    else:
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        hint = f" (subfolders: {', '.join(subdirs[:6])}; point at one of them)" if subdirs else ""
        raise DiffDenoiseError(f"no images in {folder}{hint}")
    name = folder.name
    if split is not None:
        items = _select(folder, items, split)
        name = f"{name}:{split}"
    return BenchData(name, folder, kind, items, split).head(limit)
