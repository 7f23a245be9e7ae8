#!/usr/bin/env bash
# The GPU figures the README leaves "not measured", in one run of under 8 minutes on one CUDA GPU:
#
#   1. notebooks 05 and 08 in classroom mode on the GPU (their GPU sizes), with bench/course.py: wall time,
#      slowest cell, and every expect() number (which a GPU run does not judge against the CPU ranges);
#   2. bench/train.py, GPT-2 124M shape, batch 16 x 1,024: bf16 + SDPA + torch.compile, the same without
#      compile, and fp32 (TF32 matmuls) without compile: tokens/s and MFU (all three against the bf16 peak).
#
#   OUT=/some/folder bash bench/gpu_check.sh        # from the repository root; figures go to $OUT
#
# Each part has its own time limit (470 s in all), so one slow part cannot eat the others' time. What
# finished is in $OUT: gpu.txt (nvidia-smi, torch), course_gpu_05.md and course_gpu_08.md (+ .json),
# executed/ (the notebooks with their outputs: the sizes line, losses, samples), train_bench.txt, and
# times.txt (seconds per part). No network is needed.
set -u
OUT=${OUT:-bench/gpu_check_out}
PY=${PYTHON:-$(command -v python || command -v python3)}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
HOME_DIR=$(mktemp -d)  # a fresh GPTMINI_HOME: the notebooks train what they need (checkpoints stay out of $OUT)

part() {  # part NAME LIMIT_S COMMAND...: run with a time limit, log its wall time and exit status
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout -k 10 "$limit" "$@"
    rc=$?
    echo "$name: $(($(date +%s) - start)) s, exit $rc$([ $rc = 124 ] && echo " (stopped at the ${limit} s limit)")" |
        tee -a "$OUT/times.txt"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>&1
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available())" 2>&1
    "$PY" -c "import gptmini.course as c, gptmini.device as d; print('gptmini sees', d.describe(d.get_device()))" 2>&1
} | tee "$OUT/gpu.txt"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA GPU visible: nothing to measure" | tee -a "$OUT/gpu.txt"
    exit 1
fi

# 1. The notebooks as a student runs them (classroom mode; on CUDA that means their GPU sizes). A cell that
# runs past its limit is reported as such in the table (so is the time it reached), the rest still comes back.
if "$PY" -c "import nbclient, nbformat, ipykernel, matplotlib, ipywidgets, tqdm" 2>/dev/null; then
    for nb in 05 08; do
        cell_limit=$([ $nb = 05 ] && echo 160 || echo 80)
        part "notebook $nb (classroom mode)" $((cell_limit + 50)) "$PY" bench/course.py "$nb" --mode classroom \
            --home "$HOME_DIR" --timeout "$cell_limit" --keep "$OUT/executed" --out "$OUT/course_gpu_$nb.md"
    done
else
    echo "notebooks skipped: nbclient, nbformat, ipykernel, matplotlib, ipywidgets or tqdm is not installed" |
        tee -a "$OUT/times.txt"
fi

# 2. Throughput of the GPT-2 124M shape: 20 timed steps each after the warm-up (compilation included in it).
{
    part "train bf16+compile" 70 "$PY" bench/train.py --gpu-only --gpu-steps 20
    part "train bf16" 30 "$PY" bench/train.py --gpu-only --gpu-steps 20 --no-compile
    part "train fp32 (TF32 matmuls)" 30 "$PY" bench/train.py --gpu-only --gpu-steps 20 --no-compile --amp off
} 2>&1 | tee "$OUT/train_bench.txt"

rm -rf "$HOME_DIR"
cat "$OUT/times.txt"
