"""Sequence parallelism (Ulysses) over gloo on loopback: 2 and 4 processes give the chunks of one
process (tiny model with 4 heads, random weights, with and without VACE and a reference, across a
hard cut); a process that dies stops the others with a clear error instead of a hang."""

import datetime
import os
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vacelive.engine.model import CausalGenerator, WanConfig, WanModel
from vacelive.engine.model.sequence import SequenceParallelError, SequenceShard
from vacelive.engine.parallel import join_group, rendezvous_file
from vacelive.engine.vace import EXTRAS_KEY, VaceBranch, VaceConditioning, attach_vace, default_vace_layers

CONFIG = WanConfig(dim=128, ffn_dim=256, num_heads=4, num_layers=2, freq_dim=32, text_dim=32, text_len=16)
SIZE = 64  # 64x64 frames: an 8x8 latent, a 4x4 token grid: 4 rows, one or two per process
CHUNKS = 6  # a hard cut before chunk 3


def _stream(sequence: SequenceShard | None, vace: bool, die_after: int | None = None) -> list[torch.Tensor]:
    """The chunks of one stream (same seeds in every process)."""
    torch.manual_seed(0)
    model = WanModel(CONFIG).eval()
    branch = VaceBranch(model.blocks, default_vace_layers(CONFIG.num_layers), CONFIG.dim, CONFIG.patch_size)
    with torch.no_grad():
        for p in branch.parameters():
            p.normal_(0, 0.05)
    injector = attach_vace(model, branch.eval())
    prompt = torch.randn(1, CONFIG.text_len, CONFIG.text_dim)
    contexts = [torch.randn(1, 96, 3, 8, 8) for _ in range(CHUNKS)]
    reference = torch.randn(1, 96, 1, 8, 8)
    gen = CausalGenerator(model, SIZE, SIZE, sequence=sequence)
    out = []
    for i in range(CHUNKS):
        if i == 3:  # hard cut
            gen.reset()
            injector.reset()
        if die_after is not None and i == die_after:
            os._exit(3)
        extras = {EXTRAS_KEY: VaceConditioning(contexts[i], 0.8, reference if i in (1, 4) else None)} if vace else None
        out.append(gen.generate_chunk(prompt, seed=1, steps=2, extras=extras))
    return out


def _worker(rank: int, world: int, rendezvous: str, vace: bool, result: str, die_rank: int | None) -> None:
    torch.set_num_threads(1)
    sequence = join_group(rank, world, rendezvous, "cpu", timeout=datetime.timedelta(seconds=20))
    try:
        chunks = _stream(sequence, vace, die_after=1 if rank == die_rank else None)
        if rank == 0:
            torch.save(chunks, result)
    except SequenceParallelError as exc:
        if rank == 0:
            Path(result).write_text(f"error: {exc}")
    except Exception:
        Path(f"{result}.{rank}.trace").write_text(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


def _run(world: int, vace: bool, tmp_path: Path, die_rank: int | None = None, timeout: float = 120.0) -> Path:
    result = tmp_path / f"rank0-{world}-{vace}.pt"
    ctx = mp.get_context("spawn")
    rendezvous = rendezvous_file()
    procs = [ctx.Process(target=_worker, args=(r, world, rendezvous, vace, str(result), die_rank)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, f"{len(alive)} processes still running after {timeout} s (a hang)"
    traces = sorted(tmp_path.glob("*.trace"))
    assert not traces, traces[0].read_text()
    return result


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("vace", [False, True])
def test_chunks_equal_one_process(world, vace, tmp_path):
    single = _stream(None, vace)
    parallel = torch.load(_run(world, vace, tmp_path))
    assert len(parallel) == CHUNKS
    for i, (a, b) in enumerate(zip(single, parallel)):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4, msg=f"chunk {i}")
    assert (single[2] - single[5]).abs().max() > 1e-3  # the chunks differ: the comparison means something


def test_a_process_that_dies_stops_the_run_with_a_clear_error(tmp_path):
    result = _run(2, True, tmp_path, die_rank=1, timeout=90.0)
    message = result.read_text()
    assert message.startswith("error: sequence-parallel") and "rank 0 of 2" in message, message
