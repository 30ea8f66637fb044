"""Training data: loading, colour conversion, the device patch sampler, pairs, mixtures, MNIST, the eval guard."""
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffdenoise.data import (MNIST, CleanImages, Mixture, PairedImages, build_data, check_training_path,
                              default_data_root, expand_paths)
from diffdenoise.errors import DiffDenoiseError


def _save(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for i in range(3):
        _save(r / "rgb" / f"{i}.png", rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8))
    _save(r / "gray" / "g.png", rng.integers(0, 256, (36, 44), dtype=np.uint8))
    _save(r / "small" / "s.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    _save(r / "bsds500" / "train" / "t.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    _save(r / "bsds500" / "val" / "v.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    for name in ("a", "b", "c"):
        clean = rng.integers(0, 200, (40, 40, 3), dtype=np.uint8)
        _save(r / "pairs" / "clean" / f"{name}.png", clean)
        _save(r / "pairs" / "noisy" / f"{name}.png", clean + 10)
    (r / "pairs" / "test_split.txt").write_text("c.png\n")
    return r


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_batch_shape_range_and_determinism(root):
    s = CleanImages(["rgb/*.png"], root=root).sampler()
    a, b = s.batch(6, 16, gen(1)), s.batch(6, 16, gen(1))
    assert a.shape == (6, 3, 16, 16) and a.dtype == torch.float32
    assert 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, s.batch(6, 16, gen(2)))


def test_crops_are_dihedral_transforms_of_the_image(root):
    img = CleanImages(["gray/g.png"], color="gray", root=root)
    full = torch.from_numpy(img[0][:, :, 0]).float() / 255
    patch = 36
    crops = img.sampler().batch(40, patch, gen())
    views = []
    for top in range(full.shape[0] - patch + 1):
        for left in range(full.shape[1] - patch + 1):
            c = full[top:top + patch, left:left + patch]
            for t in (c, c.T):
                views += [t, t.flip(0), t.flip(1), t.flip(0).flip(1)]
    orientations = set()
    for crop in crops[:, 0]:
        found = [i for i, v in enumerate(views) if torch.equal(crop, v)]
        assert found
        orientations.add(found[0] % 8)
    assert len(orientations) >= 5  # 40 draws of 8 equally likely orientations


def test_color_conversion(root):
    rgb_from_gray = CleanImages(["gray/g.png"], color="rgb", root=root)[0]
    assert rgb_from_gray.shape[2] == 3
    assert (rgb_from_gray == rgb_from_gray[:, :, :1]).all()
    src = np.array(Image.open(root / "rgb" / "0.png"))
    gray = CleanImages(["rgb/0.png"], color="gray", root=root)[0]
    want = np.rint(src.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    assert gray.shape == src.shape[:2] + (1,) and np.array_equal(gray[:, :, 0], want)
    mixed = CleanImages(["rgb/*.png"], color="rgb+gray", root=root).sampler().batch(64, 8, gen())
    achromatic = ((mixed[:, 0] == mixed[:, 1]) & (mixed[:, 1] == mixed[:, 2])).flatten(1).all(1)
    assert 10 < int(achromatic.sum()) < 54


def test_small_images_are_skipped_and_too_large_patch_raises(root):
    s = CleanImages(["rgb/*.png", "small/*.png"], root=root).sampler()
    assert s.batch(4, 32, gen()).shape == (4, 3, 32, 32)
    with pytest.raises(DiffDenoiseError, match="at least"):
        s.batch(4, 64, gen())


def test_never_train_on_validation_images(root):
    with pytest.raises(DiffDenoiseError, match="bsds500/val"):
        build_data([{"kind": "clean", "paths": ["bsds500/*/*.png"]}], root)
    with pytest.raises(DiffDenoiseError, match="bsds500/val"):
        CleanImages([str(root / "bsds500" / "val")])
    with pytest.raises(DiffDenoiseError):
        check_training_path(Path("/x/shared/data/cbsd68/101085.png"))
    check_training_path(root / "bsds500" / "train" / "t.png")
    assert len(CleanImages(["bsds500/val/*.png"], root=root, training=False)) == 1


def test_source_specs_are_strict(root):
    with pytest.raises(DiffDenoiseError, match="valid: kind, paths"):
        build_data([{"kind": "clean", "paths": ["rgb/*.png"], "colour": "rgb"}], root)
    with pytest.raises(DiffDenoiseError, match="unknown data source kind"):
        build_data([{"kind": "foo"}], root)
    with pytest.raises(DiffDenoiseError, match="no images match"):
        expand_paths(["nothing/*.png"], root)


def test_pairs_share_crops_and_drop_test_split(root):
    pairs = PairedImages("pairs/noisy", "pairs/clean", root=root)
    assert pairs.names == ["a.png", "b.png"]                  # c is in test_split.txt
    x, y = pairs.sampler().batch(8, 24, gen())
    torch.testing.assert_close(y - x, torch.full_like(x, 10 / 255))
    with pytest.raises(DiffDenoiseError, match="test pairs"):
        PairedImages("pairs/noisy", "pairs/clean", include=["c"], root=root)
    assert PairedImages("pairs/noisy", "pairs/clean", exclude=["a"], root=root).names == ["b.png"]


def test_mixture_rows_flags_and_shares(root):
    data = build_data([{"kind": "clean", "paths": ["rgb/*.png"], "weight": 3},
                       {"kind": "paired", "noisy": "pairs/noisy", "clean": "pairs/clean", "weight": 1}], root)
    assert isinstance(data, Mixture)
    batch = data.batch(8, 16, gen())
    assert batch["x"].shape == batch["y"].shape == (8, 3, 16, 16)
    paired = batch["paired"]
    assert paired.tolist() == [False] * 6 + [True] * 2
    assert torch.isnan(batch["y"][~paired]).all() and torch.isfinite(batch["y"][paired]).all()
    counts = np.array([data.counts(10) for _ in range(100)])
    assert (counts.sum(1) == 10).all() and counts[:, 1].sum() == 250


def _idx(path: Path, header: bytes, payload: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + payload.tobytes())


def test_mnist_reader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", bytes(16), images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", bytes(8), labels)
    m = MNIST(tmp_path, split="all")
    assert m.images.shape == (12, 1, 32, 32) and m.images.dtype == torch.uint8
    assert (m.images[:, :, :2] == 0).all() and torch.equal(m.images[:, 0, 2:30, 2:30], torch.from_numpy(images))
    assert m.labels.tolist() == labels.tolist()
    x, label = m.sampler().batch(5, 32, gen())
    assert x.shape == (5, 1, 32, 32) and label.dtype == torch.int64


@pytest.mark.skipif(not (default_data_root() / "mnist").is_dir(), reason="shared data not present")
def test_mnist_split_on_shared_data():
    train, test = MNIST(default_data_root() / "mnist", "train"), MNIST(default_data_root() / "mnist", "test")
    assert (len(train), len(test)) == (9000, 1000)


def test_exposure_scales_each_crop_by_one_factor_in_range(root):
    plain = build_data([{"kind": "clean", "paths": ["gray/g.png"]}], root, color="gray")
    dim = build_data([{"kind": "clean", "paths": ["gray/g.png"], "exposure": [0.1, 0.5]}], root, color="gray")
    a, b = plain.batch(64, 16, gen(3))["x"], dim.batch(64, 16, gen(3))["x"]
    assert torch.equal(a, plain.batch(64, 16, gen(3))["x"])
    # the same crops, each scaled by one factor in [0.1, 0.5]; log-uniform draws reach both ends
    ratio = b.flatten(1).sum(1) / a.flatten(1).sum(1)
    torch.testing.assert_close(b, a * ratio.view(-1, 1, 1, 1), rtol=1e-5, atol=1e-6)
    assert 0.1 - 1e-6 <= ratio.min() < 0.15 and 0.4 < ratio.max() <= 0.5 + 1e-6
    for bad in ([0, 1], [0.5, 0.2], [0.2, 1.5], [0.5]):
        with pytest.raises(DiffDenoiseError, match="exposure"):
            build_data([{"kind": "clean", "paths": ["gray/g.png"], "exposure": bad}], root, color="gray")


def test_mixture_counts_are_never_negative_and_keep_the_shares():
    """Small per-process batches (1 or 2 images over three sources) once gave a source -1 images."""
    from diffdenoise.data.sampling import Mixture

    class Source:
        channels, device, paired, labeled = 3, "cpu", False, False

    for weights in ([0.7, 0.3], [0.6, 0.3, 0.1], [0.9, 0.05, 0.05]):
        for n in (1, 2, 3, 7):
            mix = Mixture([Source() for _ in weights], weights)
            total = np.zeros(len(weights))
            for _ in range(500):
                counts = mix.counts(n)
                assert min(counts) >= 0 and sum(counts) == n, (weights, n, counts)
                total += counts
            assert np.allclose(total / (500 * n), np.array(weights) / sum(weights), atol=0.01)
