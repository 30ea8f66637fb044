#!/usr/bin/env bash
# GPU round 7 (one H200): SVNR color/gray retrained on observed noise maps (task_options.map_from=observed: the
# time map from the noisy image's local mean, as at test time, while y keeps the exact map), and the real-photo
# model at UNet size small seeded from ddpm-natural. PART a: first chunk (carry .carry/d7: bsds500 train+test,
# polyu; .carry/init7: svnr-color, svnr-gray, ddpm-natural); PART b: continues from this machine's last export or
# the carried chunk-a weights, then evaluates on .carry/d7/e7 (first 10 CBSD68, first 8 FMDD pairs) and, with
# SPEED=1, times the small real-photo model beside the DRUNet-sized reference.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
[ -e .carry/init ] || ln -s "${INIT:-init7}" .carry/init
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/gpu_train.py --plan benchmarks/plans/round7${PART:-a}.json --data .carry/d7 \
    --out "$OUT" --minutes "${MIN:-7.0}" --eval-limit 22
if [ "${SPEED:-0}" = 1 ]; then
  mkdir -p /tmp/cards7 && cp /tmp/diffdenoise_weights/realdiff-color-small.json /tmp/cards7/realdiff-color.json
  S="timeout ${SPEED_LIMIT:-150} python3 benchmarks/speed.py --random-weights-from /tmp/cards7 --methods realdiff"
  $S --references drunet --workloads batch --precisions bf16 --compile --compile-mode reduce-overhead \
      --out $OUT/speed7_graphs > $OUT/speed.log 2>&1
  tail -n 20 $OUT/speed.log; tar -czf $OUT/speed.tar.gz -C $OUT speed.log \
      speed7_graphs.json speed7_graphs.md 2>/dev/null; rm -f $OUT/speed.log $OUT/speed7_*
fi
ls -la "$OUT"
