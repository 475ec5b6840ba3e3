"""One machine or several, started by ``torchrun``: every process runs this module.

    torchrun --nnodes 2 --nproc-per-node 4 --node-rank K --rdzv-endpoint HOST:29500 \\
        -m vacelive.engine.worker run --model 14B --weights-dir ... [the flags of vacelive run]

Rank 0 (the first process of node 0) is the engine: ``vacelive run`` (or ``vacelive bench``)
with its sources, sinks, OSC and HTTP, the text encoder, the VAE and the annotators. Every rank
works on one band of each chunk (sequence parallelism, :mod:`engine.model.sequence`) on its
``cuda:LOCAL_RANK``; every other rank builds the same DiT from the same flags and serves rank 0's
chunks (:func:`engine.parallel.serve`) until rank 0 ends. The group meets through torchrun's
rendezvous (``env://``; it listens on the network, so keep the machines on a private one), or
through a file every process can reach when ``VACELIVE_INIT_METHOD=file:///shared/path`` is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import torch.distributed as dist

from vacelive.engine.app import build_store
from vacelive.engine.bench import bench_overrides
from vacelive.engine.cli import build_parser, main as cli_main, run_overrides
from vacelive.engine.model.sequence import SequenceShard
from vacelive.engine.parallel import build_band, join_launch, serve
from vacelive.engine.pipeline import WORKER_PARAMS
from vacelive.engine.runtime import load_manifest
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

COMMANDS = ("run", "bench")
"""The commands a launch can run (both build the generator)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of every process of a torchrun launch."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command not in COMMANDS:
        print(f"vacelive.engine.worker runs {' or '.join(COMMANDS)}, not {args.command}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # a bad flag stops every rank here, before the group forms
        store, random_weights = _store_of(args)
        launch = join_launch(os.environ.get("VACELIVE_INIT_METHOD", "env://"))
    except ValueError as exc:  # ParamError, PresetError
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        if launch.rank == 0:
            try:
                return cli_main(argv)
            finally:
                _stop_workers()
        manifest = None if random_weights else load_manifest(store)
        causal, injector = build_band(SequenceShard.of(), launch.device,
                                      {name: store.get(name) for name in WORKER_PARAMS},
                                      None if manifest is None else str(manifest.root), random_weights)
        serve(causal, injector, launch.device)
        return 0
    finally:
        dist.destroy_process_group()


def _store_of(args: argparse.Namespace) -> tuple[ParamStore, bool]:
    """The parameters the command's flags give, and whether the weights are random (bench)."""
    if args.command == "run":
        return build_store(args.preset, run_overrides(args)), False
    return build_store(overrides=bench_overrides(args)), args.random_weights


def _stop_workers() -> None:
    """Rank 0 is done: tell the other ranks (a failure means they are gone already)."""
    try:
        dist.broadcast_object_list([{"kind": "stop"}], src=0)
    except (RuntimeError, dist.DistBackendError) as exc:
        log.warning("the other ranks did not hear the stop: %s", f"{exc}".splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
