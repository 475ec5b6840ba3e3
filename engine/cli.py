"""The ``vacelive`` command: run the engine, list parameters and presets, check weights.

Every parameter flag of ``vacelive run`` is derived from the registry (``--context-scale``,
``--annotator``, ``--sink`` (repeatable), ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vacelive.engine.doctor import add_doctor_arguments, doctor_main
from vacelive.engine.params import REGISTRY, Kind, Param, ParamError
from vacelive.engine.presets import PresetError, list_presets
from vacelive.engine.weights.sets import DEFAULT_SET, SETS

log = logging.getLogger("vacelive")

PIPED_WIDTH = 240
"""Table width when the output is not a terminal."""

NOT_ON_CLI = ("preset_load", "preset_save")
"""Actions that only make sense while running (over OSC), besides every trigger."""


def add_param_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per registry parameter; only flags given on the command line are set."""
    for group_name, params in REGISTRY.groups().items():
        group = parser.add_argument_group(f"{group_name} parameters")
        for param in params:
            if param.name in NOT_ON_CLI or param.kind is Kind.TRIGGER:
                continue
            kwargs: dict[str, Any] = {"dest": param.name, "default": argparse.SUPPRESS, "help": _help(param)}
            if param.kind is Kind.BOOL:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif param.kind is Kind.STRING_LIST:
                kwargs.update(action="append", metavar="SPEC")
            elif param.kind is Kind.CHOICE:
                kwargs["choices"] = param.choices
            elif param.kind is Kind.FLOAT:
                kwargs.update(type=float, metavar="F")
            elif param.kind is Kind.INT:
                kwargs.update(type=int, metavar="N")
            else:
                kwargs["metavar"] = "TEXT"
            group.add_argument(param.cli_flag, **kwargs)


def _help(param: Param) -> str:
    extra = [param.range_text(), f"default {param.default!r}"]
    if param.unit:
        extra.insert(0, param.unit)
    return f"{param.description} [{'; '.join(e for e in extra if e)}]".replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="vacelive", description="Real-time VACE video generation for live shows.")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the live engine")  # each parameter's help already gives its default
    run.add_argument("--preset", help="preset name (in the preset folder) or path to a .toml file")
    run.add_argument("--frames", type=int, default=0, help="stop after N output frames (default: 0 = run until stopped)")
    run.add_argument("--tui", action=argparse.BooleanOptionalAction, default=None,
                     help="live status display (default: when stderr is a terminal)")
    add_param_flags(run)

    params = sub.add_parser("params", help="list every parameter")
    params.add_argument("--json", action="store_true", help="machine-readable")
    params.add_argument("--markdown", action="store_true", help="the README's OSC reference table")
    params.add_argument("--write-readme", metavar="PATH", help="replace the table between the markers in PATH")

    presets = sub.add_parser("presets", help="list the presets and check each against the registry")
    presets.add_argument("--preset-dir", default=REGISTRY["preset_dir"].default)

    weights = sub.add_parser("weights", help="weights folder tools")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True)
    check = weights_sub.add_parser(
        "check", help="report what a weights folder holds, any key mismatch, and what a run needs from it")
    check.add_argument("dir")
    check.add_argument("--write-manifest", action="store_true",
                       help="save the roles recognised in a folder without a manifest as its vacelive-weights.toml")
    check.add_argument("--preset", help="check what this preset needs")
    for name in ("model", "vae", "annotator", "mask_source"):
        check.add_argument(REGISTRY[name].cli_flag, dest=name, choices=REGISTRY[name].choices,
                           help=f"check what a run with this {name.replace('_', ' ')} needs (fails if it is missing)")
    fetch = weights_sub.add_parser("fetch", help="download a set of weights into a folder and write its manifest")
    fetch.add_argument("dir", nargs="?", help="the weights folder (created if needed)")
    fetch.add_argument("--set", dest="set_name", default=DEFAULT_SET, choices=list(SETS),
                       help="which generator and its companions (default: %(default)s)")
    fetch.add_argument("--only", nargs="+", metavar="ROLE", help="fetch only these roles (the set's or add-ons)")
    fetch.add_argument("--with", dest="extra", nargs="+", metavar="ROLE", default=[],
                       help="add these roles to the set: vace, tae, depth, pose, segmenter")
    fetch.add_argument("--list", action="store_true", help="list the sets, files, sizes and licences; download nothing")

    bench = sub.add_parser("bench", help="end-to-end benchmark: fps, glass-to-glass latency, chunk split, overhead")
    bench.add_argument("--seconds", type=float, default=20.0, help="measured time")
    bench.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring (model load, first chunks)")
    bench.add_argument("--json", action="store_true", help="machine-readable")
    bench.add_argument("--scripts", action="store_true", help="also run the component benchmarks under bench/")
    for name in ("model", "device", "annotator", "vae"):
        bench.add_argument(REGISTRY[name].cli_flag, dest=name, choices=REGISTRY[name].choices)
    bench.add_argument(REGISTRY["devices"].cli_flag, dest="devices", help=REGISTRY["devices"].description)
    bench.add_argument(REGISTRY["layout"].cli_flag, dest="layout", choices=REGISTRY["layout"].choices,
                       help=REGISTRY["layout"].description)
    for name in ("width", "height", "steps"):
        bench.add_argument(REGISTRY[name].cli_flag, dest=name, type=int)
    bench.add_argument("--fps", type=float)
    bench.add_argument("--weights-dir")
    bench.add_argument("--compile", action="store_true", default=None)
    bench.add_argument("--random-weights", action="store_true",
                       help="the model's real size with random values: measure speed without weights")

    plan = sub.add_parser("plan", help="how a model would be placed on N devices, from its real shapes: "
                          "weights, KV rings, whether it fits")
    plan.add_argument("--model", choices=("1.3B", "14B"), default="14B")
    plan.add_argument("--devices", type=int, default=1)
    plan.add_argument("--memory-gb", type=float, default=80.0, help="memory of each device (default: 80)")
    plan.add_argument("--width", type=int, default=832)
    plan.add_argument("--height", type=int, default=480)
    plan.add_argument("--dtype", choices=("bf16", "fp16", "fp8", "fp32"), default="bf16")
    plan.add_argument("--reserve-gb", type=float, default=8.0,
                      help="working memory kept free on the decoding device (default: 8)")
    plan.add_argument("--no-text-encoder", dest="text", action="store_false",
                      help="prompts come from the prompt cache: no umT5 on any device")

    sources = sub.add_parser("sources", help="list what can be received now (NDI, Spout, Syphon, cameras) and its spec")
    sources.add_argument("--json", action="store_true", help="machine-readable")
    sources.add_argument("--seconds", type=float, default=2.0, help="how long to listen for NDI/Syphon (default: 2)")

    doctor = sub.add_parser("doctor", help="check this machine for a show: bridges, GPU, weights, ports")
    add_doctor_arguments(doctor)

    prompts = sub.add_parser("prompts", help="prompt embedding cache tools")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", required=True)
    encode = prompts_sub.add_parser("encode", help="encode a file of prompts (one per line) into the cache")
    encode.add_argument("file")
    encode.add_argument("--weights-dir", required=True)
    encode.add_argument("--cache-dir", default=REGISTRY["prompt_cache"].default)
    return parser


