#!/usr/bin/env bash
# One prepared GPU check (the GPU speed issue), about 5 minutes on a fresh GPU machine:
#   1. correctness: the tiny config on CUDA against the CPU, and compiled against eager on CUDA;
#   2. the matrix (bench/bench_matrix.py): 1.3B with random weights at 832x480 in bf16, steps 4/2 x
#      VACE off/on x compile off/on x Wan VAE / TAEW, with the attention kernels at the stream's
#      shapes, decode overlapped on a second CUDA stream, and peak memory; then which attention
#      kernel the DiT really runs and its share of a chunk (bench/attention_check.py);
#   3. the whole engine end to end (vacelive bench): start-up, first frame, fps, glass-to-glass,
#      peak VRAM, with depth control through VACE, compiled, TAEW; 4 then 2 steps.
# Figures also land in $OUT (or ./out/gpu) as JSON. The environment comes from bench/gpu_env.sh.
#
#   bash bench/gpu_check.sh            WHEELS=.gpu/wheels by default
set -u
cd "$(dirname "$0")/.."
source bench/gpu_env.sh

echo "== correctness: tiny config with VACE, CUDA fp32 against CPU fp32, and compiled against eager on CUDA"
timeout 90 $PY - <<'PYEOF'
import torch
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel, compile_stack
from vacelive.engine.vace import EXTRAS_KEY, VaceBranch, VaceConditioning, attach_vace, default_vace_layers
cfg = CONFIGS["tiny"]
torch.manual_seed(0)
model = WanModel(cfg).eval().requires_grad_(False)
branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size).eval()
with torch.no_grad():
    for name, p in branch.named_parameters():
        if "_proj." in name:
            p.normal_(0, 0.05)
injector = attach_vace(model, branch.requires_grad_(False))
prompt = torch.randn(1, cfg.text_len, cfg.text_dim)
contexts = [torch.randn(1, 96, 3, 16, 16) for _ in range(6)]

def stream(device):
    model.to(device), branch.to(device)
    injector.reset()
    gen = CausalGenerator(model, 128, 128)
    return [gen.generate_chunk(prompt.to(device), seed=1, steps=4,
                               extras={EXTRAS_KEY: VaceConditioning(c.to(device), 1.0)}).cpu() for c in contexts]

cpu, cuda = stream("cpu"), stream("cuda")
err = max((a - b).abs().max().item() for a, b in zip(cpu, cuda))
print(f"max |cuda - cpu| over 6 chunks (4 fill the ring, 2 steady): {err:.2e}", "OK" if err < 1e-3 else "MISMATCH")
model.compile_blocks()
compile_stack(branch.vace_blocks)
compiled = stream("cuda")
err = max((a - b).abs().max().item() for a, b in zip(cuda, compiled))
print(f"max |compiled - eager| on CUDA over 6 chunks: {err:.2e}", "OK" if err < 1e-3 else "MISMATCH")
PYEOF

echo "== the matrix: 1.3B, random weights, 832x480, bf16, attention auto (cuDNN first on Hopper)"
timeout 200 $PY bench/bench_matrix.py --chunks 3 --json "$OUT/matrix.json"
echo "== which attention kernel runs in the DiT, and its share of a chunk (profiler)"
timeout 90 $PY bench/attention_check.py

echo "== the whole engine: 1.3B random weights, compiled, TAEW, depth control through VACE, 4 steps"
timeout 70 $PY -m vacelive.engine.cli bench --model 1.3B --random-weights --device cuda --compile --vae tae \
  --annotator depth --steps 4 --seconds 12 --warmup 2 --json > "$OUT/e2e_4steps.json"
cat "$OUT/e2e_4steps.json"
echo "== the same at 2 steps"
timeout 60 $PY -m vacelive.engine.cli bench --model 1.3B --random-weights --device cuda --compile --vae tae \
  --annotator depth --steps 2 --seconds 12 --warmup 2 --json > "$OUT/e2e_2steps.json"
cat "$OUT/e2e_2steps.json"
