"""benchmarks/rank.py on a tiny synthetic results folder: ranking, newest record wins, subsets, empty cells."""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

RANK = Path(__file__).resolve().parents[1] / "benchmarks" / "rank.py"


@pytest.fixture(scope="module")
def rank():
    spec = importlib.util.spec_from_file_location("rank_script", RANK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        module.WEIGHT_CHANGES = {}           # the synthetic files below predate the real weight changes
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def bench_file(path, date, dataset, noise, rows, limit=None, options=None, weights=None):
    summary = [{"method": m, "dataset": dataset, "noise": noise, "psnr": p, "ssim": s, "seconds_per_image": t,
                "images": n} for m, p, s, t, n in rows]
    config = {"date": date, "device": "cpu", "device_name": "Test CPU", "cpu_count": 2, "limit": limit,
              "sigma_mode": "true", "method_options": options or {m: {} for m, *_ in rows}}
    if weights is not None:
        config["weights"] = weights
    path.write_text(json.dumps({"summary": summary, "records": [], "config": config}))


def cells(table, label):
    """The data cells of the row labelled ``label`` (as rank.row_label writes it)."""
    line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][2:]


def test_table_ranks_keeps_newest_and_leaves_gaps(rank, tmp_path):
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    bench_file(cpu / "old.json", "2026-01-01T10:00:00+00:00", "set12", "gaussian:25",
               [("nlm", 28.0, 0.80, 1.0, 12), ("dncnn", 30.0, 0.85, 2.0, 12)])
    bench_file(cpu / "new.json", "2026-01-02T10:00:00+00:00", "set12", "gaussian:25",
               [("nlm", 29.0, 0.81, 1.5, 12)])
    # a newer subset run must not replace the full one ...
    bench_file(cpu / "subset.json", "2026-01-03T10:00:00+00:00", "set12", "gaussian:25",
               [("nlm", 35.0, 0.99, 1.0, 3)], limit=3)
    # ... but is shown, unranked, where no full run exists
    bench_file(cpu / "bm3d.json", "2026-01-03T11:00:00+00:00", "polyu:test", "real",
               [("bm3d", 37.0, 0.95, 100.0, 6)], limit=6)
    (cpu / "estimate.json").write_text(json.dumps({"summary": [{"method": "pca", "sigma": 5}], "date": "x"}))
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    eval_path = gpu / "r_eval.json"
    eval_path.write_text(json.dumps({
        "dncnn|cbsd68_jpg|gaussian:25|{}": {"method": "dncnn", "dataset": "cbsd68_jpg", "noise": "gaussian:25",
                                             "psnr": 30.4, "ssim": 0.856, "seconds_per_image": 0.007, "images": 68,
                                             "stem": "dncnn-color", "options": {}, "device": "cuda",
                                             "gpu": "Test GPU", "date": "2026-01-02"},
        "dncnn|set12|gaussian:25|{}": {"method": "dncnn", "dataset": "set12", "noise": "gaussian:25",
                                       "psnr": 31.0, "ssim": 0.9, "seconds_per_image": 0.01, "images": 12,
                                       "stem": "dncnn-gray", "options": {}, "device": "cuda", "gpu": "Test GPU",
                                       "date": "2026-01-01"}}))
    # a date-only record takes its file's time on that date (here 2026-01-01 09:00, older than old.json)
    stamp = 1767258000  # 2026-01-01T09:00:00Z
    os.utime(eval_path, (stamp, stamp))

    results = rank.load_results(tmp_path)
    assert len(results) == 7                      # the estimate file is ignored
    table = rank.build_table(results, all_columns=True)
    header = table.splitlines()[0]
    assert header.index("PolyU test (real)") < header.index("CBSD68 σ25") < header.index("Set12 σ25")

    polyu, cbsd68, set12 = cells(table, "`nlm`")
    assert polyu == "" and cbsd68 == ""            # never measured: empty
    assert set12.startswith("29.00 / 0.8100 #2")   # newest full record; the subset's 35.00 does not win
    assert "35.00" not in table and "28.00" not in table

    polyu, cbsd68, set12 = cells(table, "`dncnn`")
    assert polyu == ""
    assert cbsd68.startswith("**30.40** / 0.8560 #1 G")   # cbsd68_jpg counts as cbsd68
    # the CPU record (2026-01-01 10:00) is newer than the GPU one (file written 09:00 that day)
    assert set12.startswith("**30.00** / 0.8500 #1 C")

    polyu, cbsd68, set12 = cells(table, "`bm3d`")
    assert polyu.startswith("*37.00 / 0.9500* (first 6)") and "#" not in polyu
    assert cbsd68 == "" and set12 == ""

    # every source is listed with its device and date
    assert "GPU: " in table and "Test GPU, 2026-01-02" in table and "CPU: " in table and "2026-01-02 10:00" in table

    # by default a column measured only on a subset is left out, and so is a row left without cells
    table = rank.build_table(results)
    assert "PolyU" not in table.splitlines()[0] and "| `bm3d` |" not in table
    assert "1 set/noise column(s) measured only on subsets are left out" in table


