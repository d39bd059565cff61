#!/usr/bin/env bash
# The GPU check of issues 5 and 28, for a machine that has a CUDA GPU with CuPy,
# numba-cuda, PyTorch and pytest installed: it installs nothing and uses only generated
# data.
#
#   bash benchmarks/gpu_check.sh            the `gpu` tests on the GPU, the GPU benchmark,
#                                           then the CUDA kernels' tests in the simulator
#   bash benchmarks/gpu_check.sh --dry-run  on any machine: checks that the script finds
#                                           its tests and its benchmark, runs neither
#
# The GPU parts run with NUMBA_ENABLE_CUDASIM=0 (numba.cuda drives the GPU), the
# simulator's with NUMBA_ENABLE_CUDASIM=1 (tests/conftest.py would otherwise turn the
# simulator on for every pytest run). Writes gpu_check.log (everything printed) and
# gpu_bench.json (the benchmark) under $OUT when it is set, else under runs/gpu_check/.
# Each part runs under a time limit so the whole check ends within 8.5 minutes; it exits
# non-zero when any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

dry_run=0
case "${1:-}" in
    --dry-run) dry_run=1 ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac

out="${OUT:-runs/gpu_check}"
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1

PYTHON="${PYTHON:-python3}"
TESTS_LIMIT_S=220   # a fresh machine compiles every CuPy (NVRTC) and Numba CUDA kernel first
BENCH_LIMIT_S=120
SIMULATOR_LIMIT_S=150
SIMULATOR_TESTS=(tests/test_cuda_kernels.py tests/test_cuda_recurrent.py)
status=0

echo "minidl GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

if [ "$dry_run" = 1 ]; then
    collected=$(NUMBA_ENABLE_CUDASIM=0 "$PYTHON" -m pytest --collect-only -q -m gpu -p no:cacheprovider tests/test_gpu.py | grep -c "::")
    echo "gpu tests found: $collected"
    if [ "$collected" -lt 1 ]; then
        echo "dry run: no gpu tests collected"; exit 1
    fi
    simulated=$(NUMBA_ENABLE_CUDASIM=1 "$PYTHON" -m pytest --collect-only -q -p no:cacheprovider "${SIMULATOR_TESTS[@]}" | grep -c "::")
    echo "simulator tests found: $simulated"
    if [ "$simulated" -lt 1 ]; then
        echo "dry run: no simulator tests collected"; exit 1
    fi
    if ! "$PYTHON" -m benchmarks.gpu_bench --dry-run; then
        echo "dry run: the benchmark failed to build its models"; exit 1
    fi
    echo "dry run: ok"
    exit 0
fi

echo "== gpu tests (limit ${TESTS_LIMIT_S}s)"
NUMBA_ENABLE_CUDASIM=0 timeout "$TESTS_LIMIT_S" "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider -rs tests/test_gpu.py || status=1

echo "== gpu benchmark (limit ${BENCH_LIMIT_S}s)"
NUMBA_ENABLE_CUDASIM=0 timeout "$BENCH_LIMIT_S" "$PYTHON" -m benchmarks.gpu_bench --json "$out/gpu_bench.json" || status=1

# Last: they need no GPU (CI runs them too), so they only spend what the GPU parts left.
echo "== CUDA kernels in the simulator (limit ${SIMULATOR_LIMIT_S}s)"
NUMBA_ENABLE_CUDASIM=1 MINIDL_KERNELS=cudasim timeout "$SIMULATOR_LIMIT_S" "$PYTHON" -m pytest -q -p no:cacheprovider \
    "${SIMULATOR_TESTS[@]}" || status=1

echo "gpu check: $([ "$status" = 0 ] && echo ok || echo FAILED) (log: $log)"
exit "$status"
