#!/usr/bin/env bash
# CPU tables after GPU round 6 (new ddpm-natural; one-step defaults): the diffusion-core rows of issue 3 on the
# full test sets. Writes benchmarks/results/cpu/round6/*.json; prints each table.
set -euo pipefail
D=${DATA:-../shared/data}
O=benchmarks/results/cpu/round6
mkdir -p $O
B="diffdenoise bench -q"
[ -n "${SKIP_BLIND:-}" ] || \
  $B --methods ddpm-match --data $D/cbsd68 --noise gaussian:25 --sigma-mode auto --json $O/cbsd68_s25_blind.json
for s in ${SIGMAS_CBSD68:-15 50}; do
  $B --methods ddpm-match,cddpm --data $D/cbsd68 --noise gaussian:$s --json $O/cbsd68_s$s.json
done
for s in 15 25 50; do
  $B --methods ddpm-match,cddpm --data $D/kodak24 --noise gaussian:$s --json $O/kodak24_s$s.json
done
for d in bsd68 set12; do
  $B --methods ddpm-match,cddpm --data $D/$d --noise gaussian:25 --json $O/${d}_s25.json
done
