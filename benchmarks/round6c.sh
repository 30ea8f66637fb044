#!/usr/bin/env bash
# GPU round 6c (nvidia-h200-x4, one call), from the repo root, carrying .carry/c6 (weights: realdiff-color,
# cddpm-gaussian, svnr-color and round 6's ddpm-natural and dncnn-color), .carry/e6 (polyu, first 20 cbsd68_jpg) and
# .carry/cards (weight cards, for speed.py's random-weight architectures). Four GPUs at once:
#  0: speed.py reference rows (DnCNN, FFDNet, DRUNet-sized) beside realdiff, then DnCNN fp32 vs bf16 PSNR on CBSD68;
#  1: speed.py with torch.compile (default mode); 2: with CUDA graphs (compile mode reduce-overhead);
#  3: steps_table.py for realdiff (PolyU test), cddpm, ddpm-match (CBSD68 sigma 25), svnr (Poisson-Gaussian).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONPATH=$PWD/src \
    PYTHONUNBUFFERED=1 DIFFDENOISE_WEIGHTS=$PWD/.carry/c6
L=${LIMIT:-400}
S="python3 benchmarks/speed.py --random-weights-from .carry/cards"
(CUDA_VISIBLE_DEVICES=0 timeout $L $S --out $OUT/speed_refs --methods realdiff,dncnn --references dncnn ffdnet drunet
 CUDA_VISIBLE_DEVICES=0 timeout 100 python3 - <<'PY'
import json, os, torch
from diffdenoise.bench import run_bench
res = {}
for p in ("fp32", "bf16"):
    r = run_bench(["dncnn"], ".carry/e6/cbsd68_jpg", noise="gaussian:25", device="cuda",
                  method_options={"dncnn": {"precision": p}}, progress=False)
    res[p] = r["summary"][0]
    print("dncnn", p, res[p]["psnr"], flush=True)
json.dump(res, open(os.environ["OUT"] + "/dncnn_precision.json", "w"), indent=1)
PY
) > $OUT/gpu0.log 2>&1 &
CUDA_VISIBLE_DEVICES=1 timeout $L $S --out $OUT/speed_compile --methods realdiff,cddpm --references drunet \
    --compile --workloads batch > $OUT/gpu1.log 2>&1 &
CUDA_VISIBLE_DEVICES=2 timeout $L $S --out $OUT/speed_graphs --methods realdiff,svnr --references drunet \
    --compile --compile-mode reduce-overhead --workloads batch --precisions bf16 > $OUT/gpu2.log 2>&1 &
(export CUDA_VISIBLE_DEVICES=3; T="timeout $L python3 benchmarks/steps_table.py --device cuda -q"
 $T --data .carry/e6/polyu --split test --methods realdiff --out $OUT/steps_realdiff
 $T --data .carry/e6/cbsd68_jpg --noise gaussian:25 --methods cddpm,ddpm-match --out $OUT/steps_gauss
 $T --data .carry/e6/cbsd68_jpg --noise poisson_gaussian:0.01,5 --methods svnr --out $OUT/steps_svnr
) > $OUT/gpu3.log 2>&1 &
wait
cd $OUT && tail -n 5 *.log && tar -czf logs.tar.gz *.log && rm -f *.log && ls
