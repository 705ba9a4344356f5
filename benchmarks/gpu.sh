#!/usr/bin/env bash
# The GPU checks and timings, in one script for a machine with a CUDA GPU
# (and torch, torch_geometric and this package importable there):
#
#   TORCH_GEOMETRIC_EA_MIRROR=/path/to/data OUT=runs/gpu bash benchmarks/gpu.sh
#
# 1. the device test suite, whose `device` fixture adds 'cuda' there
#    (layers, compile, dtypes, autocast, models, loss, metrics, trainers,
#    Aligner): log in $OUT/tests.log;
# 2. Dual-AMN on CUDA through the harness, one fresh process each:
#    DBP15K zh_en semi-supervised (its round 0 is the basic 20 epochs),
#    ja_en basic (the official notebook's 20 epochs: 27 s) and the 100K
#    synthetic pair with the scale settings (the paper's DWY100K: 1,100 s);
#    records go to benchmarks/results/gpu (kept apart from the CPU records)
#    and the Markdown table to $OUT/table.md, for the page
#    docs/results/gpu.rst (GPU runs: no figure there yet).
# With the mirror copied into an ignored folder of the repository, the
# device tool carries it (64 MiB in all: dbp15k/zh_en and ja_en fit).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device here'"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" || true

python -m pytest -q -m "not slow" -k "cuda" tests/nn tests/test_on_every_device.py \
    tests/test_default_device.py tests/test_device_cli.py 2>&1 | tee "$OUT/tests.log"

RECORDS=benchmarks/results/gpu
python benchmarks/run.py --models dual-amn:semi --runs dbp15k/zh_en \
    --records "$RECORDS" --out "$OUT/runs" --device cuda
python benchmarks/run.py --models dual-amn --runs dbp15k/ja_en \
    --records "$RECORDS" --out "$OUT/runs" --device cuda
python benchmarks/run.py --models dual-amn:scale --runs synthetic/100000 \
    --records "$RECORDS" --out "$OUT/runs" --device cuda
python benchmarks/run.py --models dual-amn:semi dual-amn dual-amn:scale \
    --runs dbp15k/zh_en dbp15k/ja_en synthetic/100000 --records "$RECORDS" \
    --out "$OUT/runs" --finished --phases --device cuda > "$OUT/table.md"
