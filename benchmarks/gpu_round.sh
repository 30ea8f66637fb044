#!/usr/bin/env bash
# The body every GPU round script shares: point .carry/init at the weights to start from, run one plan of
# benchmarks/gpu_train.py on the carried data, list what comes back.
#   bash benchmarks/gpu_round.sh ROUND DATA DEFAULT_INIT DEFAULT_MINUTES EVAL_LIMIT
# Environment: PART (plan suffix, default a), INIT (folder under .carry, default DEFAULT_INIT), MIN (training minutes
# per run, default DEFAULT_MINUTES), OUT (the folder whose files come back).
set -uo pipefail
round=${1:?round} data=${2:?data folder under .carry} init=${3:?default init folder} minutes=${4:?minutes}
limit=${5:?eval limit}
export NCCL_NVLS_ENABLE=0 PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
rm -f .carry/init && ln -s "${INIT:-$init}" .carry/init
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/gpu_train.py --plan "benchmarks/plans/round${round}${PART:-a}.json" --data ".carry/$data" \
    --out "$OUT" --minutes "${MIN:-$minutes}" --eval-limit "$limit"
ls -la "$OUT"
