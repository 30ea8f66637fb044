#!/usr/bin/env bash
# CPU parts of the round-6 SVNR and realdiff tables (2 cores): the synthetic-only realdiff ablation on FMDD and SIDD
# with its RNI15 grid; SVNR blind on FMDD (estimated noise maps); SVNR, cddpm and BM3D on the first 3 Kodak24 images
# with the maps a user can know (NoiseModel.observed_map for Poisson-Gaussian). Writes benchmarks/results/cpu/round6/.
set -euo pipefail
O=benchmarks/results/cpu/round6
mkdir -p $O
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
python benchmarks/realdiff_synth.py --synth ${SYNTH:-/work/extra_weights/round6/b} --out $O/realdiff_synth \
    --grid docs/img/rni15_realdiff.png
python benchmarks/svnr_table.py --device cpu --sets --rows svnr cddpm bm3d --out $O/svnr_fmdd_blind
python benchmarks/svnr_table.py --device cpu --sets kodak24 --limit ${KODAK_LIMIT:-3} --no-fmdd --rows svnr cddpm bm3d \
    --out $O/svnr_kodak_observed
