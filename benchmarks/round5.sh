#!/usr/bin/env bash
# GPU round 5 (nvidia-h200-x2, one 10-minute call), from the repo root, carrying .carry/data (bsds500 train+test,
# bsd400, t91, cbsd68_jpg), .carry/init (ddpm-natural, cddpm-missing weights) and .carry/cards (every
# weight card, for speed.py's random-weight architectures):
#  1. GPU 1, in the background: cddpm-missing retrained as an x0-predicting imputer (the eps model of round 3 could
#     not express x0 at large t, so its fills lost to biharmonic inpainting), continued from the round-3 weights.
#  2. benchmarks/multi_gpu.sh: DDP training check, sharded folder inference (ddpm-match on cbsd68_jpg), speed.py.
#  3. ddpm-match on all 68 CBSD68 images at sigma 25, sigma given and estimated.
set -uo pipefail
OUT=${OUT:-out/round5}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
MIN=${MIN:-6.3}
CUDA_VISIBLE_DEVICES=1 python3 -m diffdenoise.train configs/cddpm-missing.json --set data_root=.carry/data \
    --set out=/tmp/r5/cddpm-missing --set net_kwargs.size=small --set "net_kwargs.channels=[32,64,64,96]" \
    --set task_options.prediction=x0 --set task_options.loss=x0 --set steps=100000 --set max_minutes=$MIN \
    --set init_from=.carry/init/cddpm-missing.json > "$OUT/cddpm_missing_train.log" 2>&1 &
TRAIN=$!
DIFFDENOISE_WEIGHTS=$PWD/.carry/init OUT=$OUT METHOD=ddpm-match STEPS=600 MAX_MIN=1.0 BUDGET=${BUDGET:-330} \
    SPEED_EXTRA="--random-weights-from .carry/cards" bash benchmarks/multi_gpu.sh .carry/data .carry/data/cbsd68_jpg
CUDA_VISIBLE_DEVICES=0 DIFFDENOISE_WEIGHTS=$PWD/.carry/init timeout 150 python3 - "$OUT" <<'PY'
import json, sys, time, torch
from diffdenoise.bench import run_bench
res = {}
for mode in ("true", "auto"):
    r = run_bench(["ddpm-match"], ".carry/data/cbsd68_jpg", noise="gaussian:25", device="cuda", sigma_mode=mode,
                  progress=False)
    res[mode] = {**r["summary"][0], "gpu": torch.cuda.get_device_name(0), "date": time.strftime("%Y-%m-%d")}
    print("ddpm-match sigma", mode, res[mode]["psnr"], res[mode]["ssim"], res[mode]["seconds_per_image"], flush=True)
json.dump(res, open(sys.argv[1] + "/ddpm_match_cbsd68.json", "w"), indent=1)
PY
wait $TRAIN
tail -3 "$OUT/cddpm_missing_train.log"
python3 -c "
from pathlib import Path
from diffdenoise.train.checkpoint import export_weights
cmd = open('benchmarks/round5.sh').read().split('CUDA_VISIBLE_DEVICES=1 ', 1)[1].split(' > ', 1)[0]
export_weights(Path('/tmp/r5/cddpm-missing/last.safetensors'), 'cddpm-missing', {'command': cmd}, folder=Path('$OUT'))
"
cd "$OUT" && tar -czf logs.tar.gz *.log && rm -f *.log && ls -la
