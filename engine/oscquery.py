"""The OSCQuery namespace: the parameter tree as JSON over HTTP, and a WebSocket on the same port.

Follows Vidvox's OSCQuery proposal (which TouchDesigner, Chataigne, Vezér and ossia score read):

- ``GET /`` gives the whole tree, ``GET /vacelive/<param>`` one node, ``GET /vacelive/<param>?VALUE``
  one attribute, ``GET /?HOST_INFO`` the server's description. Status figures appear read-only
  under ``/vacelive/status``.
- Nodes: FULL_PATH, CONTENTS (containers), TYPE, VALUE (always an array; bools as JSON true/false),
  RANGE, ACCESS (1 read, 2 write, 3 both), DESCRIPTION, UNIT (from the proposal's unit list) and
  CLIPMODE ("both" where out-of-range numbers are clamped). A trigger (``cut``) is TYPE ``N``,
  ACCESS 2, with no VALUE. A list's TYPE has one ``s`` per item, like the OSC reply.
- Attribute queries: an attribute the node has answers ``{"ATTR": ...}``; one it lacks answers
  ``{}`` on a container and 204 on a method; an attribute this server does not know, 400; an unknown
  path, 404. HEAD is answered like GET without the body; connections are kept alive (HTTP/1.1).
- Who may ask: see :mod:`vacelive.engine.origin` (native clients always, web pages only from the
  origins the user names, which also get the CORS header).
- The WebSocket (LISTEN extension, :mod:`vacelive.engine.oscquery_ws`): a client LISTENs to paths
  and gets each change of those values as an OSC message, whoever made it (OSC, a preset load,
  another client); status figures it listens to are sent when they change, checked once a second.
  OSC packets it sends are applied like UDP ones.

Binds to the OSC host (loopback unless told otherwise).
"""

from __future__ import annotations

import json
import logging
import numbers
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from vacelive.engine.origin import OriginPolicy
from vacelive.engine.osc import STATUS_PREFIX, OscControl, build_message, osc_value
from vacelive.engine.oscquery_ws import WebSocketClient, accept_key, handshake_refusal, upgrade_requested
from vacelive.engine.params import OSC_PREFIX, Applies, Kind, Param
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

ACCESS_NONE, ACCESS_READ, ACCESS_WRITE = 0, 1, 2
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "VALUE", "RANGE", "ACCESS", "DESCRIPTION", "UNIT", "CLIPMODE")
"""The attributes this server answers (an attribute query for any other is a 400)."""
EXTENSIONS = {name: True for name in ("ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT", "CLIPMODE", "LISTEN")} | {
    name: False for name in ("TAGS", "EXTENDED_TYPE", "CRITICAL", "HTML", "PATH_CHANGED", "PATH_RENAMED",
                             "PATH_ADDED", "PATH_REMOVED")
}
TYPE_TAGS = {
    Kind.FLOAT: "f", Kind.INT: "i", Kind.BOOL: "T", Kind.STRING: "s", Kind.CHOICE: "s",
    Kind.PATH: "s", Kind.TRIGGER: "N",
}
STATUS_PATH = STATUS_PREFIX.rstrip("/")
_UNSENT = object()
IDLE_TIMEOUT_S = 60.0
"""A kept-alive HTTP connection with no request for this long is closed."""


APPLIES_NOTE = {Applies.RESTART: " (applies at restart)",
                Applies.RELOAD: " (a new value is pending until /vacelive/reload applies it)"}


