"""Several machines, torchrun-style (``python -m vacelive.engine.worker``): two processes given
torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) meet through a shared file here (nothing
listens on a network); rank 0 runs ``vacelive run`` with sequence parallelism over both and
prints the placement, rank 1 serves its band and ends when rank 0 is done."""

import os
import subprocess
import sys

import pytest

from vacelive.engine.parallel import join_launch


def _launch(tmp_path, flags: list[str]) -> list[subprocess.CompletedProcess]:
    store = tmp_path / "rendezvous"
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                   VACELIVE_INIT_METHOD=f"file://{store}", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, "-m", "vacelive.engine.worker", *flags], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    done = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out))
    return done


def test_rank_0_runs_the_engine_and_rank_1_serves_its_band(tmp_path):
    rank0, rank1 = _launch(tmp_path, ["run", "--source", "testpattern", "--sink", "null", "--frames", "24",
                                      "--width", "64", "--height", "64", "--device", "cpu", "--no-tui",
                                      "--osc-port", "0", "--http-port", "0"])
    assert rank0.returncode == 0, rank0.stdout[-3000:]
    assert rank1.returncode == 0, rank1.stdout[-3000:]
    placement = [line.split("placement: ", 1)[1] for line in rank0.stdout.splitlines() if "placement: " in line]
    assert len(placement) == 2, rank0.stdout[-3000:]
    assert "band 1 of 2 (rank 0)" in placement[0] and "sources, sinks, OSC" in placement[0]
    assert "/cpu: DiT and VACE branch on band 2 of 2 (rank 1) [DiT " in placement[1]
    assert "done: 24 frames out" in rank0.stdout and "0 generator errors" in rank0.stdout


def test_a_bad_flag_stops_every_rank_before_the_group_forms(tmp_path):
    for proc in _launch(tmp_path, ["run", "--steps", "9"]):
        assert proc.returncode == 2 and "--steps" in proc.stdout


def test_outside_torchrun_it_says_how_to_start(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="not started by torchrun"):
        join_launch()
