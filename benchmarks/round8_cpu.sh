#!/usr/bin/env bash
# CPU checks of the round-8 weights (2 cores): the gray real-noise model on all 48 FMDD pairs, cddpm-gaussian
# (more gray crops) on the gray and colour Gaussian sets at sigma 15/25/50, and the geometric self-ensemble
# (--options '{"realdiff": {"ensemble": 8}}') on FMDD and the PolyU test split. Writes benchmarks/results/cpu/round8/.
# PART (none: all) = first: the figures that decided shipping; PART=rest: the remaining sets; PART=extra: the
# new cddpm on the real sets (blind), which its earlier weights had been scored on, on Set12 with --ensemble 8, and
# CBSD68 at 4 steps (the multi-step row).
set -euo pipefail
O=benchmarks/results/cpu/round8
mkdir -p $O
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
D=${DATA:-../shared/data}
B="diffdenoise bench --device cpu -q"
X8='{"realdiff": {"ensemble": 8}}'
if [ "${PART:-all}" = all ] || [ "${PART:-all}" = first ]; then
  $B --methods realdiff --data $D/fmdd --json $O/fmdd_realdiff.json
  $B --methods cddpm --data $D/set12 --noise gaussian:25 --json $O/set12_cddpm_25.json
  $B --methods cddpm --data $D/bsd68 --noise gaussian:25 --json $O/bsd68_cddpm_25.json
  $B --methods cddpm --data $D/cbsd68 --noise gaussian:25 --json $O/cbsd68_cddpm_25.json
fi
if [ "${PART:-all}" = all ] || [ "${PART:-all}" = rest ]; then
  $B --methods realdiff --data $D/fmdd --options "$X8" --json $O/fmdd_realdiff_x8.json
  for s in 15 50; do
    $B --methods cddpm --data $D/set12 --noise gaussian:$s --json $O/set12_cddpm_$s.json
    $B --methods cddpm --data $D/bsd68 --noise gaussian:$s --json $O/bsd68_cddpm_$s.json
  done
  $B --methods realdiff --data $D/polyu --split test --options "$X8" --json $O/polyu_realdiff_x8.json
  for s in 15 50; do $B --methods cddpm --data $D/cbsd68 --noise gaussian:$s --json $O/cbsd68_cddpm_$s.json; done
  for s in 15 25 50; do $B --methods cddpm --data $D/kodak24 --noise gaussian:$s --json $O/kodak24_cddpm_$s.json; done
fi
if [ "${PART:-all}" = all ] || [ "${PART:-all}" = extra ]; then
  $B --methods cddpm --data $D/fmdd --json $O/fmdd_cddpm.json
  $B --methods cddpm --data $D/polyu --split test --json $O/polyu_cddpm.json
  $B --methods cddpm --data $D/sidd_sample --json $O/sidd_cddpm.json
  $B --methods cddpm --data $D/set12 --noise gaussian:25 --options '{"cddpm": {"ensemble": 8}}' \
      --json $O/set12_cddpm_25_x8.json
  $B --methods cddpm --data $D/cbsd68 --noise gaussian:25 --options '{"cddpm": {"steps": 4}}' \
      --json $O/cbsd68_cddpm_25_steps4.json
fi
