#!/usr/bin/env bash
# Multi-GPU checks for BENCHMARKS.md, on a 2-GPU machine (nvidia-h200-x2), from the repo root:
#
#   bash benchmarks/multi_gpu.sh DATA_ROOT IMAGE_FOLDER            e.g. .carry/data .carry/data/kodak24
#   SMOKE=1 bash benchmarks/multi_gpu.sh ../shared/data ../shared/data/set12     CPU smoke test of the script
#
# (a) DDP training: configs/dncnn-gray.json for STEPS steps (default 1200; max_minutes=MAX_MIN, 1.75, is only a
#     safety cap: the cosine follows whichever of steps and time is further along) on 1 GPU, then under torchrun on
#     2 GPUs with the same global batch (128 = 2 x 64); steps/s and final loss of each.
# (b) Sharded folder inference of IMAGE_FOLDER with METHOD (default realdiff) and INFER_ARGS (default none, e.g.
#     "--samples 4" for more work per image): one GPU (--devices cuda:0), both GPUs (--devices all, one spawned
#     worker per GPU) and torchrun --nproc-per-node 2; wall time, images/s (overall and after the first image, from
#     the command's closing line), and whether the outputs are byte-identical to the one-GPU run.  A folder of a
#     few hundred images (e.g. DATA_ROOT/bsds500/test, 200) keeps start-up from dominating.
# (c) benchmarks/speed.py on one GPU (every shipped method and the reference nets, fp32/bf16, 512x512 x8 and 4K).
#
# Each part runs under `timeout` and its failure does not stop the others; BUDGET (default 500 s) caps the whole
# script: the later parts get what is left (speed.py keeps its partial results).  Files in $OUT (default
# out/multi_gpu): summary.md, train_1gpu.log, train_2gpu.log, infer.log, speed.json, speed.md.
set -uo pipefail
DATA=${1:?usage: benchmarks/multi_gpu.sh DATA_ROOT IMAGE_FOLDER}
IMAGES=${2:?usage: benchmarks/multi_gpu.sh DATA_ROOT IMAGE_FOLDER}
OUT=${OUT:-out/multi_gpu}
WORK=${WORK:-/tmp/diffdenoise_multi_gpu}
METHOD=${METHOD:-realdiff}
INFER_ARGS=${INFER_ARGS:-}
STEPS=${STEPS:-1000}
MAX_MIN=${MAX_MIN:-1.5}
BUDGET=${BUDGET:-500}
START=$(date +%s)
PY=${PY:-python3}
export NCCL_NVLS_ENABLE=0            # the device docs: NVLink multicast off
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
rm -rf "$WORK" && mkdir -p "$WORK"

if [[ ${SMOKE:-0} == 1 ]]; then      # CPU: tiny preset, gloo, two CPU workers, speed.py --quick
    CONFIG=configs/tiny-dncnn.json
    TRAIN_SETS=(--set "data_root=$WORK/tiny_data" --set steps=20 --set log_every=5)
    DEVICE_ONE=cpu DEVICES_ALL=cpu,cpu TORCHRUN_DEVICE=(--device cpu)
    SPEED_ARGS=(--device cpu --quick --methods dncnn --references dncnn ffdnet)
    export OMP_NUM_THREADS=1
    mkdir -p "$WORK/tiny_data/tiny"
    $PY - "$WORK/tiny_data/tiny" <<'EOF'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for i in range(4):
    Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((64, 56), Image.BICUBIC).save(f"{sys.argv[1]}/{i}.png")
EOF
else
    CONFIG=configs/dncnn-gray.json
    TRAIN_SETS=(--set "data_root=$DATA" --set "steps=$STEPS" --set "max_minutes=$MAX_MIN" --set log_every=100
                --set save_every=100000)
    DEVICE_ONE=cuda:0 DEVICES_ALL=all TORCHRUN_DEVICE=()
    SPEED_ARGS=(--device cuda --warmup 1 --repeats 3 --min-seconds 0.5 ${SPEED_EXTRA:-})
fi

note() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$WORK/progress.txt" >&2; }
# cap SECONDS: the smaller of SECONDS and what is left of BUDGET (at least 10 s)
cap() { local left=$(( BUDGET - ($(date +%s) - START) )); (( left < 10 )) && left=10; echo $(( $1 < left ? $1 : left )); }
{ echo "# multi_gpu.sh $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())"
} > "$WORK/header.txt" 2>&1
cat "$WORK/header.txt" >&2

# ---------------------------------------------------------------------------------------------- (a) DDP training
part_a() {
    note "(a) training on 1 device"
    timeout "$(cap 130)" $PY -m diffdenoise.train $CONFIG "${TRAIN_SETS[@]}" --out "$WORK/train1" \
        > "$OUT/train_1gpu.log" 2>&1 || note "(a) 1-device run failed or timed out (exit $?)"
    note "(a) training under torchrun on 2 devices"
    timeout "$(cap 130)" $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m diffdenoise.train $CONFIG \
        "${TRAIN_SETS[@]}" --out "$WORK/train2" > "$OUT/train_2gpu.log" 2>&1 \
        || note "(a) 2-device run failed or timed out (exit $?)"
}

