#!/usr/bin/env bash
# CPU checks of the round-7 weights (2 cores), with DIFFDENOISE_WEIGHTS pointing at them: SVNR (observed-map
# training) on the first 3 Kodak24 images, 1 and 25 steps, same draws as round 6's cddpm/BM3D rows; SVNR gray blind
# on all 48 FMDD pairs; the small real-photo model on the PolyU test split and the SIDD sample; CPU seconds for a
# 512x512 RGB image. Writes benchmarks/results/cpu/round7/.
set -euo pipefail
O=benchmarks/results/cpu/round7
mkdir -p $O
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
python benchmarks/svnr_table.py --device cpu --sets --rows svnr --out $O/svnr_fmdd_blind
python benchmarks/svnr_table.py --device cpu --sets kodak24 --limit ${KODAK_LIMIT:-3} --no-fmdd \
    --rows svnr "svnr 25-step" --out $O/svnr_kodak_observed
diffdenoise bench --device cpu --methods realdiff --data ../shared/data/polyu --split test -q --json $O/polyu_realdiff.json
diffdenoise bench --device cpu --methods realdiff --data ../shared/data/sidd_sample -q --json $O/sidd_realdiff.json
python benchmarks/speed.py --device cpu --workloads batch --batch 1 --precisions fp32 --references \
    --methods realdiff --out $O/speed_cpu_realdiff
python benchmarks/svnr_table.py --device cpu --sets cbsd68 --limit ${CBSD_LIMIT:-10} --no-fmdd --rows svnr cddpm bm3d \
    --out $O/svnr_cbsd68_observed
python benchmarks/memory_24mp.py > $O/memory_24mp.txt
python benchmarks/speed.py --device cpu --workloads batch --batch 1 --precisions fp32 --warmup 1 --repeats 2 \
    --min-seconds 1 --references --methods dncnn,rednet,mwcnn,pridnet,cddpm,realdiff,ddpm-match,svnr,bm3d \
    --out $O/speed_cpu_all
python docs/svnr_figure.py --image ../shared/data/kodak24/kodim05.png --size 256 --device cpu \
    --out docs/svnr_figure.png
python benchmarks/svnr_table.py --device cpu --sets cbsd68 --no-fmdd --rows svnr cddpm --out $O/svnr_cbsd68_all
python benchmarks/svnr_table.py --device cpu --sets cbsd68 --no-fmdd --rows bm3d --noises poisson_gaussian:0.01,5 spatial:5,50 --out $O/svnr_cbsd68_all_bm3d
