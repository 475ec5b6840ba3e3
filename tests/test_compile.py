"""The compiled blocks: one graph each (``fullgraph=True``, no break), shared by every block of a
stack, equal to the eager blocks, with the VACE hooks (and references) working around them."""

import torch
import torch._dynamo
from torch._dynamo.utils import counters
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel, compile_stack
from vacelive.engine.vace import (
    EXTRAS_KEY,
    VaceBranch,
    VaceConditioning,
    attach_vace,
    default_vace_layers,
)


@torch.no_grad()
def test_compiled_blocks_equal_eager_with_vace_hooks_and_share_one_graph():
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    cfg = CONFIGS["tiny"]
    model = WanModel(cfg).eval()
    branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size)
    for p in branch.parameters():
        p.normal_(0, 0.05)
    injector = attach_vace(model, branch)
    prompt = torch.randn(1, cfg.text_len, cfg.text_dim)
    contexts = [torch.randn(1, 96, 3, 8, 8) for _ in range(7)]
    reference = torch.randn(1, 96, 1, 8, 8)

    def stream() -> list[torch.Tensor]:
        gen = CausalGenerator(model, 64, 64)
        injector.reset()
        out = []
        for i, context in enumerate(contexts):  # chunks 0-3 fill the ring (eager), 4-6 run compiled
            cond = VaceConditioning(context, 0.8, reference if i in (5,) else None)
            out.append(gen.generate_chunk(prompt, seed=3, steps=3, extras={EXTRAS_KEY: cond}))
        return out

    eager = stream()
    assert counters["stats"]["calls_captured"] == 0
    model.compile_blocks()
    compile_stack(branch.vace_blocks)
    compiled = stream()
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    # the hints reached the base: without the branch the stream differs
    injector.detach()
    plain = CausalGenerator(model, 64, 64).generate_chunk(prompt, seed=3, steps=3)
    assert (plain - eager[0]).abs().max() > 1e-3
    assert not counters["graph_break"]
    # one graph for the base blocks and the branch's blocks, one more for the reference shape
    assert 1 <= counters["stats"]["unique_graphs"] <= 3
    assert counters["stats"]["calls_captured"] > 0


@torch.no_grad()
def test_recompiles_do_not_happen_per_chunk_or_per_layer():
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(1)
    cfg = CONFIGS["tiny"]
    model = WanModel(cfg).eval()
    model.compile_blocks()
    gen = CausalGenerator(model, 32, 32)
    prompt = torch.randn(1, cfg.text_len, cfg.text_dim)
    for _ in range(gen.chunks_to_fill + 1):
        gen.generate_chunk(prompt, seed=0, steps=2)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs == 1
    for _ in range(5):  # the ring keeps rolling: the slots change, the graph does not
        gen.generate_chunk(prompt, seed=0, steps=2)
    gen.recache(torch.randn(1, cfg.text_len, cfg.text_dim))
    gen.generate_chunk(prompt, seed=0, steps=2)
    assert counters["stats"]["unique_graphs"] == graphs
