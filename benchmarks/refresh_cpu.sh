#!/usr/bin/env bash
# CPU re-measures of the ranking cells whose records predate the shipped weights (rank.py marks them "earlier
# weights"): the round-6 dncnn, pridnet-color and mwcnn-color on the real-noise sets, and the round-7 SVNR models
# on PolyU test and FMDD (blind: each estimates its noise map).  Writes benchmarks/results/cpu/refresh/*.json.
set -euo pipefail
D=${DATA:-../shared/data}
O=benchmarks/results/cpu/refresh
mkdir -p $O
B="diffdenoise bench -q --sigma-mode auto"
$B --methods dncnn,mwcnn,pridnet --data $D/polyu --split test --json $O/polyu_test_cnn.json
$B --methods dncnn,mwcnn,pridnet --data $D/sidd_sample --json $O/sidd_sample_cnn.json
$B --methods dncnn --data $D/fmdd --json $O/fmdd_dncnn.json
$B --methods svnr --data $D/polyu --split test --json $O/polyu_test_svnr.json
$B --methods svnr --data $D/fmdd --json $O/fmdd_svnr.json
