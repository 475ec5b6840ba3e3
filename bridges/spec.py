"""Parsing of bridge spec strings: ``scheme[:argument][?key=value&key=value]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from vacelive.bridges.base import BridgeError


@dataclass(frozen=True)
class Spec:
    """A parsed spec: ``file:clip.mp4?loop=0`` -> scheme ``file``, arg ``clip.mp4``, options."""

    text: str
    scheme: str
    arg: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def flag(self, key: str, default: bool) -> bool:
        """Read a boolean option (``1/0``, ``true/false``, ``yes/no``, ``on/off``)."""
        value = self.options.get(key)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise BridgeError(f"{self.text}: option {key}={value!r} is not a boolean (use 1 or 0)")

    def number(self, key: str, default: float) -> float:
        """Read a numeric option."""
        value = self.options.get(key)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise BridgeError(f"{self.text}: option {key}={value!r} is not a number") from None


def parse_spec(text: str) -> Spec:
    """Split a spec string at the first ``:`` (scheme) and the last ``?`` (options).

    The argument keeps any further ``:`` (Windows paths such as ``file:C:/clips/a.mp4``).
    """
    text = text.strip()
    scheme, _, rest = text.partition(":")
    options: dict[str, str] = {}
    if "?" in rest:
        rest, _, query = rest.rpartition("?")
        options = dict(parse_qsl(query, keep_blank_values=True))
    elif "?" in scheme:  # options on an argument-less scheme: ``testpattern?moving=0``
        scheme, _, query = scheme.partition("?")
        options = dict(parse_qsl(query, keep_blank_values=True))
    return Spec(text=text, scheme=scheme.strip().lower(), arg=rest, options=options)