def param_node(param: Param, value: Any) -> dict[str, Any]:
    """The OSCQuery node of one parameter."""
    type_tag = "s" * len(value) if param.kind is Kind.STRING_LIST else TYPE_TAGS[param.kind]
    access = ACCESS_WRITE if param.writable_live else ACCESS_NONE
    if param.kind is not Kind.TRIGGER:
        access |= ACCESS_READ
    node: dict[str, Any] = {
        "FULL_PATH": param.address,
        "TYPE": type_tag,
        "DESCRIPTION": param.description + APPLIES_NOTE.get(param.applies, ""),
        "ACCESS": access,
    }
    if access & ACCESS_READ:
        node["VALUE"] = osc_value(param, value)
    if param.choices:
        node["RANGE"] = [{"VALS": list(param.choices)}]
    elif param.minimum is not None or param.maximum is not None:
        node["RANGE"] = [{"MIN": param.minimum, "MAX": param.maximum}]
        node["CLIPMODE"] = ["both" if param.minimum is not None and param.maximum is not None
                            else "low" if param.minimum is not None else "high"]
    if param.oscquery_unit and type_tag:
        node["UNIT"] = [param.oscquery_unit] * len(type_tag)
    return node


def status_node(name: str, value: Any) -> dict[str, Any]:
    """The read-only node of one status figure (a list of strings has one ``s`` per item)."""
    if isinstance(value, list):
        return {"FULL_PATH": f"{STATUS_PATH}/{name}", "TYPE": "s" * len(value), "VALUE": [str(v) for v in value],
                "ACCESS": ACCESS_READ, "DESCRIPTION": f"status: {name}"}
    if isinstance(value, bool):
        type_tag = "T"
    elif isinstance(value, numbers.Integral):
        type_tag, value = "i", int(value)
    elif isinstance(value, numbers.Real):
        type_tag, value = "f", float(value)
    else:
        type_tag, value = "s", str(value)
    node = {"FULL_PATH": f"{STATUS_PATH}/{name}", "TYPE": type_tag, "VALUE": [value], "ACCESS": ACCESS_READ,
            "DESCRIPTION": f"status: {name}"}
    unit = "time.ms" if "_ms" in name else "time.hz" if name.startswith("fps") else ""
    if unit and type_tag in "if":
        node["UNIT"] = [unit]
    return node


def place_node(contents: dict[str, Any], name: str, node: dict[str, Any]) -> None:
    """Put a parameter's node into ``contents``; a nested name (``lora/NAME/scale``) goes into
    containers, one per part before the last."""
    *folders, leaf = name.split("/")
    path = OSC_PREFIX.rstrip("/")
    for folder in folders:
        path += "/" + folder
        contents = contents.setdefault(folder, {"FULL_PATH": path, "ACCESS": ACCESS_NONE, "DESCRIPTION": folder,
                                                "CONTENTS": {}})["CONTENTS"]
    contents[leaf] = node