def test_newest_of_two_files_and_option_variants(rank, tmp_path):
    bench_file(tmp_path / "a.json", "2026-01-05T10:00:00+00:00", "cbsd68", "gaussian:25",
               [("cddpm", 31.3, 0.88, 8.0, 68), ("realdiff", 30.5, 0.85, 8.0, 68)],
               options={"cddpm": {}, "realdiff": {"steps": 1}})
    bench_file(tmp_path / "b.json", "2026-01-04T10:00:00+00:00", "cbsd68", "gaussian:25",
               [("cddpm", 31.0, 0.88, 20.0, 68), ("realdiff", 30.0, 0.85, 30.0, 68)],
               options={"cddpm": {"steps": 1}, "realdiff": {"steps": 5}})
    results = rank.load_results(tmp_path)
    best = rank.select(results)
    # cddpm {} and {"steps": 1} are the same configuration: the newer file (a.json) wins
    assert best[("cddpm", (), None, False)][("cbsd68", "gaussian:25")].psnr == 31.3
    # realdiff with 5 steps is its own row
    assert best[("realdiff", (("steps", 5),), None, False)][("cbsd68", "gaussian:25")].psnr == 30.0
    table = rank.build_table(results)
    assert "| `realdiff` (steps=5) |" in table
    assert cells(table, "`realdiff`")[0].startswith("30.50 / 0.8500 #2")
    assert cells(table, "`realdiff` (steps=5)")[0].startswith("30.00 / 0.8500 #3")


