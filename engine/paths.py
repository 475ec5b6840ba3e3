"""Confining user-supplied paths (OSC, presets) to the engine's folders."""

from __future__ import annotations

from pathlib import Path


class PathRefused(ValueError):
    """A path points outside its folder, is absolute, or names no file."""


def confined_path(value: str, root: Path, *, must_exist: bool = True) -> Path:
    """Resolve ``value`` below ``root`` and return the resolved path.

    Refuses absolute paths, ``..`` components and links that lead out of ``root``, with a
    clear :class:`PathRefused`. With ``must_exist`` the file must exist.
    """
    if not value:
        raise PathRefused("empty path")
    candidate = Path(value)
    if candidate.is_absolute() or value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        raise PathRefused(f"{value!r}: absolute paths are refused; give a path inside {root}")
    if ".." in candidate.parts or ".." in value.replace("\\", "/").split("/"):
        raise PathRefused(f"{value!r}: '..' is refused; give a path inside {root}")
    root_resolved = root.resolve()
    resolved = (root_resolved / candidate).resolve()
    if not resolved.is_relative_to(root_resolved):
        raise PathRefused(f"{value!r} leads outside {root} (a link out?) and is refused")
    if must_exist and not resolved.is_file():
        raise PathRefused(f"{value!r}: no such file in {root}")
    return resolved
