#!/usr/bin/env bash
# What one GPU can say about several (the several-GPUs issue), about 7 minutes in all:
#   sequence  sequence parallelism on CUDA: 2 processes sharing cuda:0 over gloo (NCCL refuses two
#             ranks on one GPU), tiny then 1.3B, each checked against one process
#             (bench/bench_parallel.py); this proves the sharded code on CUDA, not a speed-up;
#   14b       the 14B config on one GPU, random weights, 832x480 bf16, compiled, TAEW: seconds per
#             chunk without and with VACE at 4 and 2 steps, and peak memory (bench/bench_vace.py),
#             against what `vacelive plan` computes for it;
#   vace      the VACE branch in a worker process (layout vace), both processes on cuda:0 over
#             gloo, 1.3B bf16 at 832x480, checked against the branch in-process; then the whole
#             engine at 4 steps with a 30 fps target (vacelive bench), which prints the placement.
# Sections run in the order given (default: all). The environment comes from bench/gpu_env.sh
# (WHEELS=.gpu/wheels by default).
#   bash bench/gpu_parallel.sh [sequence] [14b] [vace]
set -u
cd "$(dirname "$0")/.."
source bench/gpu_env.sh
SECTIONS=${*:-sequence 14b vace}

for section in $SECTIONS; do
  case $section in
  sequence)
    echo "== sequence parallelism on CUDA, 2 processes on cuda:0 over gloo, against one process"
    timeout 60 $PY bench/bench_parallel.py --backend gloo --device cuda --processes 1 2 --vace --chunks 2
    timeout 120 $PY bench/bench_parallel.py --backend gloo --device cuda --processes 1 2 --vace --chunks 2 \
      --config 1.3B --width 832 --height 480
    ;;
  14b)
    echo "== 14B on one GPU: compiled, TAEW, no reference frames; 4 then 2 steps"
    timeout 220 $PY bench/bench_vace.py --config 14B --compile --refs 0 --steps 4 --chunks 3 --json \
      | tee "$OUT/vace_14B_4steps.json"
    timeout 120 $PY bench/bench_vace.py --config 14B --compile --refs 0 --steps 2 --chunks 3 --json \
      | tee "$OUT/vace_14B_2steps.json"
    echo "== what vacelive plan computes for the 14B on one device (text encoder left out, as above)"
    $PY -m vacelive.engine.cli plan --model 14B --devices 1 --no-text-encoder
    ;;
  vace)
    echo "== the VACE branch in a worker process, both on cuda:0 over gloo, 1.3B bf16, against in-process"
    timeout 150 $PY bench/bench_parallel.py --layout vace --backend gloo --device cuda --processes 1 2 \
      --config 1.3B --width 832 --height 480 --dtype bf16 --chunks 3
    echo "== the whole engine, one GPU: 1.3B random weights, compiled, TAEW, depth through VACE, 4 steps, 30 fps"
    timeout 90 $PY -m vacelive.engine.cli bench --model 1.3B --random-weights --device cuda --compile --vae tae \
      --annotator depth --steps 4 --fps 30 --seconds 12 --warmup 2 --json > "$OUT/e2e_4steps_30fps.json"
    cat "$OUT/e2e_4steps_30fps.json"
    ;;
  *) echo "unknown section $section (sequence, 14b, vace)"; exit 2 ;;
  esac
done