def test_scatter_writes_png(rank, tmp_path):
    pytest.importorskip("matplotlib")
    bench_file(tmp_path / "a.json", "2026-01-05T10:00:00+00:00", "polyu:test", "real",
               [("nlm", 36.0, 0.9, 5.0, 22), ("dncnn", 37.0, 0.95, 10.0, 22)])
    out = tmp_path / "p.png"
    captions = rank.scatter(rank.load_results(tmp_path), [rank.parse_panel("polyu:test:real:cpu"),
                                                          rank.parse_panel("cbsd68:gaussian:25:cuda")], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert captions[0].startswith("PolyU test (real), CPU: 2 methods") and "0 methods" in captions[1]
    assert rank.parse_panel("cbsd68:gaussian:25:cpu") == ("cbsd68", "gaussian:25", "cpu")


def test_subset_description(rank):
    assert rank._subset({"limit": None}, 68) == ""
    assert rank._subset({"limit": 2, "crop": 128}, 2) == "first 2, 128-px crops"


def test_fewer_images_without_a_stated_limit_is_a_subset(rank, tmp_path):
    bench_file(tmp_path / "full.json", "2026-01-01T10:00:00+00:00", "cbsd68", "gaussian:25",
               [("dncnn", 30.4, 0.85, 1.0, 68)])
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    (gpu / "r_eval.json").write_text(json.dumps({"true": {
        "method": "dncnn", "dataset": "cbsd68_jpg", "noise": "gaussian:25", "psnr": 30.9, "ssim": 0.87,
        "seconds_per_image": 0.005, "images": 20, "date": "2026-01-02", "gpu": "Test GPU"}}))
    table = rank.build_table(rank.load_results(tmp_path), all_columns=True)
    assert cells(table, "`dncnn`")[0].startswith("**30.40** / 0.8500 #1 C")     # the newer 20-image run loses
    subset = [r for r in rank.load_results(tmp_path) if r.device == "cuda"]
    assert subset[0].subset == "20 of 68 images"
    alone = rank.load_results(gpu)                                              # alone: still 20 of the 68 images
    assert alone[0].subset == "20 of 68 images"
    other = json.loads((gpu / "r_eval.json").read_text())
    other["true"]["dataset"] = "mysteryset"                                     # a set of unknown size: whole
    (gpu / "r_eval.json").write_text(json.dumps(other))
    assert rank.load_results(gpu)[0].subset == ""


def test_leaky_svnr_maps_are_dropped_and_old_defaults_written_out(rank, tmp_path):
    """SVNR on Poisson-Gaussian noise counts only from files that hand it observed maps; a ddpm-match record from
    before its default became one step is shown with the old default."""
    leaky = tmp_path / "leaky.json"
    bench_file(leaky, "2026-11-22T06:00:00", "kodak24", "poisson_gaussian:0.01,5",
               [("svnr", 38.0, 0.97, 0.1, 24), ("cddpm", 33.6, 0.90, 0.1, 24)])
    spatial = tmp_path / "spatial.json"
    bench_file(spatial, "2026-11-22T06:00:00", "kodak24", "spatial:5,50", [("svnr", 31.0, 0.85, 0.1, 24)])
    honest = tmp_path / "honest.json"
    bench_file(honest, "2026-11-22T09:00:00", "kodak24", "poisson_gaussian:0.03,10", [("svnr", 30.0, 0.85, 0.1, 24)])
    data = json.loads(honest.read_text())
    data["config"]["map_given"] = "observed: NoiseModel.observed_map"
    honest.write_text(json.dumps(data))
    old = tmp_path / "old.json"
    bench_file(old, "2026-11-22T05:00:00", "cbsd68", "gaussian:25", [("ddpm-match", 30.45, 0.87, 0.6, 68)])
    got = {(r.method, r.noise, r.options) for r in rank.load_results(tmp_path)}
    assert ("svnr", "poisson_gaussian:0.01,5", ()) not in got
    assert ("cddpm", "poisson_gaussian:0.01,5", ()) in got
    assert ("svnr", "spatial:5,50", (("steps", 25),)) in got              # made when 25 steps was the default
    assert ("svnr", "poisson_gaussian:0.03,10", ()) in got
    assert ("ddpm-match", "gaussian:25", (("steps", "all"),)) in got
    gpu = tmp_path / "gpu" / "eval.json"                    # GPU driver records state their sigma mode
    gpu.parent.mkdir()
    row = {"method": "svnr", "dataset": "cbsd68", "psnr": 33.0, "ssim": 0.9, "seconds_per_image": 0.1,
           "images": 10, "stem": "svnr-color", "options": {}, "device": "cuda", "gpu": "H200", "date": "2026-12-02"}
    gpu.write_text(json.dumps({"a": {**row, "noise": "poisson_gaussian:0.02,4", "sigma_mode": "true"},
                               "b": {**row, "noise": "poisson_gaussian:0.04,8", "sigma_mode": "observed"},
                               "c": {**row, "noise": "poisson_gaussian:0.06,9", "sigma_mode": "auto"}}))
    noises = {r.noise for r in rank.load_results(tmp_path / "gpu")}
    assert noises == {"poisson_gaussian:0.04,8", "poisson_gaussian:0.06,9"}


def test_records_of_replaced_weights_are_marked_and_not_ranked(rank, tmp_path, monkeypatch):
    monkeypatch.setattr(rank, "WEIGHT_CHANGES", {"cddpm": [("2026-12-02T04:56:00+00:00", None)],
                                                 "realdiff": [("2026-11-30T00:00:00+00:00", {"sidd_sample"}),
                                                              ("2026-12-02T04:56:00+00:00", {"fmdd"})]})
    bench_file(tmp_path / "old.json", "2026-12-01T10:00:00+00:00", "fmdd", "real",
               [("cddpm", 29.5, 0.70, 1.0, 48), ("realdiff", 31.4, 0.78, 1.0, 48), ("dncnn", 30.6, 0.73, 1.0, 48)])
    bench_file(tmp_path / "poly.json", "2026-12-01T10:00:00+00:00", "polyu:test", "real",
               [("realdiff", 38.1, 0.96, 1.0, 22)])
    bench_file(tmp_path / "sidd.json", "2026-12-01T10:00:00+00:00", "sidd_sample", "real",
               [("realdiff", 26.6, 0.50, 1.0, 12)])
    results = rank.load_results(tmp_path)
    marks = {(r.method, r.dataset): r.subset for r in results}
    assert marks[("cddpm", "fmdd")] == marks[("realdiff", "fmdd")] == "earlier weights"
    assert marks[("realdiff", "sidd_sample")] == ""                     # made after that set's change
    assert marks[("dncnn", "fmdd")] == "" and marks[("realdiff", "polyu:test")] == ""   # other set: same weights
    table = rank.build_table(results)
    assert cells(table, "`dncnn`")[1].startswith("**30.60** / 0.7300 #1")
    assert "(earlier weights)" in cells(table, "`realdiff`")[1]
    bench_file(tmp_path / "new.json", "2026-12-02T05:10:00+00:00", "fmdd", "real",
               [("realdiff", 32.9, 0.82, 1.0, 48)])
    table = rank.build_table(rank.load_results(tmp_path))
    assert cells(table, "`realdiff`")[1].startswith("**32.90** / 0.8200 #1")


def test_a_record_naming_its_weights_is_judged_by_them(rank, tmp_path, monkeypatch):
    """Bench files state the training steps of the weights each method could load; a record is of earlier weights
    when the stem its set loads (gray sets the gray one) has other steps than the shipped card, whatever its time."""
    shipped = {"dncnn-color": 7717, "dncnn-gray": 7530}
    monkeypatch.setattr(rank, "shipped_steps", shipped.get)
    monkeypatch.setattr(rank, "WEIGHT_CHANGES", {"dncnn": [("2030-01-01T00:00:00+00:00", None)]})  # time says old
    stated = {"dncnn": {"dncnn-color": {"steps": 7717}, "dncnn-gray": {"steps": 100}}}
    bench_file(tmp_path / "poly.json", "2026-12-01T10:00:00+00:00", "polyu:test", "real",
               [("dncnn", 35.6, 0.92, 1.0, 22)], weights=stated)
    bench_file(tmp_path / "fmdd.json", "2026-12-01T10:00:00+00:00", "fmdd", "real",
               [("dncnn", 30.6, 0.73, 1.0, 48)], weights=stated)
    bench_file(tmp_path / "sidd.json", "2026-12-01T10:00:00+00:00", "sidd_sample", "real",
               [("dncnn", 26.1, 0.44, 1.0, 12)])                                  # states nothing: by time
    marks = {r.dataset: r.subset for r in rank.load_results(tmp_path)}
    assert marks == {"polyu:test": "", "fmdd": "earlier weights", "sidd_sample": "earlier weights"}
