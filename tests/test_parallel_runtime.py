"""Several processes at run time (the ``devices`` parameter): ``cpu,cpu`` starts a worker process
(gloo on loopback) and the pipeline's frames equal one device's, with control through VACE, a
prompt change and a hard cut, for the sequence layout and the VACE worker; device lists that
cannot work are refused with one clear line; a group listens on loopback only."""

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from vacelive.engine.app import build_store
from vacelive.engine.chunk import Chunk
from vacelive.engine.parallel import LeaderGenerator, join_group, parse_devices, rendezvous_file, start_workers
from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.pipeline import build_generator
from vacelive.engine.vace.remote import RemoteVace
from tests.test_lora import lora_file

SIZE = 64


def _frames(pipeline, store) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for index in range(5):
        if index == 3:
            pipeline.reset()  # hard cut
        store.set("prompt", "red shapes" if index < 2 else "blue shapes")
        frames = rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
        control = rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
        chunk = Chunk(index=index, epoch=0, frames=frames, control=control, masks=None,
                      snapshot=store.snapshot(), captured_at=[0.0] * 12)
        out.append(pipeline.generate(chunk))
    return out


def _store(devices: str, layout: str = "sequence", lora: dict | None = None):
    torch.manual_seed(0)  # the random tiny autoencoder and text encoder are drawn from the global generator
    return build_store(overrides={"device": "cpu", "width": SIZE, "height": SIZE, "devices": devices,
                                  "layout": layout, "annotator": "edge", **(lora or {})})


def test_two_cpu_processes_give_the_frames_of_one():
    store = _store("")
    single = _frames(build_generator(store, None, "cpu", random_weights=True), store)
    store = _store("cpu,cpu")
    pipeline = build_generator(store, None, "cpu", random_weights=True)
    try:
        assert isinstance(pipeline.causal, LeaderGenerator) and pipeline.causal.sequence.world == 2
        parallel = _frames(pipeline, store)
        assert pipeline.mode == "control"  # VACE ran
    finally:
        pipeline.causal.stop_workers()
        dist.destroy_process_group()
    for i, (a, b) in enumerate(zip(single, parallel)):
        assert a.shape == b.shape, i
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01, (i, diff.max(), diff.mean())
    assert np.abs(single[1].astype(int) - single[4].astype(int)).mean() > 1.0  # the chunks differ


def _with_vace_worker(store) -> tuple[list[np.ndarray], list[str]]:
    """The frames of a pipeline whose VACE branch runs in a worker process, and its placement."""
    pipeline = build_generator(store, None, "cpu", random_weights=True)
    try:
        assert isinstance(pipeline.vace.injector, RemoteVace)
        frames = _frames(pipeline, store)
        assert pipeline.mode == "control"  # VACE ran
        return frames, pipeline.placement_lines()
    finally:
        pipeline.vace.injector.stop()
        dist.destroy_process_group()


def test_the_vace_branch_in_a_worker_gives_the_frames_of_one_device():
    store = _store("")
    single = _frames(build_generator(store, None, "cpu", random_weights=True), store)
    parallel, placement = _with_vace_worker(_store("cpu,cpu", "vace"))
    assert [line.split(" [")[0] for line in placement] == ["cpu: DiT, VAE, text encoder, annotators",
                                                            "cpu: VACE branch (worker)"]
    for i, (a, b) in enumerate(zip(single, parallel)):
        np.testing.assert_array_equal(a, b, err_msg=f"chunk {i}")
    assert np.abs(single[1].astype(int) - single[4].astype(int)).mean() > 1.0  # the chunks differ


def test_a_style_lora_runs_with_the_vace_worker_and_sequence_parallelism_refuses_it(tmp_path):
    torch.manual_seed(0)
    lora_file(tmp_path, "ink.safetensors", WanModel(CONFIGS["tiny"]))
    lora = {"media_dir": str(tmp_path), "loras": ["ink=ink.safetensors"]}
    store = _store("", lora=lora)
    single = _frames(build_generator(store, None, "cpu", random_weights=True), store)
    plain = _store("")
    without = _frames(build_generator(plain, None, "cpu", random_weights=True), plain)
    parallel, _ = _with_vace_worker(_store("cpu,cpu", "vace", lora=lora))
    for i, (a, b) in enumerate(zip(single, parallel)):
        np.testing.assert_array_equal(a, b, err_msg=f"chunk {i}")
    assert np.abs(single[2].astype(int) - without[2].astype(int)).mean() > 1.0  # the LoRA counts
    with pytest.raises(ValueError, match="do not run with sequence parallelism"):
        build_generator(_store("cpu,cpu", lora=lora), None, "cpu", random_weights=True)


@pytest.mark.parametrize("spec, words", [
    ("cuda:0,cpu", "mixes CPU and CUDA"),
    ("gpu0,gpu1", "is not 'cpu' or 'cuda:N'"),
    ("cuda:1,cuda:1", "names a GPU twice"),
])
def test_device_lists_that_cannot_work_are_refused(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_devices(spec)


def test_a_worker_that_cannot_build_its_model_stops_the_start_in_one_line(tmp_path):
    workers = start_workers(["cpu", "cpu"], {"model": "tiny", "width": SIZE, "height": SIZE}, str(tmp_path / "none"),
                            random_weights=False)
    try:
        with pytest.raises(RuntimeError, match=r"^sequence worker 1 could not start: .*none") as caught:
            workers.wait_ready()
        assert "\n" not in str(caught.value)
    finally:
        dist.destroy_process_group()


def test_one_device_or_none_starts_no_worker():
    assert parse_devices("") == [] and parse_devices("cuda:0") == [] and parse_devices("cpu, cpu") == ["cpu", "cpu"]


def _listening(pid: int) -> list[str]:
    """The addresses the TCP sockets of process ``pid`` listen on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN, one of ours
                raw = bytes.fromhex(fields[1].split(":")[0])
                words = struct.unpack(f"<{len(raw) // 4}I", raw)
                found.append(socket.inet_ntop(family, struct.pack(f">{len(words)}I", *words)))
    return found


def test_a_rendezvous_folder_is_removed_when_its_process_ends():
    code = "from vacelive.engine.parallel import rendezvous_file; print(rendezvous_file())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    store = Path(out.stdout.strip())
    assert store.name == "store" and store.parent.name.startswith("vacelive-group-")
    assert not store.parent.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_group_of_this_machine_listens_on_loopback_only():
    join_group(0, 1, rendezvous_file(), "cpu")
    try:
        addresses = _listening(os.getpid())
    finally:
        dist.destroy_process_group()
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses), addresses
