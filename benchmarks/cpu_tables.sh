#!/usr/bin/env bash
# The CPU figures in BENCHMARKS.md: run from the repo root after `make test` created .venv.
#
#   bash benchmarks/cpu_tables.sh                  every section, in the order below (many hours on 2 cores)
#   bash benchmarks/cpu_tables.sh real set12       only these sections
#   KIND=learned bash benchmarks/cpu_tables.sh real    only the CNN/diffusion rows (after new weights)
#
# Sections: estimate cbsd68 bsd68 kodak24_bm3d (the first tables), noisy polyu fmdd sidd (= real), set12, bsd68_more,
# cbsd68_more, kodak24 (= gaussian: set12 .. kodak24), bm3d_real (CBM3D/BM3D on the first images of the real sets).
# KIND: all (default), learned (CNNs and diffusion) or classical.  Each section writes
# benchmarks/results/cpu/<set>_<noise>_<kind>.{md,json,csv}; learned and classical rows go to separate files so either
# can be rerun alone, and benchmarks/rank.py keeps the newest record of each method/set/noise.
# Environment: DATA (default ../shared/data), DIFFDENOISE_WEIGHTS (default <repo>/weights), LIMIT_BM3D_* below.
set -euo pipefail
D=${DATA:-../shared/data}
R=benchmarks/results/cpu
B=".venv/bin/diffdenoise bench --device cpu -q"
KIND=${KIND:-all}
CNNS=dncnn,rednet,mwcnn,pridnet
# CBM3D takes about 190 s per 768x512 colour image at sigma 25 here (gray BM3D about 15 s per Set12 image); on the
# real colour sets, whose estimated sigma is small, 32 s (PolyU) and 23 s (SIDD) per image, so they run whole; set a
# LIMIT_BM3D_* to run the first N images only.
LIMIT_BM3D_POLYU=${LIMIT_BM3D_POLYU-}
LIMIT_BM3D_FMDD=${LIMIT_BM3D_FMDD-}
LIMIT_BM3D_SIDD=${LIMIT_BM3D_SIDD-}
mkdir -p $R

# bench OUT KIND METHODS ARGS...: one bench run writing $R/OUT.{md,json,csv}, when KIND is selected.
bench() {
    local out=$1 kind=$2 methods=$3
    shift 3
    [[ $KIND == all || $KIND == "$kind" ]] || return 0
    echo "[$(date -u +%FT%TZ)] $out: $methods $*" >&2
    $B --methods "$methods" "$@" --json $R/$out.json --csv $R/$out.csv > $R/$out.md
}

section_estimate() {
    [[ $KIND == all || $KIND == classical ]] || return 0
    .venv/bin/python benchmarks/estimate_noise.py --data $D/kodak24 --json $R/estimate_kodak24.json \
        > $R/estimate_kodak24.md
}

# The first tables (CBSD68 sigma 25 for every method, BSD68 sigma 25, CBM3D on Kodak24).
section_cbsd68() {
    bench cbsd68_s25_classical classical gaussian,median,bilateral,wavelet,tv,nlm --data $D/cbsd68 --noise gaussian:25
    bench cbsd68_s25_learned learned $CNNS,cddpm,realdiff --data $D/cbsd68 --noise gaussian:25
}
section_bsd68() {
    bench bsd68_s25_learned learned $CNNS,cddpm --data $D/bsd68 --noise gaussian:25
    bench bsd68_s25_classical classical nlm --data $D/bsd68 --noise gaussian:25
}
section_kodak24_bm3d() {
    bench kodak24_bm3d_s25 classical bm3d --data $D/kodak24 --noise gaussian:25
}