def params_markdown() -> str:
    """The OSC reference table (the README's copy is checked against this by the tests)."""
    lines = [
        "| OSC address | type | default | range | applies | description |",
        "|---|---|---|---|---|---|",
    ]
    for p in REGISTRY:
        default = json.dumps(p.default) if p.kind is not Kind.TRIGGER else ""
        unit = f" {p.unit}" if p.unit else ""
        cells = [f"`{p.address}`", p.kind.value, default, p.range_text() + unit, p.applies.value, p.description]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


README_START, README_END = "<!-- params:start -->", "<!-- params:end -->"


def readme_with_params(text: str) -> str:
    """``text`` with the reference table between the README markers replaced by the current one."""
    head, start, rest = text.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        raise ValueError(f"the README has no {README_START} ... {README_END} markers")
    return f"{head}{README_START}\n{params_markdown()}\n{README_END}{tail}"


def params_json() -> list[dict[str, Any]]:
    """The registry as plain data."""
    return [
        {"name": p.name, "address": p.address, "flag": p.cli_flag, "type": p.kind.value, "default": p.default,
         "min": p.minimum, "max": p.maximum, "choices": list(p.choices), "unit": p.unit,
         "applies": p.applies.value, "group": p.group, "description": p.description}
        for p in REGISTRY
    ]


def cmd_params(args: argparse.Namespace) -> int:
    if args.write_readme:
        path = Path(args.write_readme)
        path.write_text(readme_with_params(path.read_text(encoding="utf-8")), encoding="utf-8")
    elif args.json:
        print(json.dumps(params_json(), indent=2))
    elif args.markdown:
        print(params_markdown())
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="vacelive parameters")
        for column in ("address", "type", "default", "range", "applies", "description"):
            table.add_column(column, no_wrap=column != "description", overflow="fold")
        for p in REGISTRY:
            table.add_row(p.address, p.kind.value, repr(p.default), p.range_text(), p.applies.value, p.description)
        # piped or redirected: no terminal width to fit, so nothing is cut (addresses stay whole)
        Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(table)
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    found = list_presets(Path(args.preset_dir))
    if not found:
        print(f"no presets in {args.preset_dir}")
        return 1
    status = 0
    for item in found:
        if isinstance(item, PresetError):
            print(f"INVALID  {item}")
            status = 1
        else:
            print(f"{item.name:24s} {item.description}")
    return status


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters ``vacelive run``'s flags set."""
    return {p.name: getattr(args, p.name) for p in REGISTRY if hasattr(args, p.name)}


