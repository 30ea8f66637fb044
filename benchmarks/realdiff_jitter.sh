#!/usr/bin/env bash
# realdiff --samples: how much restart noise the K stochastic restorations may take (option jitter, in units of the
# local noise std; diffusion/realdiff.py). Two samples on all of FMDD (gray model) and PolyU test (colour model),
# jitter 0.5 (the default until session 7), 0.25 and 0.1 (the default since). 2-core CPU, ~15 minutes.
# Writes benchmarks/results/cpu/round10/jitter/{fmdd,polyu}_<jitter>.json.
set -euo pipefail
O=benchmarks/results/cpu/round10/jitter
mkdir -p $O
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
D=${DATA:-../shared/data}
B="${PYTHON:-.venv/bin/python} -m diffdenoise bench --device cpu -q"
for j in 0.5 0.25 0.1; do
  opts="{\"realdiff\": {\"samples\": 2, \"jitter\": $j}}"
  $B --methods realdiff --data $D/fmdd --options "$opts" --json $O/fmdd_$j.json
  $B --methods realdiff --data $D/polyu --split test --options "$opts" --json $O/polyu_$j.json
done
