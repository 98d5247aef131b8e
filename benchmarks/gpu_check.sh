#!/usr/bin/env bash
# The GPU check: the search and evaluate benchmarks on CUDA in one command (about 5 minutes on one GPU),
# each writing JSON + markdown under OUT, plus OUT/device.json (what ran them). Without a GPU the same
# benchmarks run on the CPU with a few users (the CPU fallback, tested in tests/test_gpu_check.py).
#
#   bash benchmarks/gpu_check.sh [OUT]          # default OUT: benchmarks/results/gpu_check
#
# Environment: PYTHON (default: .venv/bin/python if present, else python3), GPU_CHECK_USERS (validation
# users of the exact-surrogate and evaluate runs; default 943 on CUDA, 16 on CPU), GPU_CHECK_BEAM_USERS
# (the beam-surrogate run, whose reference engine calls generate; default 200 on CUDA, 8 on CPU),
# GPU_CHECK_DIGIT_USERS (the random t5-small-shaped P5 checkpoint with digit-text items: beam lists and
# exact scores, fast paths vs transformers; default 128 on CUDA, 4 on CPU, where exact scores are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu_check}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUT"
CUDA=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))')
if [[ "$CUDA" == 1 ]]; then DEVICE=cuda; USERS=${GPU_CHECK_USERS:-943}; BEAM=${GPU_CHECK_BEAM_USERS:-200};
  DIGIT=${GPU_CHECK_DIGIT_USERS:-128}; DIGIT_EXACT=16;
else DEVICE=cpu; USERS=${GPU_CHECK_USERS:-16}; BEAM=${GPU_CHECK_BEAM_USERS:-8}; DIGIT=${GPU_CHECK_DIGIT_USERS:-4};
  DIGIT_EXACT=0; fi
"$PYTHON" - "$OUT/device.json" "$DEVICE" <<'PY'
import json, platform, sys, time
import torch
cuda = sys.argv[2] == "cuda"
info = {"device": sys.argv[2], "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "cpu_threads": torch.get_num_threads(), "machine": platform.machine()}
open(sys.argv[1], "w").write(json.dumps(info, indent=2) + "\n")
print(json.dumps(info))
PY
echo "gpu_check: device $DEVICE, $USERS users (beam: $BEAM), results in $OUT"
"$PYTHON" benchmarks/search_speed.py --device "$DEVICE" --users "$USERS" --surrogate exact --out "$OUT/search_speed_exact"
"$PYTHON" benchmarks/search_speed.py --device "$DEVICE" --users "$BEAM" --surrogate beam --out "$OUT/search_speed_beam"
"$PYTHON" benchmarks/search_speed.py --device "$DEVICE" --users "$BEAM" --protocol paper --out "$OUT/search_speed_paper"
"$PYTHON" benchmarks/evaluate_speed.py --device "$DEVICE" --users "$USERS" --full-users "$(( USERS < 128 ? USERS : 128 ))" \
  --machine "$DEVICE" --out "$OUT/evaluate_speed"
"$PYTHON" benchmarks/digit_items_speed.py --device "$DEVICE" --p5-shaped "$OUT/p5-shaped" --users "$DIGIT" \
  --exact-users "$DIGIT_EXACT" --out "$OUT/digit_items_speed"
"$PYTHON" benchmarks/search_speed.py --device "$DEVICE" --p5-shaped "$OUT/p5-shaped" --users "$DIGIT" --surrogate beam \
  --out "$OUT/search_speed_p5-shaped_beam"
rm -f "$OUT/p5-shaped/model.pth"  # 240 MB, rebuilt from its seed
echo "gpu_check: done ($OUT)"
