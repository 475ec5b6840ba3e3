"""``vacelive doctor``: is this machine ready for a show? One line per check, with the fix for
each failure.

Checks, in order:

- ``spout`` (Windows), ``syphon`` (macOS), ``ndi`` (everywhere): the bridge imports and a few
  test-pattern frames go from its sink to its source on this machine, each frame recognised by
  its stamp. Spout also warns when a sender already holds the engine's output name (Spout would
  rename the new one ``NAME_1``, which TouchDesigner does not find). NDI runs in a child process
  whose NDI is confined to loopback (``NDI_CONFIG_DIR`` with ips ``127.0.0.1``: NDI reads it once
  per process), so the check needs no multicast and sees no other machine. A bridge this platform
  does not have is reported ``skip``, not a failure.
- ``gpu``: torch sees a CUDA GPU and can use it, with its VRAM; without one only ``--model tiny``
  runs (on the CPU).
- ``weights``: the folder has what the preset's run needs (the engine's own ``run_needs`` /
  ``preflight``), else the ``vacelive weights fetch`` command that gets it.
- ``osc port`` / ``http port``: the ports the engine would bind are free.

A ``FAIL`` makes the exit status 1; ``warn`` and ``skip`` do not.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
LOOPBACK_SIZE = (320, 192)
VRAM_REPORTED_GB = {"1.3B": 20, "14B": 55}
"""VRAM the anchors report (Daydream Scope: LongLive 1.3B about 20 GB at 320x576, Krea 14B with
VACE about 55 GB); below it the doctor warns, it does not fail."""
NDI_CHILD_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is ``ok``, ``warn``, ``FAIL`` or ``skip``."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<10}  {self.detail}"
        return f"{text}  -> fix: {self.fix}" if self.fix else text


# --- bridges ---------------------------------------------------------------------------------


def loopback(sink_spec: str, source_spec: str, frames: int, seconds: float) -> tuple[int, int, float]:
    """Send test-pattern frames through ``sink_spec`` and read them back from ``source_spec``.

    Returns ``(frames recognised, frames sent, seconds taken)``; stops once ``frames`` distinct
    stamped frames came back or after ``seconds``. Raises :class:`BridgeError` if a side cannot open.
    """
    from vacelive.bridges import open_sink, open_source
    from vacelive.bridges.testpattern import TestPattern, read_stamp

    width, height = LOOPBACK_SIZE
    source = open_source(source_spec, width=width, height=height, fps=30.0)
    sink = open_sink(sink_spec)
    source.open()
    try:
        sink.open(width, height, 30.0)
        try:
            pattern = TestPattern(width, height)
            received: set[int] = set()
            sent = 0
            started = time.monotonic()
            while len(received) < frames and time.monotonic() - started < seconds:
                sink.write(pattern.render(sent))
                sent += 1
                frame = source.read(0.05)
                stamp = read_stamp(frame) if frame is not None else None
                if stamp is not None and stamp < sent:
                    received.add(stamp)
            return len(received), sent, time.monotonic() - started
        finally:
            sink.close()
    finally:
        source.close()


def _loopback_check(name: str, what: str, sink_spec: str, source_spec: str, frames: int,
                    seconds: float, fix: str) -> Check:
    from vacelive.bridges import BridgeError

    try:
        got, sent, took = loopback(sink_spec, source_spec, frames, seconds)
    except BridgeError as exc:
        return Check(name, FAIL, str(exc), fix)
    if got >= frames:
        return Check(name, OK, f"loopback: {got} frames sent and received over {what} in {took:.1f} s")
    return Check(name, FAIL, f"loopback: {got} of {frames} frames came back over {what} "
                             f"({sent} sent in {took:.1f} s)", fix)


def check_spout(frames: int, engine_senders: list[str]) -> list[Check]:
    """Spout sender -> Spout receiver in this process, and stale senders on the engine's names."""
    if sys.platform != "win32":
        return [Check("spout", SKIP, "not for this platform: Spout runs on Windows only")]
    if importlib.util.find_spec("SpoutGL") is None:
        return [Check("spout", FAIL, "SpoutGL is not installed", "pip install SpoutGL")]
    import SpoutGL

    from vacelive.bridges.spout import renamed_by_spout, sender_names

    name = f"vacelive_doctor_{os.getpid()}"
    checks = [_loopback_check("spout", "Spout", f"spout:{name}", f"spout:{name}", frames, 10.0,
                              "update the GPU driver; Spout needs a DirectX 11 GPU with OpenGL (on a "
                              "hybrid-graphics laptop, run Python on the discrete GPU)")]
    names = sender_names(SpoutGL)
    for wanted in engine_senders:
        taken = [n for n in [wanted, *renamed_by_spout(wanted, names)] if n in names]
        if taken:
            checks.append(Check("spout", WARN, f"Spout sender(s) {', '.join(taken)} already exist: a new "
                                f"engine sending {wanted!r} would be renamed {wanted}_1, which TouchDesigner "
                                "set to the name does not find",
                                "stop the other vacelive (or the program that holds the name); after a crash, "
                                "close every Spout program or log out to clear it"))
    return checks


