#!/usr/bin/env bash
# GPU round 8 (one H200): cddpm-gaussian continued with more gray crops (gray_prob 0.35; BSD68/Set12 are gray) and
# the gray real-noise model retrained for microscopy (dim crops via "exposure", exact Poisson-Gaussian up to
# a = 0.1, 8-bit quantized inputs). PART a: first chunk from .carry/init8 (the shipped weights); PART b: continues
# from the chunk-a weights (INIT=init8b) and evaluates on Set12 and 8 FMDD pairs (.carry/d8).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
rm -f .carry/init && ln -s "${INIT:-init8}" .carry/init
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/gpu_train.py --plan benchmarks/plans/round8${PART:-a}.json --data .carry/d8 \
    --out "$OUT" --minutes "${MIN:-8.0}" --eval-limit 12
ls -la "$OUT"
