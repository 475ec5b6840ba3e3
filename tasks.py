"""Set up and run vacelive on a fresh machine with nothing but Python (Linux, macOS, Windows).

    python tasks.py demo        # create .venv, install, run the engine on its defaults for 10 s -> out/demo.mp4
                                # (input | control | output side by side)
    python tasks.py test        # create .venv, install with test extras, run the test suite
    python tasks.py setup       # only create .venv and install
    python tasks.py train-tiny  # train the tiny default model again from its seed (about 60 min on
                                # 2 CPU cores) into out/tiny-weights; extra args go to the trainer

torch is installed first, pinned to the CPU-capable build these machines carry (torch==2.13.0);
set VACELIVE_TORCH to another requirement (e.g. "torch==2.13.0" from the CUDA index) to change it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH = os.environ.get("VACELIVE_TORCH", "torch==2.13.0")
DEMO_ARGS = ("--prompt", "white shapes")
"""The tiny model knows prompts that name a colour ("<colour> shapes"); the default prompt is for real models."""
EXTRAS = {"demo": "", "setup": "[dev]", "test": "[dev,ndi,pose,link]", "train-tiny": ""}


def venv_python() -> Path:
    """The virtual environment's interpreter on this OS."""
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*args: str | Path) -> None:
    """Run a command, echoing it; stop with its exit code if it fails."""
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=ROOT)
    if code:
        sys.exit(code)


def setup(extras: str) -> Path:
    """Create .venv (once) and install torch, then vacelive with ``extras``, into it."""
    python = venv_python()
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "--quiet", TORCH)
    run(python, "-m", "pip", "install", "--quiet", "-e", f".{extras}")
    check_opencv(python)
    return python


def check_opencv(python: Path) -> None:
    """Stop with the fix when OpenCV cannot load its system libraries (a bare Linux server)."""
    probe = subprocess.run([str(python), "-c", "import cv2"], capture_output=True, text=True)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["import cv2 failed"])[-1]
        sys.exit(f"OpenCV cannot load: {last}\n"
                 "On Debian/Ubuntu install its system libraries: sudo apt-get install libgl1 libglib2.0-0")


def main(argv: list[str]) -> None:
    task = argv[0] if argv else "demo"
    if task not in EXTRAS:
        sys.exit(f"usage: python tasks.py [{'|'.join(EXTRAS)}] [extra args for pytest or vacelive]")
    python = setup(EXTRAS[task])
    if task == "test":
        run(python, "-m", "pytest", *argv[1:])
    elif task == "demo":
        (ROOT / "out").mkdir(exist_ok=True)
        run(python, "-m", "vacelive.engine.cli", "run", "--frames", "240", "--sink", "null",
            "--preview", "side_by_side", "--preview-sink", "file:out/demo.mp4", *DEMO_ARGS, *argv[1:])
        print(f"wrote {ROOT / 'out' / 'demo.mp4'} (input | control | output)")
    elif task == "train-tiny":
        run(python, "-m", "vacelive.engine.tiny.train", "--out", "out/tiny-weights", *argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
