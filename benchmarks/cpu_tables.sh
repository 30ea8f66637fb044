#!/usr/bin/env bash
# The CPU figures in BENCHMARKS.md: run from the repo root after `make test` created .venv.
# Writes benchmarks/results/cpu/*.{md,json,csv}. Long: CBM3D on Kodak24 alone takes about an hour on 2 cores.
set -euo pipefail
D=${DATA:-../shared/data}
R=benchmarks/results/cpu
B=".venv/bin/diffdenoise bench --device cpu -q"
mkdir -p $R
.venv/bin/python benchmarks/estimate_noise.py --data $D/kodak24 --json $R/estimate_kodak24.json > $R/estimate_kodak24.md
$B --methods gaussian,median,bilateral,wavelet,tv,nlm,dncnn,rednet,mwcnn,pridnet,cddpm,realdiff \
   --data $D/cbsd68 --noise gaussian:25 --json $R/cbsd68_s25.json --csv $R/cbsd68_s25.csv > $R/cbsd68_s25.md
$B --methods dncnn,rednet,mwcnn,pridnet,cddpm --data $D/bsd68 --noise gaussian:25 \
   --json $R/bsd68_s25.json --csv $R/bsd68_s25.csv > $R/bsd68_s25.md
$B --methods bm3d --data $D/kodak24 --noise gaussian:25 --json $R/kodak24_bm3d_s25.json \
   --csv $R/kodak24_bm3d_s25.csv > $R/kodak24_bm3d_s25.md
