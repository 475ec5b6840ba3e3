"""The VACE branch on its own device (``layout vace``): a worker process runs the branch and
streams its hints to the base (gloo on loopback here). The chunks equal one process's, with
control, references, a context scale of 0, a prompt change and a hard cut; a worker that dies
becomes a clear error on rank 0, not a hang. (The whole pipeline with the VACE worker:
``tests/test_parallel_runtime.py``.)"""

import datetime
import os
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vacelive.engine.model import CausalGenerator, WanConfig, WanModel
from vacelive.engine.parallel import join_group, rendezvous_file
from vacelive.engine.vace import EXTRAS_KEY, VaceBranch, VaceConditioning, VaceInjector, attach_vace, default_vace_layers
from vacelive.engine.vace.remote import RemoteVace, VaceWorkerError, serve_vace

CONFIG = WanConfig(dim=128, ffn_dim=256, num_heads=4, num_layers=4, freq_dim=32, text_dim=32, text_len=16)
SIZE = 64
CHUNKS = 7  # a hard cut before chunk 4
TIMEOUT = datetime.timedelta(seconds=20)


def _model_and_branch() -> tuple[WanModel, VaceBranch]:
    """The same random base and branch in every process."""
    torch.manual_seed(0)
    model = WanModel(CONFIG).eval().requires_grad_(False)
    branch = VaceBranch(model.blocks, default_vace_layers(CONFIG.num_layers), CONFIG.dim, CONFIG.patch_size)
    with torch.no_grad():
        for p in branch.parameters():
            p.normal_(0, 0.05)
    return model, branch.eval().requires_grad_(False)


def _stream(model: WanModel, hooks) -> list[torch.Tensor]:
    """A stream's chunks: control every chunk, a reference on chunks 1 and 5, scale 0 on chunk 2,
    a new prompt from chunk 3, a hard cut before chunk 4."""
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randn(1, CONFIG.text_len, CONFIG.text_dim, generator=gen) for _ in range(2)]
    contexts = [torch.randn(1, 96, 3, 8, 8, generator=gen) for _ in range(CHUNKS)]
    reference = torch.randn(1, 96, 1, 8, 8, generator=gen)
    causal = CausalGenerator(model, SIZE, SIZE)
    out = []
    for i in range(CHUNKS):
        if i == 4:
            causal.reset()
            hooks.reset()
        cond = VaceConditioning(contexts[i], 0.0 if i == 2 else 0.8, reference if i in (1, 5) else None)
        out.append(causal.generate_chunk(prompts[i >= 3], seed=1, steps=2, extras={EXTRAS_KEY: cond}))
    return out


def _worker(rendezvous: str, die_after_forwards: int | None, trace: str) -> None:
    torch.set_num_threads(1)
    join_group(1, 2, rendezvous, "cpu", timeout=TIMEOUT)
    try:
        _, branch = _model_and_branch()
        injector = VaceInjector(None, branch)
        if die_after_forwards is not None:  # run that many forwards, then die without a word
            original = injector.run

            def run(*args, **kwargs):
                run.calls += 1
                if run.calls > die_after_forwards:
                    os._exit(3)
                yield from original(*args, **kwargs)
            run.calls = 0
            injector.run = run
        serve_vace(injector)
    except Exception:
        Path(trace).write_text(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


def _remote_stream(tmp_path: Path, die_after_forwards: int | None = None):
    trace = tmp_path / "worker.trace"
    rendezvous = rendezvous_file()
    worker = mp.get_context("spawn").Process(target=_worker, args=(rendezvous, die_after_forwards, str(trace)))
    worker.start()
    join_group(0, 2, rendezvous, "cpu", timeout=TIMEOUT)
    try:
        model, branch = _model_and_branch()
        remote = RemoteVace(model, branch.vace_layers, zero=False)
        try:
            return _stream(model, remote)
        finally:
            if worker.is_alive():
                remote.stop()
    finally:
        dist.destroy_process_group()
        worker.join(30)
        if worker.is_alive():
            worker.kill()
        assert not trace.exists(), trace.read_text()


def test_the_branch_in_a_worker_gives_the_chunks_of_one_process(tmp_path):
    model, branch = _model_and_branch()
    local = _stream(model, attach_vace(model, branch))
    remote = _remote_stream(tmp_path)
    for i, (a, b) in enumerate(zip(local, remote)):
        assert torch.equal(a, b), (i, (a - b).abs().max().item())
    model, branch = _model_and_branch()
    branch.zero_projections()  # no hints: the base alone
    plain = _stream(model, attach_vace(model, branch))
    assert not torch.allclose(local[1], plain[1]) and not torch.allclose(local[5], plain[5])  # the hints count


def test_a_worker_that_dies_is_an_error_on_rank_0_not_a_hang(tmp_path):
    with pytest.raises(VaceWorkerError, match="VACE worker"):
        _remote_stream(tmp_path, die_after_forwards=4)
