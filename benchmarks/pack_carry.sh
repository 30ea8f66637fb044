#!/usr/bin/env bash
# Build the git-ignored folders under .carry/ that the GPU rounds (benchmarks/round*.sh) name in the device tool's
# `carry` (64 MiB per call, working tree included: park weights/ outside the repo during a call). Hard links where
# the file system allows, so a folder costs no disk here.
#
#   bash benchmarks/pack_carry.sh data d9 bsds500 polyu fmdd8      # .carry/d9: training data + evaluation pairs
#   bash benchmarks/pack_carry.sh init init9 realdiff-color realdiff-gray   # .carry/init9: weights to start from
#   bash benchmarks/pack_carry.sh unpack /work/.device/2 init9b     # a call's returned weights.tar(.partNN) -> .carry
#
# Data parts (from $DATA, default ../shared/data): bsds500 (train + test JPEGs, 29 MB; never val, which CBSD68 and
# BSD68 come from), polyu (pairs + test_split.txt, 4.9 MB; the loader leaves the test pairs out of training),
# bsd400, t91, fmdd8 (e7/fmdd: every sixth FMDD pair in sorted order, the drivers' 8 evaluation pairs), cbsd10
# (e7/cbsd68: the first 10 CBSD68 images). Init parts: weight stems in $WEIGHTS (default weights/), card + shards.
set -euo pipefail
DATA=${DATA:-../shared/data}
WEIGHTS=${WEIGHTS:-weights}
mode=${1:?usage: pack_carry.sh data|init|unpack ...}
shift

link() {  # link SRC... DEST_DIR: hard links when possible, else copies
    local dest=${@: -1}
    mkdir -p "$dest"
    cp -al "${@:1:$#-1}" "$dest"/ 2>/dev/null || cp -a "${@:1:$#-1}" "$dest"/
}

case $mode in
data)
    out=.carry/${1:?name}
    shift
    for part in "$@"; do
        case $part in
        bsds500) link "$DATA"/bsds500/train "$DATA"/bsds500/test "$out/bsds500" ;;
        polyu) link "$DATA"/polyu/noisy "$DATA"/polyu/clean "$DATA"/polyu/test_split.txt "$out/polyu" ;;
        bsd400) link "$DATA"/bsd400/. "$out/bsd400" ;;
        t91) link "$DATA"/t91/. "$out/t91" ;;
        fmdd8)
            mapfile -t names < <(ls "$DATA"/fmdd/noisy | sort | awk 'NR % 6 == 1')
            for sub in noisy clean; do
                link "${names[@]/#/$DATA/fmdd/$sub/}" "$out/e7/fmdd/$sub"
            done ;;
        cbsd10)
            mapfile -t names < <(ls "$DATA"/cbsd68 | sort | head -10)
            link "${names[@]/#/$DATA/cbsd68/}" "$out/e7/cbsd68" ;;
        *) echo "unknown data part: $part" >&2; exit 2 ;;
        esac
    done ;;
init)
    out=.carry/${1:?name}
    shift
    mkdir -p "$out"
    for stem in "$@"; do
        [[ -f $WEIGHTS/$stem.json ]] || { echo "no weights $WEIGHTS/$stem.json" >&2; exit 2; }
        cp "$WEIGHTS/$stem.json" "$out"/
        for f in "$WEIGHTS/$stem".safetensors "$WEIGHTS/$stem"-0*-of-*.safetensors; do
            [[ -f $f ]] && cp "$f" "$out"/
        done
    done ;;
unpack)
    src=${1:?folder with weights.tar or weights.tar.partNN}
    out=.carry/${2:?name}
    mkdir -p "$out"
    if [[ -f $src/weights.tar ]]; then tar -xf "$src/weights.tar" -C "$out"
    else cat "$src"/weights.tar.part* | tar -xf - -C "$out"; fi ;;
*) echo "usage: pack_carry.sh data|init|unpack ..." >&2; exit 2 ;;
esac
du -sh "$out"
