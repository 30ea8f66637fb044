#!/usr/bin/env bash
# GPU round 6: one training chunk of benchmarks/plans/round6${PART}.json (PART a: first call, b: continues on the
# warm machine from /tmp/diffdenoise_weights, or from .carry/init6). Carry .carry/d6 (training images, polyu, the
# first 20 cbsd68_jpg) and .carry/init6 (the shipped weights the plan continues from).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONPATH=$PWD/src
[ -e .carry/init ] || ln -s init6 .carry/init
nvidia-smi --query-gpu=name --format=csv,noheader
PYTHONPATH=src python3 benchmarks/gpu_train.py --plan benchmarks/plans/round6${PART:-a}.json --data .carry/d6 \
    --out "$OUT" --minutes "${MIN:-7.2}" --eval-limit 68
