"""Which web clients may use the engine's HTTP and WebSocket endpoints (OSCQuery).

A browser attaches an ``Origin`` header to every cross-site request and to every WebSocket
handshake; native clients (TouchDesigner, Chataigne, ossia score, curl) send none. So:

- no ``Origin``: served (and nothing else is added);
- an origin the user named (``--http-allow-origin http://localhost:8080``): served, with
  ``Access-Control-Allow-Origin`` naming it so that page may read the answer;
- the server's own origin (``http://<Host>``, which some WebSocket libraries send): served;
- any other origin: refused with 403, so a web page the user happens to visit can neither read
  the namespace nor open the WebSocket that steers the engine (browsers apply no same-origin
  rule to WebSockets; this check is the only guard).

The ``Host`` header is checked too (an IP address, ``localhost``, this machine's name, a
``.local`` name or a named origin's host), which defeats DNS rebinding: a page on an attacker's
domain that re-resolves to 127.0.0.1 still sends its own domain as ``Host``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(text: str) -> str:
    """``scheme://host[:port]`` as a browser sends it (lower case, no default port, no slash).

    Raises ValueError naming the value and the expected form.
    """
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == -1 or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ValueError(f"http_allow_origin {text!r}: expected scheme://host[:port], e.g. http://localhost:8080")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return f"{parts.scheme}://{host}".lower()


def _host_name(host_header: str) -> str | None:
    try:
        name = urlsplit("//" + host_header).hostname
    except ValueError:
        return None
    return name.rstrip(".").lower() if name else None


class OriginPolicy:
    """Decides whether a request (its headers) may be served, and which CORS header it gets."""

    def __init__(self, allowed_origins: Iterable[str] = ()) -> None:
        self.origins = frozenset(normalise_origin(o) for o in allowed_origins)
        machine = socket.gethostname().split(".")[0].lower()
        self._names = {"localhost", machine, f"{machine}.local"} | {_host_name(o.split("://", 1)[1]) for o in self.origins}

    def host_allowed(self, host_header: str | None) -> bool:
        """Whether ``Host`` names this machine in a way no rebinding page can (absent: HTTP/1.0)."""
        if host_header is None:
            return True
        name = _host_name(host_header)
        if name is None:
            return False
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name in self._names or name.endswith(".local")

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """Whether a request carrying ``Origin`` may be served (absent: a native client)."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        return origin in self.origins or (host_header is not None and origin == f"http://{host_header.lower()}")

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a request is refused (for the 403 body and the log), or ``None`` if it may be served."""
        host, origin = headers.get("Host"), headers.get("Origin")
        if not self.host_allowed(host):
            return (f"Host {host!r} refused: connect by IP address, localhost or NAME.local "
                    "(a guard against DNS rebinding)")
        if not self.origin_allowed(origin, host):
            return f"Origin {origin!r} refused: name it with --http-allow-origin to let that page in"
        return None

    def cors_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The CORS headers for a served request: the origin echoed when it is one the user named."""
        origin = headers.get("Origin")
        if origin is None or origin.strip().rstrip("/").lower() not in self.origins:
            return {}
        return {"Access-Control-Allow-Origin": origin.strip().rstrip("/"), "Vary": "Origin"}
