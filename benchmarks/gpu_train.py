"""Train several presets side by side on the GPU(s) of one lease, export fp16 weights, evaluate, pack for return.

GPU leases are short (a command runs at most 10 minutes) and one small model does not fill an H100/H200, so a plan
runs many `python -m diffdenoise.train` processes at once, each with its own time budget (the cosine schedule
follows the time budget, see train.loop.lr_at). Then each run's EMA weights are exported as fp16 safetensors with a
card, evaluated with the project's own bench harness, and everything is packed into a few files under $OUT.

    PYTHONPATH=src python3 benchmarks/gpu_train.py --plan benchmarks/plans/round1.json --data .carry/data \
        --out $OUT --minutes 7.5
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def launch(job: dict, data: str, runs: Path, minutes: float) -> tuple[subprocess.Popen, Path]:
    name = job["stem"]
    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    sets = [f"data_root={data}", f"out={out}", f"max_minutes={job.get('minutes', minutes)}", f"name={name}"]
    if job.get("init"):  # continue from earlier weights: this machine's last export if it is still warm, else carried
        cands = [Path("/tmp/diffdenoise_weights") / f"{job['init']}.json", ROOT / ".carry/init" / f"{job['init']}.json"]
        found = [c for c in cands if c.is_file()]
        if found:
            sets.append(f"init_from={found[0]}")
            job["init_used"] = str(found[0])
        else:
            print(f"{name}: no weights {job['init']} to start from; training from scratch", flush=True)
    sets += job.get("set", [])
    cmd = [sys.executable, "-m", "diffdenoise.train", str(ROOT / job["config"])] + sum((["--set", s] for s in sets), [])
    import torch
    gpus = max(torch.cuda.device_count(), 1)  # a plan written for two GPUs still runs on one
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": str(job.get("gpu", 0) % gpus),
           "PYTHONUNBUFFERED": "1"}
    log = open(out / "train.log", "w")
    print("launch:", " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", required=True, help="JSON list of jobs: {config, stem, gpu, set: [k=v], eval: {...}}")
    ap.add_argument("--data", required=True, help="data root on the GPU machine")
    ap.add_argument("--out", required=True, help="folder whose files come back ($OUT)")
    ap.add_argument("--minutes", type=float, default=7.5, help="training minutes per job (default 7.5)")
    ap.add_argument("--eval-limit", type=int, default=68, help="images per evaluation (default 68)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    plan = json.loads(Path(args.plan).read_text())
    out = Path(args.out)
    runs = Path("/tmp/diffdenoise_runs")
    weights = Path("/tmp/diffdenoise_weights")
    weights.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    procs = [(job, *launch(job, args.data, runs, args.minutes)) for job in plan]
    for job, proc, run in procs:
        proc.wait()
        print(f"{job['stem']}: exit {proc.returncode} after {(time.time() - t0) / 60:.1f} min", flush=True)
        print("  " + "\n  ".join((run / "train.log").read_text().strip().splitlines()[-3:]), flush=True)

    from diffdenoise.train.checkpoint import export_weights
    os.environ["DIFFDENOISE_WEIGHTS"] = str(weights)
    results = {}
    for job, proc, run in procs:
        if proc.returncode != 0 or not (run / "last.safetensors").exists():
            continue
        command = (f"PYTHONPATH=src python3 -m diffdenoise.train {job['config']} "
                   + " ".join(f"--set {s}" for s in job.get("set", []))
                   + f" --set max_minutes={job.get('minutes', args.minutes)}"
                   + (f" --set init_from={job['init_used']}" if job.get("init_used") else "")).strip()
        export_weights(run / "last.safetensors", job["stem"], {"command": command}, folder=weights)
    import torch
    from diffdenoise.bench import run_bench
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for job, proc, run in procs:
        for ev in job.get("eval", []):
            os.environ["DIFFDENOISE_WEIGHTS"] = str(weights)
            if ev.get("weights_as"):  # evaluate an ablation's weights under the stem the method loads
                alias = Path("/tmp/diffdenoise_alias") / job["stem"]
                export_weights(weights / f"{job['stem']}.json", ev["weights_as"], folder=alias)
                os.environ["DIFFDENOISE_WEIGHTS"] = str(alias)
            try:
                r = run_bench([ev["method"]], Path(args.data) / ev["data"], noise=ev.get("noise"),
                              limit=ev.get("limit", args.eval_limit), device=device,
                              method_options={ev["method"]: ev.get("options", {})}, split=ev.get("split"),
                              sigma_mode=ev.get("sigma_mode", "true"), progress=False)
            except Exception as e:  # keep going: one failing evaluation must not lose the other results
                print(f"eval {job['stem']} {ev}: {type(e).__name__}: {e}", flush=True)
                continue
            s = r["summary"][0]
            mode = ev.get("sigma_mode", "true")
            key = (f"{job['stem']}|{ev['method']}|{ev['data']}|{ev.get('noise')}|{json.dumps(ev.get('options', {}))}"
                   + ("" if mode == "true" else f"|sigma={mode}"))     # one key per evaluation: none overwritten
            results[key] = {**s, "stem": job["stem"], "options": ev.get("options", {}), "sigma_mode": mode,
                            "device": device,
                            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                            "date": time.strftime("%Y-%m-%d")}
            print(f"EVAL {job['stem']:<16} {ev['method']:<10} {s['dataset']:<12} {s['noise']:<14} sigma {mode:<4} "
                  f"{json.dumps(ev.get('options', {})):<28} PSNR {s['psnr']:.2f} SSIM {s['ssim']:.4f} "
                  f"{s['seconds_per_image']:.3f} s/img", flush=True)
    (out / "eval.json").write_text(json.dumps(results, indent=1))
    ship = [j["stem"] for j in plan]  # "ship": false jobs (ablations) come back too; the lead decides what ships
    with tarfile.open(out / "weights.tar", "w") as tar:
        for f in sorted(weights.iterdir()):
            if any(f.name == f"{s}.json" or f.name.startswith(f"{s}.") or f.name.startswith(f"{s}-0")
                   for s in ship):
                tar.add(f, arcname=f.name)
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for job, proc, run in procs:
            for name in ("train.log", "log.jsonl", "config.json"):
                if (run / name).exists():
                    tar.add(run / name, arcname=f"{job['stem']}/{name}")
    size = (out / "weights.tar").stat().st_size
    if size > 15 * 2**20:  # split: at most 16 MiB per returned file
        data = (out / "weights.tar").read_bytes()
        (out / "weights.tar").unlink()
        for i in range(0, len(data), 15 * 2**20):
            (out / f"weights.tar.part{i // (15 * 2**20):02d}").write_bytes(data[i:i + 15 * 2**20])
    print(f"done in {(time.time() - t0) / 60:.1f} min; weights tar {size / 2**20:.1f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
