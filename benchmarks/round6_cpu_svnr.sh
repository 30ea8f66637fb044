#!/usr/bin/env bash
# CPU parts of the round-6 SVNR and realdiff tables (2 cores): SVNR blind on FMDD (estimated noise maps), BM3D on the
# 10 Kodak24 images of the GPU whole-image SVNR table, and the synthetic-only realdiff ablation on FMDD and SIDD
# with its RNI15 grid. Writes benchmarks/results/cpu/round6/.
set -euo pipefail
O=benchmarks/results/cpu/round6
mkdir -p $O
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
python benchmarks/realdiff_synth.py --synth ${SYNTH:-/work/extra_weights/round6/b} --out $O/realdiff_synth \
    --grid docs/img/rni15_realdiff.png
python benchmarks/svnr_table.py --device cpu --sets --rows svnr cddpm bm3d --out $O/svnr_fmdd_blind
python benchmarks/svnr_table.py --device cpu --sets --limit 8 --rows "svnr 25-step" --out $O/svnr_fmdd_blind_25step
python benchmarks/svnr_table.py --device cpu --sets kodak24 --limit 10 --no-fmdd --rows bm3d \
    --noises poisson_gaussian:0.01,5 spatial:5,50 --out $O/svnr_kodak10_bm3d