# ------------------------------------------------------------------------------------------- (b) sharded inference
part_b() {
    local log=$OUT/infer.log
    : > "$log"
    run_infer() {   # NAME COMMAND...: exit code and wall milliseconds of one folder run into $WORK/infer_NAME.time
        local name=$1; shift
        echo "### $name: $*" >> "$log"
        local t0=$(date +%s%N)
        timeout "$(cap 90)" "$@" >> "$log" 2>&1
        local rc=$? t1=$(date +%s%N)
        echo "$rc $(( (t1 - t0) / 1000000 ))" > "$WORK/infer_$name.time"
        note "(b) $name: exit $rc, $(( (t1 - t0) / 1000000 )) ms"
    }
    note "(b) inference of $IMAGES with $METHOD"
    run_infer one $PY -m diffdenoise denoise "$IMAGES" -o "$WORK/infer_one" --method "$METHOD" $INFER_ARGS \
        --devices "$DEVICE_ONE"
    run_infer all $PY -m diffdenoise denoise "$IMAGES" -o "$WORK/infer_all" --method "$METHOD" $INFER_ARGS \
        --devices "$DEVICES_ALL"
    run_infer torchrun $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m diffdenoise denoise "$IMAGES" \
        -o "$WORK/infer_torchrun" --method "$METHOD" $INFER_ARGS "${TORCHRUN_DEVICE[@]}"
}

# ------------------------------------------------------------------------------------------------ (c) speed table
part_c() {
    note "(c) speed.py on one device"
    CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} timeout "$(cap 240)" $PY benchmarks/speed.py "${SPEED_ARGS[@]}" \
        --out "$OUT/speed" > "$WORK/speed.log" 2>&1 || note "(c) speed.py failed or timed out (exit $?)"
    if [[ -f $OUT/speed.json && ! -f $OUT/speed.md ]]; then      # cut short: the table from the partial JSON
        $PY -c "import json, sys; sys.path.insert(0, 'benchmarks'); from speed import markdown; \
print(markdown(json.load(open('$OUT/speed.json'))), end='')" > "$OUT/speed.md" 2>> "$WORK/speed.log"
    fi
    tail -5 "$WORK/speed.log" >&2
}

part_a
part_b
part_c

# ------------------------------------------------------------------------------------------------------- summary
$PY - "$WORK" "$OUT" "$IMAGES" "$METHOD" <<'EOF' > "$OUT/summary.md" 2>&1
import json, sys
from pathlib import Path
work, out, images, method = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
print((work / "header.txt").read_text().strip().replace("\n", "  \n"), "\n")
print("## (a) DDP training, same global batch\n")
print("| run | steps | steps/s (mean after the first log) | images/s | final logged loss | minutes |")
print("|---|---:|---:|---:|---:|---:|")
for name, label in (("train1", "1 device"), ("train2", "torchrun, 2 devices")):
    path = work / name / "log.jsonl"
    recs = [json.loads(l) for l in path.read_text().splitlines() if '"loss"' in l] if path.exists() else []
    if not recs:
        print(f"| {label} | failed: see train_{name[-1]}gpu.log | | | | |")
        continue
    rest = recs[1:] or recs
    it_s = sum(r["it_s"] for r in rest) / len(rest)
    img_s = sum(r["img_s"] for r in rest) / len(rest)
    print(f"| {label} | {recs[-1]['step']} | {it_s:.2f} | {img_s:.0f} | {recs[-1]['loss']:.5f} | "
          f"{recs[-1]['minutes']:.2f} |")
print()
suffixes = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
files = sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
print(f"## (b) sharded inference: {len(files)} images of {images}, method {method}\n")
print("| run | exit | wall s | images/s | closing line of the command | outputs equal to the one-device run |")
print("|---|---:|---:|---:|---|---|")
ref = work / "infer_one"
def same(folder):
    if not folder.is_dir() or not ref.is_dir():
        return "n/a"
    a, b = sorted(p.name for p in ref.iterdir()), sorted(p.name for p in folder.iterdir())
    return "yes" if a == b and all((ref / n).read_bytes() == (folder / n).read_bytes() for n in a) else "NO"
sections, current = {}, None
log = out / "infer.log"
for line in (log.read_text(errors="replace").splitlines() if log.exists() else []):
    if line.startswith("### "):
        current = line[4:].split(":")[0]
    elif current and line.startswith("diffdenoise: ") and " images in " in line:
        sections.setdefault(current, []).append(line[len("diffdenoise: "):].strip())
for name, label in (("one", "--devices one"), ("all", "--devices all"), ("torchrun", "torchrun 2 (rank 0's share)")):
    t = work / f"infer_{name}.time"
    if not t.exists():
        print(f"| {label} | not run | | | | |")
        continue
    rc, ms = t.read_text().split()
    sec = int(ms) / 1000
    closing = "; ".join(sections.get(name, [])).replace("|", "/")
    print(f"| {label} | {rc} | {sec:.1f} | {len(files) / sec:.2f} | {closing} | "
          f"{'(reference)' if name == 'one' else same(work / f'infer_{name}')} |")
print("\nWall time includes interpreter start, model loading and (for --devices all) spawning the workers.\n")
speed = out / "speed.md"
print("## (c) speed.py, one device\n")
print(speed.read_text() if speed.exists() else "speed.py wrote nothing: see the log")
EOF
cat "$OUT/summary.md"