def build_tree(store: ParamStore, status: dict[str, Any]) -> dict[str, Any]:
    """The whole namespace with live values."""
    snapshot = store.snapshot()
    contents: dict[str, Any] = {}
    for p in store.registry:
        place_node(contents, p.name, param_node(p, snapshot[p.name]))
    contents["status"] = {"FULL_PATH": STATUS_PATH, "ACCESS": ACCESS_NONE, "DESCRIPTION": "engine status (read-only)",
                          "CONTENTS": {name: status_node(name, value) for name, value in status.items()}}
    root = OSC_PREFIX.strip("/")
    return {
        "FULL_PATH": "/",
        "ACCESS": ACCESS_NONE,
        "DESCRIPTION": "vacelive",
        "CONTENTS": {root: {"FULL_PATH": "/" + root, "ACCESS": ACCESS_NONE, "DESCRIPTION": "vacelive engine",
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


def answer_attribute(node: dict[str, Any], attribute: str) -> tuple[int, dict[str, Any] | None]:
    """The HTTP status and body of ``?ATTRIBUTE`` on ``node``."""
    if attribute not in ATTRIBUTES:
        return 400, None
    if attribute in node:
        return 200, {attribute: node[attribute]}
    return (200, {}) if "CONTENTS" in node else (204, None)


def _unspecified(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: tuple[str, int]) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a client went away: routine
            log.debug("OSCQuery connection from %s ended: %s", client_address[0], sys.exc_info()[1])
        else:
            log.exception("OSCQuery connection from %s failed", client_address[0])


class OscQueryServer:
    """Serves the namespace over HTTP, and the LISTEN WebSocket, on its own threads.

    ``control`` applies OSC packets that arrive over the WebSocket (without it they are dropped);
    ``allow_origins`` names the web pages that may use the server (see :mod:`vacelive.engine.origin`);
    ``status_period_s`` is how often listened status figures are checked for changes.
    """

    def __init__(self, store: ParamStore, status: Callable[[], dict[str, Any]], host: str, port: int,
                 osc_address: tuple[str, int], *, control: OscControl | None = None,
                 allow_origins: Iterable[str] = (), status_period_s: float = 1.0) -> None:
        self.store = store
        self.status = status
        self.control = control
        self.osc_address = osc_address
        self.policy = OriginPolicy(allow_origins)
        self.status_period_s = status_period_s
        self._clients: set[WebSocketClient] = set()
        self._clients_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), self._handler_class())
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="vacelive-oscquery", daemon=True),
            threading.Thread(target=self._stream_status, name="vacelive-oscquery-status", daemon=True),
        ]
        store.subscribe(self._on_change)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def host_info(self, local_ip: str) -> dict[str, Any]:
        """HOST_INFO; OSC_IP is an address a client can send to (the one it reached us on, if bound to all)."""
        osc_ip = self.osc_address[0]
        return {
            "NAME": "vacelive",
            "EXTENSIONS": dict(EXTENSIONS),
            "OSC_IP": local_ip if _unspecified(osc_ip) else osc_ip,
            "OSC_PORT": self.osc_address[1],
            "OSC_TRANSPORT": "UDP",
        }

    def respond(self, raw_path: str, local_ip: str = "127.0.0.1") -> tuple[int, dict[str, Any] | None]:
        """The HTTP status and JSON body for a GET of ``raw_path`` received on ``local_ip``."""
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parts.query
        if query == "HOST_INFO":
            return 200, self.host_info(local_ip)
        node = find_node(build_tree(self.store, self.status()), path)
        if node is None:
            return 404, None
        if not query:
            return 200, node
        return answer_attribute(node, query)

    # --- WebSocket ------------------------------------------------------------------------------

    @property
    def clients(self) -> list[WebSocketClient]:
        """The open WebSocket clients."""
        with self._clients_lock:
            return list(self._clients)

    def _on_change(self, param: Param, value: Any) -> None:
        """A parameter changed (any source): stream it to the clients listening to it."""
        listeners = [c for c in self.clients if param.address in c.listening]
        if listeners:
            packet = build_message(param.address, osc_value(param, value))
            for client in listeners:
                client.send_binary(packet)

    def _on_text(self, client: WebSocketClient, text: str) -> None:
        try:
            message = json.loads(text)
            command, path = message["COMMAND"], message["DATA"]
        except (ValueError, TypeError, KeyError):
            log.debug("WebSocket %s: not a command: %r", client.peer[0], text[:200])
            return
        if command not in ("LISTEN", "IGNORE") or not isinstance(path, str):
            log.debug("WebSocket %s: unknown command %r", client.peer[0], str(command)[:50])
            return
        node = find_node(build_tree(self.store, self.status()), path)
        full_path = node["FULL_PATH"] if node is not None and "CONTENTS" not in node else None
        if command == "IGNORE":
            client.listening = client.listening - {path, full_path}
            client.status_sent.pop((full_path or path).rpartition("/")[2], None)
        elif full_path is None:
            log.debug("WebSocket %s: LISTEN %r: no such method", client.peer[0], path[:200])
        else:
            client.listening = client.listening | {full_path}

    def _on_binary(self, client: WebSocketClient, packet: bytes) -> None:
        if self.control is None:
            log.debug("WebSocket %s: OSC packet dropped (no OSC control attached)", client.peer[0])
            return
        for reply in self.control.handle_packet(packet, client.peer):
            client.send_binary(reply)

    def _stream_status(self) -> None:
        prefix = STATUS_PATH + "/"
        while not self._stopping.wait(self.status_period_s):
            wanted = [c for c in self.clients if any(p.startswith(prefix) for p in c.listening)]
            if not wanted:
                continue
            try:
                figures = self.status()
                for client in wanted:
                    for path in client.listening:
                        name = path[len(prefix):] if path.startswith(prefix) else None
                        if name in figures and client.status_sent.get(name, _UNSENT) != figures[name]:
                            client.status_sent[name] = figures[name]
                            client.send_binary(build_message(path, status_node(name, figures[name])["VALUE"]))
            except Exception:
                log.exception("OSCQuery status streaming failed")

    def _serve_websocket(self, handler: BaseHTTPRequestHandler) -> None:
        refusal = handshake_refusal(handler.headers)
        if refusal:
            handler.send_response(400 if "Version" not in refusal else 426)
            handler.send_header("Sec-WebSocket-Version", "13")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            log.debug("WebSocket handshake from %s refused: %s", handler.client_address[0], refusal)
            return
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept_key(handler.headers["Sec-WebSocket-Key"]))
        handler.end_headers()
        handler.wfile.flush()
        handler.connection.settimeout(None)  # the client's writer pings; idle is fine here
        client = WebSocketClient(handler.rfile, handler.connection, handler.client_address[:2], self._on_text,
                                 self._on_binary)
        with self._clients_lock:
            if self._stopping.is_set():
                return
            self._clients.add(client)
        log.info("OSCQuery WebSocket client %s connected", handler.client_address[0])
        try:
            client.run()
        finally:
            with self._clients_lock:
                self._clients.discard(client)
            log.info("OSCQuery WebSocket client %s disconnected", handler.client_address[0])

    # --- HTTP -----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: every answer carries its length
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait between
            timeout = IDLE_TIMEOUT_S
            server_version = "vacelive-oscquery"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._serve(with_body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(with_body=False)

            def do_OPTIONS(self) -> None:  # noqa: N802 - a CORS preflight
                if not self._allowed():
                    return
                self.send_response(204)
                for name, value in server.policy.cors_headers(self.headers).items():
                    self.send_header(name, value)
                self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
                self.send_header("Access-Control-Max-Age", "600")
                self.end_headers()

            def _allowed(self) -> bool:
                refusal = server.policy.refusal(self.headers)
                if refusal is None:
                    return True
                log.warning("OSCQuery request from %s refused: %s", self.client_address[0], refusal)
                self._send(403, {"ERROR": refusal}, with_body=True)
                self.close_connection = True
                return False

            def _serve(self, with_body: bool) -> None:
                if not self._allowed():
                    return
                if with_body and upgrade_requested(self.headers):
                    self.close_connection = True
                    server._serve_websocket(self)
                    return
                try:
                    code, body = server.respond(self.path, self.connection.getsockname()[0])
                except Exception:
                    log.exception("OSCQuery request %r failed", self.path[:200])
                    code, body = 500, None
                self._send(code, body, with_body)

            def _send(self, code: int, body: dict[str, Any] | None, with_body: bool) -> None:
                self.send_response(code)
                for name, value in server.policy.cors_headers(self.headers).items():
                    self.send_header(name, value)
                if code == 204:  # no content, and no Content-Length either (RFC 9110)
                    self.end_headers()
                    return
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if with_body:
                    self.wfile.write(payload)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("oscquery: " + fmt, *args)

        return Handler

    def start(self) -> None:
        """Serve on background threads."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving, close every WebSocket and join the threads."""
        self._stopping.set()
        self._httpd.shutdown()
        for client in self.clients:
            client.close(1001, "server stopping")
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(5.0)