def cmd_run(args: argparse.Namespace) -> int:
    from vacelive.bridges import BridgeError
    from vacelive.engine.app import LiveRun, build_store
    from vacelive.engine.runtime import build_engine

    try:
        store = build_store(args.preset, run_overrides(args))
        engine = build_engine(store, max_frames=args.frames or None)
    except (ParamError, PresetError, FileNotFoundError, ValueError, RuntimeError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    tui = sys.stderr.isatty() if args.tui is None else args.tui
    try:
        run = LiveRun(store, engine, tui=tui)
        metrics = run.run()
    except (BridgeError, RuntimeError, OSError, ParamError) as exc:  # a sink, a port, Link or MIDI: nothing runs
        log.error("cannot start: %s", exc)
        return 2
    summary = metrics.summary()
    log.info("done: %s frames out, %s chunks, %s stalls, %s generator errors", summary["frames_out"],
             summary["chunks"], summary["stalls"], summary["generator_errors"])
    if run.stuck:
        # A thread is inside a model call that cannot be interrupted; everything else is closed.
        # Exit now rather than let the interpreter tear torch down under it.
        logging.shutdown()
        os._exit(0)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from vacelive.engine.plan import plan_text

    if args.devices < 1 or args.memory_gb <= 0:
        print("cannot plan: --devices must be at least 1 and --memory-gb positive", file=sys.stderr)
        return 2
    text, fits = plan_text(args.model, args.devices, args.memory_gb, args.width, args.height, args.dtype,
                           text=args.text, reserve_gb=args.reserve_gb)
    print(text)
    return 0 if fits else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from vacelive.engine.bench import bench_main

    return bench_main(args)


def cmd_weights(args: argparse.Namespace) -> int:
    if args.weights_command == "fetch":
        return cmd_weights_fetch(args)
    from vacelive.engine.weights import weights_check

    chosen = {name: getattr(args, name) for name in ("model", "vae", "annotator", "mask_source")
              if getattr(args, name) is not None}
    strict = bool(chosen or args.preset)
    settings = None
    if strict:
        from vacelive.engine.app import build_store

        try:
            store = build_store(args.preset, {**chosen, "weights_dir": args.dir})
        except (ParamError, PresetError) as exc:
            print(f"error: {exc}")
            return 2
        settings = {name: store.get(name) for name in ("model", "vae", "annotator", "mask_source")}
    return weights_check(args.dir, settings, strict_needs=strict, write_manifest=args.write_manifest)


def cmd_weights_fetch(args: argparse.Namespace) -> int:
    from vacelive.engine.weights.fetch import FetchError, fetch, list_sets

    if args.list:
        list_sets()
        return 0
    if not args.dir:
        print("error: give the weights folder to fetch into, e.g. vacelive weights fetch weights")
        return 2
    try:
        fetch(args.dir, args.set_name, only=args.only, extra=args.extra)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    except (FetchError, OSError) as exc:
        print(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left under a final name")
        return 130
    print(f"next: vacelive weights check {args.dir}")
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from vacelive.engine.text import prompts_encode
    from vacelive.engine.weights import WeightsManifest

    weights: Path = Path(args.weights_dir)
    tokenizer = None
    try:
        if weights.is_dir():
            manifest = WeightsManifest.open(weights)
            weights = manifest.path("t5")
            tokenizer = manifest.path("tokenizer") if manifest.has("tokenizer") else None
        count = prompts_encode(args.file, weights, args.cache_dir, tokenizer_dir=tokenizer)
    except (OSError, KeyError, ValueError) as exc:
        log.error("cannot encode prompts: %s", exc)
        return 2
    print(f"{count} prompt(s) newly encoded into {args.cache_dir}")
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    from vacelive.engine.sources import as_json, discover

    found, notes = discover(seconds=max(0.0, args.seconds))
    if args.json:
        print(json.dumps(as_json(found, notes), indent=2))
        return 0
    for item in found:
        print(f"{item.kind:7s} {item.spec:40s} {item.name}{'  (' + item.detail + ')' if item.detail else ''}")
    if not found:
        print("nothing to receive right now")
    for note in notes:
        print(f"note: {note}")
    return 0


COMMANDS = {"run": cmd_run, "sources": cmd_sources, "doctor": doctor_main, "params": cmd_params, "presets": cmd_presets, "weights": cmd_weights,
            "prompts": cmd_prompts, "bench": cmd_bench, "plan": cmd_plan}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vacelive`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
