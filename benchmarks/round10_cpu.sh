#!/usr/bin/env bash
# CPU checks of GPU round 10 (2 cores), writes benchmarks/results/cpu/round10/:
#   PART=candidates: every round-10 gray model at one step on all 48 FMDD pairs (the GPU driver scored 8). Needs the
#     rounds' weights unpacked: bash benchmarks/pack_carry.sh unpack <files_at of call N> r10a (r10b, r10c).
#   PART=shipped: the shipped realdiff-gray (round 10b) on FMDD: one step (the card's figure), the x8 geometric
#     self-ensemble, steps 1/2/5 with the improved sampler, and Gaussian/Poisson-Gaussian on 12 gray BSD68 images
#     beside the round-8 weights (PREV, a folder holding the old realdiff-gray, e.g. from `git show 4905259:weights/..`;
#     skipped when unset; per-image CSV only, whose PSNR column averages to the figure).
set -euo pipefail
O=benchmarks/results/cpu/round10
mkdir -p $O
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONPATH=$PWD/src
D=${DATA:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
if [ "${PART:-all}" = all ] || [ "${PART:-all}" = candidates ]; then
  $PY benchmarks/realdiff_table.py --sets fmdd --steps 1 --samplers improved --out $O/fmdd_candidates --models \
      a-fold-colour=.carry/r10a/realdiff-gray-wide.json a-ddpm=.carry/r10a/realdiff-gray-wide-ddpm.json \
      b1=.carry/r10b/realdiff-gray-wide-ddpm-b1.json b2=.carry/r10b/realdiff-gray-wide-ddpm-b2.json \
      c1=.carry/r10c/realdiff-gray-wide-ddpm-c1.json
fi
if [ "${PART:-all}" = all ] || [ "${PART:-all}" = shipped ]; then
  B="$PY -m diffdenoise bench --device cpu -q"
  $B --methods realdiff --data $D/fmdd --json $O/fmdd_realdiff.json
  $B --methods realdiff --data $D/fmdd --options '{"realdiff": {"ensemble": 8}}' --json $O/fmdd_realdiff_x8.json
  $PY benchmarks/realdiff_table.py --sets fmdd --steps 1 2 5 --samplers improved --out $O/fmdd_steps
  for n in gaussian:15 gaussian:50 poisson_gaussian:0.005,3 poisson_gaussian:0.02,5; do
    f=$O/bsd68_12_realdiff_gray_${n//[:,]/_}
    $B --methods realdiff --data $D/bsd68 --noise $n --limit 12 --json $f.json
    if [ -n "${PREV:-}" ]; then DIFFDENOISE_WEIGHTS=$(realpath "$PREV") $B --methods realdiff --data $D/bsd68 \
        --noise $n --limit 12 --csv ${f}_round8.csv; fi   # CSV: benchmarks/rank.py ranks JSON of the current weights
  done
fi