def check_syphon(frames: int) -> list[Check]:
    """Syphon server -> Syphon client in this process (the doctor runs on the main thread, so
    Syphon's discovery notifications are delivered)."""
    if sys.platform != "darwin":
        return [Check("syphon", SKIP, "not for this platform: Syphon runs on macOS only")]
    if importlib.util.find_spec("syphon") is None:
        return [Check("syphon", FAIL, "syphon-python is not installed",
                      "pip install syphon-python (0.2.0 needs macOS 12+; on macOS 11: "
                      "syphon-python==0.1.1 with Python <= 3.12)")]
    name = f"vacelive_doctor_{os.getpid()}"
    return [_loopback_check("syphon", "Syphon", f"syphon:{name}", f"syphon:{name}", frames, 10.0,
                            "check that this Mac supports Metal and that syphon-python matches macOS "
                            "(0.2.0: macOS 12+)")]


def check_ndi(frames: int) -> list[Check]:
    """NDI sender -> NDI receiver in a child process confined to loopback."""
    if importlib.util.find_spec("cyndilib") is None:
        return [Check("ndi", FAIL, "cyndilib is not installed", "pip install 'vacelive[ndi]'")]
    from vacelive.bridges.ndi import write_ndi_config

    command = [sys.executable, "-m", "vacelive.engine.doctor", "--ndi-child", str(frames)]
    try:
        with tempfile.TemporaryDirectory(prefix="vacelive-doctor-ndi-") as config_dir:
            write_ndi_config(config_dir, "127.0.0.1")
            env = dict(os.environ, NDI_CONFIG_DIR=config_dir)
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=NDI_CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return [Check("ndi", FAIL, f"the NDI loopback did not finish in {NDI_CHILD_TIMEOUT_S:.0f} s",
                      "run `vacelive sources` to see whether NDI starts at all")]
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [Check("ndi", FAIL, f"the NDI loopback process failed (exit {done.returncode}): {tail}",
                      "pip install --force-reinstall cyndilib")]
    return [Check("ndi", result["status"], result["detail"] + " (NDI confined to 127.0.0.1)", result.get("fix", ""))]


def _ndi_child(frames: int) -> int:
    """In the child: run the NDI loopback and print its outcome as one JSON line."""
    name = f"vacelive-doctor-{os.getpid()}"
    check = _loopback_check("ndi", "NDI", f"ndi:{name}", f"ndi:{name}", frames, 30.0,
                            "allow Python through the firewall for private networks; see `vacelive sources`")
    print(json.dumps({"status": check.status, "detail": check.detail, "fix": check.fix}), flush=True)
    return 0


# --- GPU, weights, ports -----------------------------------------------------------------------


def check_gpu(model: str, device: str) -> list[Check]:
    """A usable CUDA GPU and its VRAM, against what the model needs."""
    try:
        import torch
    except ImportError:
        return [Check("gpu", FAIL, "torch is not installed", "python3 tasks.py demo (sets up .venv with torch)")]
    if device == "cpu":
        return [Check("gpu", OK if model == "tiny" else WARN, f"--device cpu (torch {torch.__version__})",
                      "" if model == "tiny" else f"--model {model} is far too slow on a CPU: use --device cuda")]
    if not torch.cuda.is_available():
        detail = f"no CUDA GPU visible to torch {torch.__version__}"
        if model == "tiny":
            return [Check("gpu", OK, f"{detail}: the tiny model runs on the CPU")]
        return [Check("gpu", FAIL, f"{detail}: --model {model} needs one",
                      "install a CUDA build of torch on a machine with an NVIDIA GPU and its driver "
                      "(nvidia-smi must list the GPU)")]
    try:
        torch.zeros(1, device="cuda").add_(1).item()  # the driver and the build really work together
        free, total = torch.cuda.mem_get_info(0)
    except Exception as exc:  # a driver/build mismatch surfaces here
        return [Check("gpu", FAIL, f"CUDA is visible but unusable: {exc}",
                      "update the NVIDIA driver or install the torch build for its CUDA version")]
    name = torch.cuda.get_device_name(0)
    gib = 2 ** 30
    detail = f"{name}, {total / gib:.0f} GiB VRAM, {free / gib:.0f} GiB free (torch {torch.__version__})"
    reported = VRAM_REPORTED_GB.get(model)
    if reported and free < reported * 1e9:
        return [Check("gpu", WARN, f"{detail}; --model {model} was reported to use about {reported} GB",
                      "close other GPU programs, or lower --width/--height")]
    return [Check("gpu", OK, detail)]


