# Sourced by the GPU check scripts: the engine's other needs from local wheels (the GPU machine has
# no internet) and the package folders on the path under the vacelive namespace, with the
# machine's own python3 (torch with CUDA). Sets PY and OUT; prints the card, torch and the time.
#   WHEELS=.gpu/wheels by default; OUT=out/gpu by default; PYTHON=python3 by default.
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.gpu/wheels}
SITE=$(mktemp -d)
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl \
    || echo "wheel install failed: the end-to-end run may not start"
fi
PKG=$(mktemp -d)
mkdir -p "$PKG/vacelive"
for folder in engine annotators bridges; do ln -s "$PWD/$folder" "$PKG/vacelive/$folder"; done
export PYTHONPATH="$PKG:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'cuDNN', torch.backends.cudnn.version())"
date -u +"%Y-%m-%d %H:%M UTC"