# Real noise: noisy/clean pairs; every method is blind (classical ones estimate sigma from the image, PCA).
section_noisy() {
    [[ $KIND == all || $KIND == classical ]] || return 0
    .venv/bin/python benchmarks/noisy_input.py $D/polyu:test $D/fmdd $D/sidd_sample > $R/noisy_input.md
}
section_polyu() {
    bench polyu_test_learned learned $CNNS,pridnet-real,cddpm,realdiff --data $D/polyu --split test
    bench polyu_test_classical classical nlm --data $D/polyu --split test
}
section_fmdd() {
    bench fmdd_learned learned $CNNS,pridnet-real,cddpm,realdiff --data $D/fmdd
    bench fmdd_classical classical nlm --data $D/fmdd
}
section_sidd() {
    bench sidd_sample_learned learned $CNNS,pridnet-real,cddpm,realdiff --data $D/sidd_sample
    bench sidd_sample_classical classical nlm --data $D/sidd_sample
}
# Rows added after the first `real` run of 2026-11-22 (dncnn re-measured with the continued dncnn weights shipped
# that day, pridnet-real once shipped); `real` itself now covers them.
section_real_added() {
    bench polyu_test_added learned dncnn,pridnet-real --data $D/polyu --split test
    bench fmdd_added learned pridnet-real --data $D/fmdd
    bench sidd_sample_added learned pridnet-real --data $D/sidd_sample
}
# dncnn re-measured on the CPU after the same weights update (the cbsd68/bsd68 sigma 25 files above predate it).
section_gaussian_added() {
    bench bsd68_s25_added learned dncnn --data $D/bsd68 --noise gaussian:25
    bench cbsd68_s25_added learned dncnn --data $D/cbsd68 --noise gaussian:25
}
section_bm3d_real() {
    bench polyu_test_bm3d classical bm3d --data $D/polyu --split test ${LIMIT_BM3D_POLYU:+--limit $LIMIT_BM3D_POLYU}
    bench fmdd_bm3d classical bm3d --data $D/fmdd ${LIMIT_BM3D_FMDD:+--limit $LIMIT_BM3D_FMDD}
    bench sidd_sample_bm3d classical bm3d --data $D/sidd_sample ${LIMIT_BM3D_SIDD:+--limit $LIMIT_BM3D_SIDD}
}

# Gaussian noise, true sigma given to the methods that take it (the CNNs and realdiff are blind).
section_set12() {
    for s in 15 25 50; do
        bench set12_s${s}_learned learned $CNNS,cddpm --data $D/set12 --noise gaussian:$s
        bench set12_s${s}_classical classical nlm,bm3d --data $D/set12 --noise gaussian:$s
    done
}
section_bsd68_more() {
    for s in 15 50; do
        bench bsd68_s${s}_learned learned $CNNS,cddpm --data $D/bsd68 --noise gaussian:$s
    done
    for s in 15 25 50; do
        bench bsd68_s${s}_classical classical nlm --data $D/bsd68 --noise gaussian:$s
    done
}
section_cbsd68_more() {
    for s in 15 50; do
        bench cbsd68_s${s}_learned learned $CNNS,cddpm --data $D/cbsd68 --noise gaussian:$s
    done
}
section_kodak24() {
    bench kodak24_s25_learned learned $CNNS,cddpm --data $D/kodak24 --noise gaussian:25 \
        ${LIMIT_KODAK24:+--limit $LIMIT_KODAK24}
}

ALL="estimate cbsd68 bsd68 kodak24_bm3d noisy polyu fmdd sidd set12 bm3d_real bsd68_more cbsd68_more kodak24"
sections=()
for arg in "${@:-all}"; do
    case $arg in
        all) sections+=($ALL) ;;
        real) sections+=(noisy polyu fmdd sidd) ;;
        gaussian) sections+=(set12 bsd68_more cbsd68_more kodak24) ;;
        *) if ! declare -F section_$arg > /dev/null; then
               echo "unknown section $arg; valid: all real gaussian $ALL" >&2
               exit 2
           fi
           sections+=($arg) ;;
    esac
done
for s in "${sections[@]}"; do
    section_$s
done
