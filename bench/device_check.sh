#!/usr/bin/env bash
# GPU check in one prepared run (issue 16): install onnxruntime-gpu from wheels brought along, then every
# preset on CUDA fp32 and TensorRT fp16 vs CPU fp32 (bench/device_check.py). Finishes in under 8 minutes:
# the install is bounded, and the Python part stops starting presets at --budget-s.
#
#   bash bench/device_check.sh                 # on the GPU machine, from the repository root
#
# Nothing is downloaded here: the GPU machine may have no network. Fetch the wheels beforehand, on a
# machine with PyPI access and the same Python (3.11) and platform (x86_64 Linux), into wheels/:
#
#   pip download -d wheels/ --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
#       "onnxruntime-gpu[cuda,cudnn]==1.31.1"          # ORT with the CUDA 13 / cuDNN runtime wheels (nvidia-*)
#   pip download -d wheels/ --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
#       tensorrt-cu13-libs==10.16.1.11                 # optional: the TensorRT provider's libraries
#   pip download -d wheels/ -c requirements/constraints.txt -r requirements/core.txt   # when the GPU machine
#                                                      # has no Python with the project's core packages
#
# Where the wheel cannot travel whole (the 256 MB onnxruntime-gpu wheel over a 64 MiB transfer limit), pack it for
# the one GPU architecture with bench/device/slim_onnxruntime_gpu.py, unpack it there and set ORT_SITE (below).
# (the TensorRT version must be the one onnxruntime-gpu 1.31.1 was built against: check its release notes;
# without the TensorRT libraries the TensorRT rows say so and the CUDA rows are still measured.)
# Environment: WHEELS (default wheels), PY (a Python that has the core requirements; default: a fresh venv
# in $VENV, default /tmp/hop_gpu_venv, installed from WHEELS), BUDGET_S (the Python part's budget, 400),
# ORT_SITE (a folder holding an unpacked onnxruntime-gpu package for PY: put first on PYTHONPATH instead of
# installing from WHEELS; for a machine with a CUDA PyTorch where the whole wheel cannot be carried).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-wheels}
VENV=${VENV:-/tmp/hop_gpu_venv}
BUDGET_S=${BUDGET_S:-400}
began=$(date +%s)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
if [ -z "${ORT_SITE:-}" ] && [ ! -d "$WHEELS" ]; then
    echo "device_check: no $WHEELS/ folder: fetch the wheels first (see the top of $0)" >&2
    exit 2
fi
if [ -z "${PY:-}" ]; then
    python3 -m venv --system-site-packages "$VENV"
    PY=$VENV/bin/python
    # The core requirements, except the CPU onnxruntime (it and onnxruntime-gpu share one import package).
    grep -v '^onnxruntime' requirements/core.txt > "$VENV/core-no-ort.txt"
    timeout 150 "$PY" -m pip install -q --no-index --find-links "$WHEELS" -c requirements/constraints.txt \
        -r "$VENV/core-no-ort.txt"
fi
if [ -n "${ORT_SITE:-}" ]; then
    export PYTHONPATH="$ORT_SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    "$PY" -m pip uninstall -q -y onnxruntime 2>/dev/null || true
    timeout 120 "$PY" -m pip install -q --no-index --find-links "$WHEELS" "onnxruntime-gpu[cuda,cudnn]==1.31.1"
    if ls "$WHEELS"/tensorrt_cu13_libs-* > /dev/null 2>&1; then
        timeout 120 "$PY" -m pip install -q --no-index --find-links "$WHEELS" tensorrt-cu13-libs
    fi
fi
# The TensorRT and nvidia-* libraries live inside their wheels: put them on the loader path.
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
libs=$( (find "$site/tensorrt_libs" "$site/nvidia" -maxdepth 3 -name 'lib*.so*' -printf '%h\n' 2>/dev/null || true) | sort -u | paste -sd: -)
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
installed=$(( $(date +%s) - began ))
echo "device_check: installed in ${installed} s"
left=$(( 470 - installed ))
budget=$(( BUDGET_S < left - 40 ? BUDGET_S : left - 40 ))
timeout "$left" "$PY" bench/device_check.py --budget-s "$budget" "$@"
echo "device_check: total $(( $(date +%s) - began )) s"
