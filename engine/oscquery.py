"""An OSCQuery-style HTTP namespace: the parameter tree as JSON, with live values.

``GET /`` gives the whole tree (FULL_PATH, CONTENTS, TYPE, VALUE, RANGE, DESCRIPTION, ACCESS),
``GET /vacelive/<param>`` one node, ``GET /vacelive/<param>?VALUE`` one attribute, and
``GET /?HOST_INFO`` the server's description, as the OSCQuery proposal describes. Status figures
appear read-only under ``/vacelive/status``. Binds to loopback unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from vacelive.engine.osc import osc_value
from vacelive.engine.params import Kind, Param
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

ACCESS_READ, ACCESS_WRITE = 1, 2
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "VALUE", "RANGE", "DESCRIPTION", "ACCESS")
TYPE_TAGS = {
    Kind.FLOAT: "f", Kind.INT: "i", Kind.BOOL: "T", Kind.STRING: "s", Kind.CHOICE: "s",
    Kind.PATH: "s", Kind.TRIGGER: "I",
}


def param_node(param: Param, value: Any) -> dict[str, Any]:
    """The OSCQuery node of one parameter."""
    if param.kind is Kind.STRING_LIST:
        type_tag = "s" * max(1, len(value))
    else:
        type_tag = TYPE_TAGS[param.kind]
    node: dict[str, Any] = {
        "FULL_PATH": param.address,
        "TYPE": type_tag,
        "DESCRIPTION": param.description + (" (applies at restart)" if not param.writable_live else ""),
        "ACCESS": ACCESS_READ | (ACCESS_WRITE if param.writable_live else 0),
    }
    if param.kind is not Kind.TRIGGER:
        node["VALUE"] = osc_value(param, value)
    if param.choices:
        node["RANGE"] = [{"VALS": list(param.choices)}]
    elif param.minimum is not None or param.maximum is not None:
        node["RANGE"] = [{"MIN": param.minimum, "MAX": param.maximum}]
    if param.unit:
        node["UNIT"] = [param.unit]
    return node


def build_tree(store: ParamStore, status: dict[str, Any]) -> dict[str, Any]:
    """The whole namespace with live values."""
    snapshot = store.snapshot()
    contents = {p.name: param_node(p, snapshot[p.name]) for p in store.registry}
    status_nodes = {
        name: {
            "FULL_PATH": f"/vacelive/status/{name}",
            "TYPE": "s" if isinstance(value, str) else ("i" if isinstance(value, int) else "f"),
            "VALUE": [value],
            "ACCESS": ACCESS_READ,
            "DESCRIPTION": f"status: {name}",
        }
        for name, value in status.items()
    }
    contents["status"] = {"FULL_PATH": "/vacelive/status", "CONTENTS": status_nodes, "ACCESS": 0,
                          "DESCRIPTION": "engine status (read-only)"}
    return {
        "FULL_PATH": "/",
        "ACCESS": 0,
        "DESCRIPTION": "vacelive",
        "CONTENTS": {"vacelive": {"FULL_PATH": "/vacelive", "ACCESS": 0, "DESCRIPTION": "vacelive engine",
                                  "CONTENTS": contents}},
    }


def find_node(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The node at ``path`` (``/`` is the root), or ``None``."""
    node = tree
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


class OscQueryServer:
    """Serves the namespace over HTTP on its own thread."""

    def __init__(self, store: ParamStore, status: Callable[[], dict[str, Any]], host: str, port: int,
                 osc_address: tuple[str, int]) -> None:
        self.store = store
        self.status = status
        self.host_info = {
            "NAME": "vacelive",
            "OSC_IP": osc_address[0],
            "OSC_PORT": osc_address[1],
            "OSC_TRANSPORT": "UDP",
            "EXTENSIONS": {name: True for name in ("ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT")}
            | {"LISTEN": False, "PATH_CHANGED": False},
        }
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="vacelive-oscquery", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def respond(self, raw_path: str) -> tuple[int, dict[str, Any] | None]:
        """The HTTP status and JSON body for a GET of ``raw_path``."""
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parts.query
        if query == "HOST_INFO":
            return 200, self.host_info
        node = find_node(build_tree(self.store, self.status()), path)
        if node is None:
            return 404, None
        if not query:
            return 200, node
        if query in ATTRIBUTES and query in node:
            return 200, {query: node[query]}
        return (204 if query in ATTRIBUTES else 400), None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                try:
                    code, body = server.respond(self.path)
                except Exception:
                    log.exception("OSCQuery request %r failed", self.path[:200])
                    code, body = 500, None
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("oscquery: " + fmt, *args)

        return Handler

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5.0)
