"""``vacelive plan``: placements computed from the real module shapes (meta device, no weights)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from vacelive.engine.model import CONFIGS
from vacelive.engine.model.kv_cache import RingKVCache
from vacelive.engine.plan import GB, LAYOUTS, Footprint, place


def test_footprint_counts_the_real_parameters_and_ring():
    fp = Footprint.of("1.3B", 832, 480, "bf16")
    assert 1.3e9 < fp.dit / 2 < 1.5e9  # the 1.3B DiT's parameter count
    cfg = CONFIGS["1.3B"]
    ring = RingKVCache(1, 1, cfg.num_heads, cfg.head_dim, 30 * 52, cfg.local_attn_frames, cfg.sink_frames,
                       device="meta", dtype=torch.bfloat16)
    assert fp.kv == ring.nbytes * cfg.num_layers and fp.vace_kv == ring.nbytes * len(fp.vace_layers)
    fp8 = Footprint.of("14B", 832, 480, "fp8")
    assert fp8.dit * 2 == Footprint.of("14B", 832, 480, "bf16").dit and fp8.kv == Footprint.of("14B", 832, 480).kv


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_places_every_byte_once(layout):
    fp = Footprint.of("14B", 832, 480)
    devices = place(fp, layout, 2 if layout == "vace" else 4, reserve=8 * GB)
    total = sum(d.total for d in devices)
    assert total == pytest.approx(fp.dit * (4 if layout == "sequence" else 1) + fp.vace * (4 if layout == "sequence" else 1)
                                  + fp.kv + fp.vace_kv + fp.vae + fp.text + 8 * GB)


def test_sequence_parallelism_needs_the_heads_to_split():
    with pytest.raises(ValueError, match="12 heads"):
        place(Footprint.of("1.3B", 832, 480), "sequence", 8)


def test_cli_plans_14b_on_4_devices_of_80_gb():
    result = subprocess.run([sys.executable, "-m", "vacelive.engine.cli", "plan", "--model", "14B", "--devices", "4"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "sequence: fits" in result.stdout and "stages: fits" in result.stdout
    assert "layers (planned, not built): fits" in result.stdout
    assert "vace: not possible: the VACE branch on its own device takes exactly 2 devices" in result.stdout
    small = subprocess.run([sys.executable, "-m", "vacelive.engine.cli", "plan", "--model", "14B", "--memory-gb", "24"],
                           capture_output=True, text=True, timeout=120)
    assert small.returncode == 1 and "does NOT fit" in small.stdout
