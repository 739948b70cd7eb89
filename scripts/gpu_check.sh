#!/usr/bin/env bash
# One command for a GPU machine: the CUDA tests, every recipe on --device cuda, the GPU
# benchmarks, the real-data path (rendered tree, ViT-B/16, loader workers); JSON, logs and a
# performance page in OUTDIR (default gpu_check/). Budget: about
# 12 minutes on one GPU (each part has its own time limit). Exits non-zero when no CUDA device
# is present, or when any part failed (the list is printed at the end).
#
#     scripts/gpu_check.sh [OUTDIR]
#     GPU_CHECK_PARTS="render_tree vit_b16_real loader" scripts/gpu_check.sh OUTDIR   # a subset
#
# (a machine lent for 10 minutes a command: run the parts in two calls, same OUTDIR)
#
# Then copy OUTDIR/*.json to benchmarks/results/ and run `python scripts/make_performance.py`.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-gpu_check}" && cd "${1:-gpu_check}" && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" TQDM_DISABLE=1 DGBLOCKS_RESULTS_DIR="$OUT"
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device is present: nothing was run or measured" >&2
    exit 2
fi
python -c "import torch; print('gpu_check:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
failed=()
part() {  # part NAME SECONDS CMD...: run CMD with a time limit, its output in OUT/NAME.log
    local name=$1 limit=$2; shift 2
    if [[ -n "${GPU_CHECK_PARTS:-}" && " $GPU_CHECK_PARTS performance " != *" $name "* ]]; then
        echo "== $name (not in GPU_CHECK_PARTS)"; return
    fi
    echo "== $name (limit ${limit} s)"
    local t0=$SECONDS
    if timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; then
        echo "   ok ($((SECONDS - t0)) s)"
    else
        echo "   FAILED ($((SECONDS - t0)) s): see $OUT/$name.log"; tail -5 "$OUT/$name.log"
        failed+=("$name")
    fi
}
# the CUDA tests: block contract without host syncs; every recipe's smoke run on CUDA with a
# training step under sync debug mode "error", plain and --amp bf16; the compiled baseline
part pytest_cuda 170 python -m pytest -m cuda -q -p no:cacheprovider -x --junitxml "$OUT/pytest_cuda.xml"
part dg_overhead_gpu 90 python -m benchmarks.dg_overhead --gpu --warmup 2 --rounds 3
part throughput_gpu 90 python -m benchmarks.throughput --device cuda --amp bf16 --steps 30 \
    --out throughput_gpu
part throughput_gpu_compile 90 python -m benchmarks.throughput --device cuda --amp bf16 --steps 30 \
    --compile --methods "baseline (AGG)" DIR-ReID DDAN --out throughput_gpu_compile
part kernels 30 python -m benchmarks.kernels
# the real-data path at the papers' size: a rendered tree (256 x 128 JPEG/PNG in each dataset's
# layout), ViT-B/16 from it through the file loaders with 8 workers, bf16 (its loss must fall:
# the run's metrics log is in OUT/vit_b16/), and the input pipeline on this machine's cores
part render_tree 90 python -m dgblocks.data.render_tree "$OUT/tree" --scale 0.05 --jobs 8 --quiet \
    --overwrite
part vit_b16_real 200 python recipes/baseline.py --data real --data-root "$OUT/tree" \
    --protocol protocol1 --image-size 256 128 --backbone vit_b16 --device cuda --amp bf16 \
    --workers 8 --steps 150 --batch-size 64 --lr 3.5e-4 --log-every 10 --no-plots \
    --overwrite --out "$OUT/vit_b16/r.json"
part loader 120 python -m benchmarks.loader
part performance 10 python scripts/make_performance.py --results "$OUT" --out "$OUT/performance.md"
if ((${#failed[@]})); then
    echo "gpu_check: FAILED: ${failed[*]} (outputs in $OUT)" >&2
    exit 1
fi
echo "gpu_check: all parts passed; JSON and performance.md in $OUT"
