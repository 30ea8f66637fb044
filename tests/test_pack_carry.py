"""benchmarks/pack_carry.sh on a fake data tree: the parts it packs, and what it must leave out."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pack_carry.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _run(cwd: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATA": str(data), "WEIGHTS": str(cwd / "weights")}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_pack_data_init_and_unpack(tmp_path):
    data, repo = tmp_path / "data", tmp_path / "repo"
    repo.mkdir()
    for split in ("train", "test", "val"):
        _touch(data / "bsds500" / split / f"{split}1.jpg")
    names = [f"M_{i:02d}.png" for i in range(13)]
    for n in names:
        _touch(data / "fmdd" / "noisy" / n)
        _touch(data / "fmdd" / "clean" / n)
    for sub in ("noisy", "clean"):
        _touch(data / "polyu" / sub / "a.jpg")
    _touch(data / "polyu" / "test_split.txt", "a.jpg\n")
    r = _run(repo, data, "data", "d", "bsds500", "polyu", "fmdd8")
    assert r.returncode == 0, r.stderr
    out = repo / ".carry" / "d"
    assert sorted(p.name for p in (out / "bsds500").iterdir()) == ["test", "train"]       # never val
    assert sorted(p.name for p in (out / "e7" / "fmdd" / "noisy").iterdir()) == names[::6]
    assert (out / "e7" / "fmdd" / "clean" / names[6]).is_file() and (out / "polyu" / "test_split.txt").is_file()

    for f in ("big.json", "big-00001-of-00002.safetensors", "big-00002-of-00002.safetensors",
              "small.json", "small.safetensors", "other.safetensors"):
        _touch(repo / "weights" / f)
    assert _run(repo, data, "init", "i", "big", "small").returncode == 0
    assert sorted(p.name for p in (repo / ".carry" / "i").iterdir()) == [
        "big-00001-of-00002.safetensors", "big-00002-of-00002.safetensors", "big.json", "small.json",
        "small.safetensors"]
    missing = _run(repo, data, "init", "j", "nosuch")
    assert missing.returncode == 2 and "no weights" in missing.stderr

    back = tmp_path / "back"
    back.mkdir()
    subprocess.run(["tar", "-cf", str(back / "weights.tar"), "-C", str(repo / "weights"), "small.json"], check=True)
    blob = (back / "weights.tar").read_bytes()                      # the driver splits big archives into parts
    (back / "weights.tar").unlink()
    (back / "weights.tar.part00").write_bytes(blob[:1000])
    (back / "weights.tar.part01").write_bytes(blob[1000:])
    assert _run(repo, data, "unpack", str(back), "u").returncode == 0
    assert (repo / ".carry" / "u" / "small.json").read_text() == "x"
    assert _run(repo, data, "data", "d", "nosuch").returncode == 2