def check_weights(store) -> list[Check]:
    """The weights the preset's run needs, by the engine's own rules (its start-up ``preflight``)."""
    from vacelive.engine.weights.manifest import WeightsFolderError, WeightsManifest
    from vacelive.engine.weights.needs import MissingWeights, fetch_command, missing, preflight, run_needs

    settings = store.snapshot()
    needs = run_needs(settings)
    folder = settings["weights_dir"]
    what = f"--model {settings['model']}, annotator {settings['annotator']}, mask source {settings['mask_source']}"
    if not needs:
        return [Check("weights", OK, f"{what}: needs no weights")]
    manifest = None
    if folder:
        try:
            manifest = WeightsManifest.open(folder)
        except (WeightsFolderError, ValueError) as exc:  # no folder, nothing recognisable, a bad manifest
            return [Check("weights", FAIL, str(exc), fetch_command(folder, None, [n.role for n in needs]))]
    try:
        warnings = preflight(settings, manifest)
    except MissingWeights as exc:
        return [Check("weights", FAIL, f"{what}: {exc.detail}",
                      exc.fix or "fetch the file again with vacelive weights fetch")]
    checks = [Check("weights", OK, f"{what}: {folder} has every role it needs ({', '.join(n.role for n in needs)})")]
    absent = [n.role for n in missing(needs, manifest)]
    checks += [Check("weights", WARN, warning, fetch_command(folder, manifest, absent)) for warning in warnings]
    return checks


def check_port(name: str, host: str, port: int, udp: bool, flag: str) -> Check:
    """Whether ``port`` can be bound on ``host`` now (the engine binds it at start)."""
    kind = "udp" if udp else "tcp"
    if port == 0:
        return Check(name, OK, "0: the system picks a free port at start")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as probe:
        if not udp:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return Check(name, FAIL, f"{port}/{kind} on {host}: {exc.strerror or exc}",
                         f"stop the program holding it (another vacelive?) or choose another with {flag} N")
    return Check(name, OK, f"{port}/{kind} on {host} is free")


# --- the command --------------------------------------------------------------------------------


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``vacelive doctor`` options."""
    parser.add_argument("--preset", help="check the weights this preset's run needs (default: the defaults)")
    parser.add_argument("--model", choices=("tiny", "1.3B", "14B"), help="model to check for (default: the preset's)")
    parser.add_argument("--weights-dir", help="the weights folder the show uses")
    parser.add_argument("--osc-host", help="address the OSC and HTTP servers bind (default 127.0.0.1)")
    parser.add_argument("--osc-port", type=int, help="OSC UDP port to check (default 9000)")
    parser.add_argument("--http-port", type=int, help="OSCQuery HTTP port to check (default 9001; 0 = off)")
    parser.add_argument("--frames", type=int, default=5, help="frames each bridge loopback must carry (default 5)")
    parser.add_argument("--ndi-child", type=int, help=argparse.SUPPRESS)


def run_checks(args: argparse.Namespace, report: Callable[[Check], None]) -> list[Check]:
    """Run every check, calling ``report`` as each finishes; return them all."""
    from vacelive.engine.app import build_store
    from vacelive.engine.params import ParamError
    from vacelive.engine.presets import PresetError

    checks: list[Check] = []

    def add(found: list[Check]) -> None:
        for check in found:
            checks.append(check)
            report(check)

    add([Check("platform", OK, f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")])
    overrides = {name: value for name, value in (("model", args.model), ("weights_dir", args.weights_dir),
                                                 ("osc_host", args.osc_host), ("osc_port", args.osc_port),
                                                 ("http_port", args.http_port)) if value is not None}
    try:
        store = build_store(args.preset, overrides)
    except (ParamError, PresetError, FileNotFoundError) as exc:
        add([Check("preset", FAIL, str(exc), "vacelive presets lists the presets and what is wrong with each")])
        store = None
    frames = max(1, args.frames)
    spout_outputs = ["vacelive_out"]
    if store is not None:
        spout_outputs = sorted({*spout_outputs, *(s.partition(":")[2].split("?")[0]
                                                  for s in store.get("sink") if s.startswith("spout:"))} - {""})
    add(check_spout(frames, spout_outputs))
    add(check_syphon(frames))
    add(check_ndi(frames))
    if store is None:
        return checks
    add(check_gpu(store.get("model"), store.get("device")))
    add(check_weights(store))
    host = store.get("osc_host")
    add([check_port("osc port", host, store.get("osc_port"), True, "--osc-port")])
    if store.get("http_port"):
        add([check_port("http port", host, store.get("http_port"), False, "--http-port")])
    return checks


def doctor_main(args: argparse.Namespace) -> int:
    """``vacelive doctor``: print one line per check; exit 1 when any check failed."""
    if getattr(args, "ndi_child", None):
        return _ndi_child(args.ndi_child)
    checks = run_checks(args, lambda check: print(check.line(), flush=True))
    failed = [c for c in checks if c.status == FAIL]
    print(f"{len(failed)} check(s) failed" if failed else "ready for a show")
    return 1 if failed else 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="vacelive doctor", description="check this machine for a show")
    add_doctor_arguments(_parser)
    sys.exit(doctor_main(_parser.parse_args()))
