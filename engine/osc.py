"""OSC control (python-osc): set and query every registry parameter, report status.

- ``/vacelive/<param> <value>`` sets; with no argument the sender gets the current value back at
  the same address. Ints, floats (TouchDesigner's OSC Out CHOP sends only floats) and strings are
  accepted as the parameter's type allows; bundles work (their time tags are not waited for).
- Out-of-range numbers are clamped and logged. A wrong type, an unknown address or a refused
  path is logged, answered with ``/vacelive/error <address> <reason>`` and changes nothing.
- The server runs on one thread with a blocking socket: a flood of messages is handled in order
  without spawning threads, and no message can stop the engine.
- :class:`StatusSender` sends ``/vacelive/status/<name>`` to the reply target at least once a
  second, plus each error as it happens.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from vacelive.engine.params import OSC_PREFIX, Kind, Param, ParamError
from vacelive.engine.ratelimit import LogLimiter
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)
refusals = LogLimiter(log)
"""Refused messages are logged at most a few a second (a flood must not flood the terminal)."""

ERROR_ADDRESS = OSC_PREFIX + "error"
STATUS_PREFIX = OSC_PREFIX + "status/"
MAX_ERROR_TEXT = 300
"""Error replies are cut to this many characters (a hostile string is not echoed whole)."""

Reply = tuple[Any, ...]


def osc_value(param: Param, value: Any) -> list[Any]:
    """The OSC arguments that carry ``value`` of ``param``."""
    if param.kind is Kind.STRING_LIST:
        return list(value)
    if param.kind in (Kind.BOOL, Kind.TRIGGER):
        return [int(bool(value))]
    return [value]


def build_message(address: str, args: Iterable[Any]) -> bytes:
    """Encode one OSC message (ints as int32, floats as float32, strings, bools)."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def _error_reply(address: str, reason: str) -> Reply:
    return (ERROR_ADDRESS, address[:MAX_ERROR_TEXT], reason[:MAX_ERROR_TEXT])


class _SafeDispatcher(Dispatcher):
    """python-osc's dispatcher, except that an undecodable packet is logged and dropped.

    python-osc only catches its own ParseError; invalid UTF-8 in a string raises
    UnicodeDecodeError from the parser, which must not reach the server loop.
    """

    def __init__(self, on_malformed: Callable[[], None]) -> None:
        super().__init__(strict_timing=False)
        self._on_malformed = on_malformed

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        try:
            return super().call_handlers_for_packet(data, client_address)
        except Exception as exc:
            self._on_malformed()
            refusals.log(logging.WARNING, "malformed OSC packet from %s dropped: %s", client_address[0], exc)
            return []


class OscControl:
    """Maps every parameter address to the store; answers queries and errors."""

    def __init__(self, store: ParamStore, *, allow: Iterable[str] = ()) -> None:
        self.store = store
        self.allow = frozenset(allow)
        self.received = 0
        self.refused = 0
        self.dispatcher = _SafeDispatcher(self._count_malformed)
        for param in store.registry:
            self.dispatcher.map(param.address, self._handle, param, needs_reply_address=True)
        self.dispatcher.set_default_handler(self._unknown, needs_reply_address=True)

    def _count_malformed(self) -> None:
        self.received += 1
        self.refused += 1

    def allowed(self, host: str) -> bool:
        """Whether a sender address may control the engine."""
        return not self.allow or host in self.allow

    def _handle(self, client: tuple[str, int], address: str, fixed: list[Param], *args: Any) -> Reply | None:
        self.received += 1
        param = fixed[0]
        try:
            return self._apply(param, address, args)
        except ParamError as exc:
            self.refused += 1
            refusals.log(logging.WARNING, "OSC %s from %s:%s refused: %s", address[:MAX_ERROR_TEXT], client[0],
                         client[1], exc)
            return _error_reply(address, str(exc))
        except Exception as exc:  # never let a message take the server down
            self.refused += 1
            log.exception("OSC %s failed", address)
            return _error_reply(address, f"internal error: {exc!r}")

    def _apply(self, param: Param, address: str, args: tuple[Any, ...]) -> Reply | None:
        if not args:
            return (param.address, *osc_value(param, self.store.get(param.name)))
        if param.kind is Kind.STRING_LIST:
            value: Any = list(args)
        elif len(args) != 1:
            raise ParamError(f"{param.name}: expected one argument, got {len(args)}")
        else:
            value = args[0]
        if param.kind is Kind.TRIGGER:
            fired, _ = param.coerce(value)
            if fired:
                self.store.set(param.name, True)
            return None
        self.store.set(param.name, value)
        return None

    def _unknown(self, client: tuple[str, int], address: str, *args: Any) -> Reply:
        self.received += 1
        self.refused += 1
        refusals.log(logging.WARNING, "OSC unknown address %r from %s:%s", address[:MAX_ERROR_TEXT], client[0],
                     client[1])
        return _error_reply(address, "unknown address")


class _Server(BlockingOSCUDPServer):
    """python-osc's blocking UDP server with the allow-list and error isolation."""

    control: OscControl

    def verify_request(self, request: Any, client_address: tuple[str, int]) -> bool:
        if not self.control.allowed(client_address[0]):
            self.control.refused += 1
            refusals.log(logging.WARNING, "OSC from %s refused: not in the allow-list", client_address[0])
            return False
        return super().verify_request(request, client_address)

    def handle_error(self, request: Any, client_address: tuple[str, int]) -> None:
        log.exception("OSC packet from %s could not be handled", client_address[0])


class OscServer:
    """The UDP server thread."""

    def __init__(self, control: OscControl, host: str, port: int) -> None:
        self.control = control
        self._server = _Server((host, port), control.dispatcher)
        self._server.control = control
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="vacelive-osc", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is real even when 0 was asked for."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


def parse_host_port(text: str) -> tuple[str, int]:
    """Parse ``host:port`` (``port`` alone means 127.0.0.1); raise ValueError if malformed."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host or "127.0.0.1", int(port)


class StatusSender:
    """Sends metrics to the ``osc_reply`` target once a second and errors as they happen."""

    def __init__(self, store: ParamStore, summary: Callable[[], dict[str, Any]], period_s: float = 1.0) -> None:
        self.store = store
        self.summary = summary
        self.period_s = period_s
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacelive-status", daemon=True)
        self._bad_target = ""

    def target(self) -> tuple[str, int] | None:
        """The current reply target, or ``None`` when off or malformed."""
        text = self.store.get("osc_reply")
        if not text:
            return None
        try:
            return parse_host_port(text)
        except ValueError as exc:
            if text != self._bad_target:
                log.error("osc_reply: %s", exc)
                self._bad_target = text
            return None

    def send(self, address: str, *args: Any) -> None:
        """Send one message to the reply target (silently nothing when there is none)."""
        target = self.target()
        if target is None:
            return
        try:
            self._sock.sendto(build_message(address, args), target)
        except OSError as exc:
            log.debug("status send to %s failed: %s", target, exc)

    def send_error(self, message: str) -> None:
        """Report an engine error to the reply target."""
        self.send(ERROR_ADDRESS, "engine", message[:MAX_ERROR_TEXT])

    def send_status(self) -> None:
        """Send every status figure once."""
        for name, value in self.summary().items():
            self.send(STATUS_PREFIX + name, value)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.send_status()
            except Exception:
                log.exception("status send failed")

    def start(self) -> None:
        """Send status on a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and join the thread."""
        self._stop.set()
        self._thread.join(5.0)
        self._sock.close()

