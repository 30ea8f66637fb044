"""The benchmark harness: result shape, the SPEC §1 protocol checked independently, datasets, splits, failures."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from diffdenoise import registry
from diffdenoise.bench import format_table, load_benchmark, run_bench, write_csv, write_json
from diffdenoise.errors import DiffDenoiseError

SUMMARY_KEYS = {"method", "dataset", "noise", "psnr", "ssim", "seconds_per_image", "images"}
RECORD_KEYS = {"method", "image", "psnr", "ssim", "seconds"}
CALLS: list[tuple[torch.Tensor, object, object]] = []


def identity_method(device="cpu"):
    def method(y, sigma=None, *, generator=None, progress=None):
        CALLS.append((y.clone(), sigma, generator))
        return y.clone()
    return method


def broken_method(device="cpu"):
    raise DiffDenoiseError("weights/broken.safetensors not found")


def refusing_method(device="cpu"):
    def method(y, sigma=None, *, generator=None, progress=None):
        raise DiffDenoiseError("this method takes gray images only")
    return method


@pytest.fixture(autouse=True)
def test_methods(monkeypatch):
    for name, builder in (("identity", "identity_method"), ("broken", "broken_method"),
                          ("refusing", "refusing_method")):
        monkeypatch.setitem(registry.METHODS, name,
                            registry.MethodSpec(name, "test only", "classical", f"{__name__}:{builder}"))
    CALLS.clear()


def _save(path, a):
    PILImage.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(path)


@pytest.fixture()
def clean_dir(tmp_path):
    """3 small images (a gray one among RGB ones), written out of sorted order; and a stray non-image file."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, c in (("c.png", 3), ("a.png", 1), ("b.png", 3)):
        _save(folder / name, rng.integers(0, 256, (32, 32, c), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture()
def pairs_dir(tmp_path):
    folder = tmp_path / "pairs"
    (folder / "noisy").mkdir(parents=True)
    (folder / "clean").mkdir()
    rng = np.random.default_rng(1)
    for stem, c in (("p1", 3), ("p0", 1)):
        clean = rng.integers(20, 236, (32, 32, c), dtype=np.uint8)
        noisy = np.clip(clean + rng.integers(-20, 21, clean.shape), 0, 255).astype(np.uint8)
        _save(folder / "clean" / f"{stem}.png", clean)
        _save(folder / "noisy" / f"{stem}.png", noisy)
    return folder


def _read_u8(path):
    a = np.array(PILImage.open(path))
    return a[:, :, None] if a.ndim == 2 else a


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / mse)


def _noisy_u8(u8, index, spec="gaussian:25"):
    """SPEC §1 written out: x = u8/255, seeded noise, no clip on y; the identity output clipped and rounded."""
    from diffdenoise.noise import parse_noise
    x = torch.from_numpy(u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    y = parse_noise(spec).sample(x, torch.Generator().manual_seed(index))
    return np.rint(np.clip(y[0].permute(1, 2, 0).numpy().astype(np.float64), 0, 1) * 255).astype(np.uint8)


def test_result_has_the_documented_shape(clean_dir, tmp_path):
    result = run_bench(["identity"], clean_dir, "gaussian:25", progress=False)
    assert set(result) == {"summary", "records", "config"}
    (row,) = result["summary"]
    assert set(row) == SUMMARY_KEYS
    assert (row["method"], row["dataset"], row["images"]) == ("identity", "tiny", 3)
    assert row["noise"].startswith("gaussian")
    assert all(isinstance(row[k], float) for k in ("psnr", "ssim", "seconds_per_image"))
    assert len(result["records"]) == 3
    for record in result["records"]:
        assert RECORD_KEYS <= set(record)
        assert isinstance(record["psnr"], float) and isinstance(record["ssim"], float)
        assert record["seconds"] >= 0
    assert [r["image"] for r in result["records"]] == ["a.png", "b.png", "c.png"]
    assert row["psnr"] == pytest.approx(np.mean([r["psnr"] for r in result["records"]]))
    config = result["config"]
    for key in ("date", "hostname", "torch", "device_name", "cpu_count", "device", "noise", "sigma_mode", "limit"):
        assert key in config

    path = write_json(result, tmp_path / "out.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(result, default=str))
    rows = list(csv.DictReader(write_csv(result, tmp_path / "out.csv").open()))
    assert len(rows) == 3 and float(rows[0]["psnr"]) == pytest.approx(result["records"][0]["psnr"])
    assert not list(tmp_path.glob(".*tmp*"))                    # atomic writes leave no temporary files

    table = format_table(result)
    assert table.splitlines()[0] == "| method | dataset | noise | PSNR | SSIM | s/image | images |"
    assert f"| identity | tiny | {row['noise']} | {row['psnr']:.2f} |" in table


def test_identity_psnr_matches_an_independent_protocol(clean_dir):
    result = run_bench(["identity"], clean_dir, "gaussian:25", progress=False)
    for index, record in enumerate(result["records"]):
        clean = _read_u8(clean_dir / record["image"])
        assert record["psnr"] == pytest.approx(_psnr(_noisy_u8(clean, index), clean), abs=1e-9)
    # the method saw unclipped noisy input and the true sigma as a float
    y, sigma, _ = CALLS[0]
    assert y.dtype == torch.float32 and y.shape == (1, 1, 32, 32)
    assert y.min() < 0 or y.max() > 1
    assert isinstance(sigma, float) and sigma == pytest.approx(25 / 255)


def test_blind_mode_passes_no_sigma_and_the_same_noise(clean_dir):
    true = run_bench(["identity"], clean_dir, "gaussian:25", progress=False)
    blind = run_bench(["identity"], clean_dir, "gaussian:25", sigma_mode="auto", progress=False)
    assert all(sigma is None for _, sigma, _ in CALLS[3:])
    assert [r["psnr"] for r in true["records"]] == [r["psnr"] for r in blind["records"]]


def test_observed_mode_hands_out_the_map_of_y_not_of_x(clean_dir):
    """Signal-dependent noise: "true" gives the exact map (a function of the clean image), "observed" the model's
    map at the local mean of y; same noisy input either way, and Gaussian noise keeps its float sigma."""
    from diffdenoise.noise import parse_noise
    noise = "poisson_gaussian:0.02,5"
    true = run_bench(["identity"], clean_dir, noise, progress=False)
    observed = run_bench(["identity"], clean_dir, noise, sigma_mode="observed", progress=False)
    assert [r["psnr"] for r in true["records"]] == [r["psnr"] for r in observed["records"]]
    n = len(true["records"])
    (y0, exact, _), (y1, seen, _) = CALLS[0], CALLS[n]
    assert torch.equal(y0, y1)
    assert torch.allclose(seen, parse_noise(noise).observed_map(y1))
    assert not torch.allclose(seen, exact)
    run_bench(["identity"], clean_dir, "gaussian:25", sigma_mode="observed", progress=False)
    assert CALLS[-1][1] == pytest.approx(25 / 255)
    with pytest.raises(DiffDenoiseError, match="sigma_mode"):
        run_bench(["identity"], clean_dir, noise, sigma_mode="oracle", progress=False)


def test_clean_folders_default_to_gaussian_25(clean_dir):
    default = run_bench(["identity"], clean_dir, progress=False)
    explicit = run_bench(["identity"], clean_dir, "gaussian:25", progress=False)
    assert default["summary"][0]["noise"] == explicit["summary"][0]["noise"]
    assert [r["psnr"] for r in default["records"]] == [r["psnr"] for r in explicit["records"]]


def test_runs_are_deterministic(clean_dir):
    first = run_bench(["identity"], clean_dir, "gaussian:15", progress=False)
    second = run_bench(["identity"], clean_dir, "gaussian:15", progress=False)
    assert [r["psnr"] for r in first["records"]] == [r["psnr"] for r in second["records"]]
    assert [r["ssim"] for r in first["records"]] == [r["ssim"] for r in second["records"]]


def test_limit_keeps_the_first_images_and_their_noise(clean_dir):
    full = run_bench(["identity"], clean_dir, "gaussian:25", progress=False)
    head = run_bench(["identity"], clean_dir, "gaussian:25", limit=2, progress=False)
    assert head["summary"][0]["images"] == 2 and head["config"]["limit"] == 2
    assert head["records"] == [{**r, "seconds": h["seconds"]} for r, h in zip(full["records"][:2], head["records"])]


def test_records_per_method(clean_dir):
    result = run_bench(["identity", "refusing", "broken"], clean_dir, "gaussian:25", progress=False)
    assert [row["method"] for row in result["summary"]] == ["identity"]
    assert len(result["records"]) == 3
    assert set(result["config"]["skipped"]) == {"refusing", "broken"}
    assert "not found" in result["config"]["skipped"]["broken"]
    table = format_table(result)
    assert "| broken |" in table and "skipped: weights/broken.safetensors not found" in table


def test_failing_methods_alone_or_strict_raise(clean_dir):
    with pytest.raises(DiffDenoiseError, match="not found"):
        run_bench(["broken"], clean_dir, "gaussian:25", progress=False)
    with pytest.raises(DiffDenoiseError, match="gray images only"):
        run_bench(["identity", "refusing"], clean_dir, "gaussian:25", progress=False, on_error="raise")


def test_pairs_mode_compares_the_noisy_file_with_the_clean_one(pairs_dir):
    result = run_bench(["identity"], pairs_dir, progress=False)
    assert result["summary"][0]["noise"] == "real" and result["summary"][0]["dataset"] == "pairs"
    assert [r["image"] for r in result["records"]] == ["p0.png", "p1.png"]
    for record in result["records"]:
        clean = _read_u8(pairs_dir / "clean" / record["image"])
        noisy = _read_u8(pairs_dir / "noisy" / record["image"])
        assert record["psnr"] == pytest.approx(_psnr(noisy, clean), abs=1e-9)
    assert all(sigma is None for _, sigma, _ in CALLS)
    with pytest.raises(DiffDenoiseError, match="real noisy/clean pairs"):
        run_bench(["identity"], pairs_dir, "gaussian:25", progress=False)


def test_split_file_selects_images(pairs_dir):
    (pairs_dir / "test_split.txt").write_text("p1.png\n")
    test = load_benchmark(pairs_dir, split="test")
    train = load_benchmark(pairs_dir, split="train")
    assert (test.name, [i.name for i in test]) == ("pairs:test", ["p1.png"])
    assert (train.name, [i.name for i in train]) == ("pairs:train", ["p0.png"])
    result = run_bench(["identity"], pairs_dir, split="test", progress=False)
    assert result["summary"][0]["dataset"] == "pairs:test" and len(result["records"]) == 1
    with pytest.raises(DiffDenoiseError, match="valid: test, train"):
        load_benchmark(pairs_dir, split="val")
    (pairs_dir / "test_split.txt").write_text("p1\nmissing.png\n")
    with pytest.raises(DiffDenoiseError, match="missing.png"):
        load_benchmark(pairs_dir, split="test")


def test_bad_inputs_raise_one_clear_error(tmp_path, clean_dir, pairs_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.png").write_bytes(b"")
    for folder, match in ((tmp_path / "nope", "no such dataset folder"), (tmp_path / "empty", "no images"),
                          (tmp_path / "file.png", "must be a folder")):
        with pytest.raises(DiffDenoiseError, match=match):
            run_bench(["identity"], folder, "gaussian:25", progress=False)
    (pairs_dir / "noisy" / "p0.png").unlink()
    with pytest.raises(DiffDenoiseError, match="no partner"):
        load_benchmark(pairs_dir)
    with pytest.raises(DiffDenoiseError, match="unknown method"):
        run_bench(["no-such-method"], clean_dir, "gaussian:25", progress=False)
    with pytest.raises(DiffDenoiseError, match="does not take"):
        run_bench(["identity"], clean_dir, "gaussian:25", method_options={"identity": {"steps": 3}}, progress=False)
    with pytest.raises(DiffDenoiseError, match="limit"):
        run_bench(["identity"], clean_dir, "gaussian:25", limit=0, progress=False)
    (clean_dir / "a.png").write_bytes(b"not a png")
    with pytest.raises(DiffDenoiseError, match="a.png"):    # a broken file is a data error: never skipped
        run_bench(["identity"], clean_dir, "gaussian:25", progress=False)


def test_a_classical_method_end_to_end(clean_dir):
    """A registered classical method (Gaussian blur) runs through the harness beside the identity."""
    result = run_bench(["gaussian", "identity"], clean_dir, "gaussian:50", progress=False)
    assert [row["method"] for row in result["summary"]] == ["gaussian", "identity"]
    assert len(result["records"]) == 6 and all(0 < r["ssim"] <= 1 for r in result["records"])


def test_config_names_the_weights_each_method_could_load(clean_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.METHODS, "weighted",
                        registry.MethodSpec("weighted", "test only", "classical", f"{__name__}:identity_method",
                                            weights=("weighted-color", "weighted-gray")))
    weights = tmp_path / "weights"
    weights.mkdir()
    card = json.dumps({"net": {"name": "x"}, "steps": 1234}).encode()
    (weights / "weighted-color.json").write_bytes(card)          # no gray card: not listed
    monkeypatch.setenv("DIFFDENOISE_WEIGHTS", str(weights))
    config = run_bench(["weighted", "identity"], clean_dir, "gaussian:25", progress=False)["config"]
    import hashlib
    assert config["weights"] == {"weighted": {"weighted-color": {
        "card_sha256": hashlib.sha256(card).hexdigest()[:16], "steps": 1234}}}
    assert config["weights_dir"] == str(weights)
    assert run_bench(["identity"], clean_dir, "gaussian:25", progress=False)["config"]["weights_dir"] is None
