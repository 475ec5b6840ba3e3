#!/usr/bin/env bash
# What one GPU can say about several (the several-GPUs issue), about 5 minutes:
#   1. sequence parallelism on CUDA: 2 processes sharing cuda:0 over gloo (NCCL refuses two ranks on
#      one GPU), tiny then 1.3B, each checked against one process (bench/bench_sequence.py); this
#      proves the sharded code on CUDA tensors, not a speed-up;
#   2. the 14B config on one GPU, random weights, 832x480 bf16, compiled, TAEW: seconds per chunk
#      without and with VACE at 4 and 2 steps, and peak memory (bench/bench_vace.py), against what
#      `vacelive plan` computes for it.
# The environment comes from bench/gpu_env.sh (WHEELS=.gpu/wheels by default).
set -u
cd "$(dirname "$0")/.."
source bench/gpu_env.sh

echo "== sequence parallelism on CUDA, 2 processes on cuda:0 over gloo, against one process"
timeout 60 $PY bench/bench_sequence.py --backend gloo --device cuda --processes 1 2 --vace --chunks 2
timeout 120 $PY bench/bench_sequence.py --backend gloo --device cuda --processes 1 2 --vace --chunks 2 \
  --config 1.3B --width 832 --height 480
echo "== 14B on one GPU: compiled, TAEW, no reference frames; 4 then 2 steps"
timeout 220 $PY bench/bench_vace.py --config 14B --compile --refs 0 --steps 4 --chunks 3 --json \
  | tee "$OUT/vace_14B_4steps.json"
timeout 120 $PY bench/bench_vace.py --config 14B --compile --refs 0 --steps 2 --chunks 3 --json \
  | tee "$OUT/vace_14B_2steps.json"
echo "== what vacelive plan computes for the 14B on one device (text encoder left out, as above)"
$PY -m vacelive.engine.cli plan --model 14B --devices 1 --no-text-encoder
