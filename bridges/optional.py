"""Platform and optional-package gates for the OS-bound bridges (Spout, Syphon, virtual camera)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source

_OS_NAMES = {"win32": "Windows", "darwin": "macOS", "linux": "Linux"}


def require(module: str, *, platform: str | None, package: str, what: str, bridge: Source | Sink) -> ModuleType:
    """Import ``module`` for ``bridge`` (a ``what`` bridge), or mark it FAILED and raise one clear
    :class:`BridgeError`.

    ``platform`` is a ``sys.platform`` value the bridge is bound to (``None``: any); ``package``
    is the PyPI name to install.
    """
    try:
        return _import(module, platform=platform, package=package, what=what)
    except BridgeError:
        bridge.state = BridgeState.FAILED
        raise


def _import(module: str, *, platform: str | None, package: str, what: str) -> ModuleType:
    if platform is not None and sys.platform != platform:
        here = _OS_NAMES.get(sys.platform, sys.platform)
        raise BridgeError(
            f"{what} works only on {_OS_NAMES[platform]} (it needs the {package} package there); "
            f"this machine runs {here}"
        )
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BridgeError(f"{what} needs the {package} package: pip install {package} ({exc})") from exc
