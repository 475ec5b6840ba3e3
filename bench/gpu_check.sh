#!/usr/bin/env bash
# One prepared GPU check (issue 13): correctness first (CUDA against CPU on the tiny config), then
# the speed of the real-size 1.3B path with random weights at 832x480 in bf16: the DiT per step
# count with the prompt re-cache cost, the VACE branch on top, and the autoencoders. Runs with the
# GPU machine's own python3 (torch with CUDA; nothing is installed): the package folders are put
# on the path under the vacelive namespace. Prints the GPU's name first; about 5 minutes.
#
#   bash bench/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PKG=$(mktemp -d)
mkdir -p "$PKG/vacelive"
for folder in engine annotators bridges; do ln -s "$PWD/$folder" "$PKG/vacelive/$folder"; done
export PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

echo "== correctness: tiny config, CUDA fp32 against CPU fp32"
timeout 60 $PY - <<'PYEOF'
import torch
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel
torch.manual_seed(0)
model = WanModel(CONFIGS["tiny"]).eval()
prompt = torch.randn(1, CONFIGS["tiny"].text_len, CONFIGS["tiny"].text_dim)
outs = {}
for device in ("cpu", "cuda"):
    gen = CausalGenerator(model.to(device), 128, 128)
    outs[device] = [gen.generate_chunk(prompt.to(device), seed=1, steps=4).cpu() for _ in range(5)]
err = max((a - b).abs().max().item() for a, b in zip(outs["cpu"], outs["cuda"]))
print(f"max |cuda - cpu| over 5 chunks: {err:.2e}", "OK" if err < 1e-3 else "MISMATCH")
PYEOF

echo "== DiT 1.3B bf16 832x480 (random weights)"
timeout 170 $PY bench/bench_model.py --config 1.3B --device cuda --height 480 --width 832 --steps 1 2 4 --chunks 5
echo "== VACE branch on top (1.3B, 4 steps)"
timeout 120 $PY bench/bench_vace.py --config 1.3B --device cuda --steps 4 --refs 0 1 --chunks 3
echo "== autoencoders at 832x480"
timeout 80 $PY bench/bench_vae.py --device cuda --chunks 4
$PY -c "import torch; print(f'peak VRAM this process: n/a (each bench is its own process)')"
