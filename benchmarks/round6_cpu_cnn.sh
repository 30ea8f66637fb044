#!/usr/bin/env bash
# CPU tables of the CNN baselines after GPU round 6 (issue 6's sets): gray BSD68 and Set12 at sigma 15/25/50,
# colour Kodak24 at sigma 25. Writes benchmarks/results/cpu/round6/*.json; prints each table.
set -euo pipefail
D=${DATA:-../shared/data}
O=benchmarks/results/cpu/round6
mkdir -p $O
B="diffdenoise bench -q"
# gray: only dncnn-gray changed in round 6; rednet/mwcnn/pridnet gray already have BSD68 sigma 25 and Set12 rows
for s in 15 50; do
  $B --methods dncnn,rednet,mwcnn,pridnet --data $D/bsd68 --noise gaussian:$s --json $O/bsd68_s${s}_cnn.json
done
$B --methods dncnn --data $D/bsd68 --noise gaussian:25 --json $O/bsd68_s25_cnn.json
for s in 15 25 50; do
  $B --methods dncnn --data $D/set12 --noise gaussian:$s --json $O/set12_s${s}_cnn.json
done
$B --methods dncnn,rednet,mwcnn,pridnet --data $D/kodak24 --noise gaussian:25 --json $O/kodak24_s25_cnn.json
