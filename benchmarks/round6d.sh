#!/usr/bin/env bash
# GPU round 6d (one H200 of nvidia-h200-x4): benchmarks/svnr_table.py on whole images, the first 10 of Kodak24 and
# CBSD68, every noise of the table, every row but BM3D (CPU only). Carry .carry/s6 (w: svnr-color, svnr-gray,
# svnr-color-naive, cddpm-gaussian; data: the 20 images).
set -uo pipefail
export PYTHONPATH=$PWD/src DIFFDENOISE_WEIGHTS=$PWD/.carry/s6/w PYTHONUNBUFFERED=1
CUDA_VISIBLE_DEVICES=0 timeout ${LIMIT:-230} python3 benchmarks/svnr_table.py --device cuda --data-root .carry/s6/data \
    --limit 10 --no-fmdd --rows svnr "svnr 25-step" "svnr naive" "svnr naive 25-step" cddpm "cddpm 25-step" \
    --out $OUT/svnr_table_gpu 2> $OUT/svnr_table_gpu.log
tail -5 $OUT/svnr_table_gpu.log; cat $OUT/svnr_table_gpu.md
