"""OSC control (python-osc): set and query every registry parameter, report status.

- ``/vacelive/<param> <value>`` sets; with no argument the sender gets the current value back at
  the same address (bools as T/F). Ints, floats (TouchDesigner's OSC Out CHOP sends only floats) and
  strings are accepted as the parameter's type allows; bundles work (their time tags are not waited
  for).
- A trigger (``/vacelive/cut``) has no value to query: a message with no argument, with nil (N),
  impulse (I), true (T) or a non-zero number fires it; false (F) and 0 (a released button) do not.
- Out-of-range numbers are clamped, logged and answered with the value in force. A wrong type,
  an unknown address or a refused path is logged, answered with ``/vacelive/error <address>
  <reason>`` and changes nothing. Every answer goes to the sender and to the ``osc_reply`` target.
- The same handling serves OSC packets that arrive over the OSCQuery WebSocket
  (:meth:`OscControl.handle_packet`).
- The server runs on one thread with a blocking socket: a flood of messages is handled in order
  without spawning threads, and no message can stop the engine.
- :class:`StatusSender` sends ``/vacelive/status/<name>`` to the reply target at least once a
  second, plus each error as it happens; the same address with no argument is answered at once.
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
from vacelive.engine.ratelimit import LogLimiter, RateLimitFilter
from vacelive.engine.state import ParamStore
from vacelive.engine.tempo import QuantizeError, Quantizer

log = logging.getLogger(__name__)
refusals = LogLimiter(log)
"""Refused messages are logged at most a few a second (a flood must not flood the terminal)."""

PYTHONOSC_LOG_LIMIT = RateLimitFilter("/pythonosc/")
"""python-osc logs some bad packets on the root logger, one line each: those go through this."""

QUANTISED = frozenset({"cut", "prompt", "preset_load"})
"""What ``quantize`` holds for the beat when it arrives over OSC (and every LoRA scale)."""

ERROR_ADDRESS = OSC_PREFIX + "error"
STATUS_PREFIX = OSC_PREFIX + "status/"
MAX_ERROR_TEXT = 300
"""Error replies are cut to this many characters (a hostile string is not echoed whole)."""

Reply = tuple[Any, ...]


def osc_value(param: Param, value: Any) -> list[Any]:
    """The OSC arguments that carry ``value`` of ``param`` (a bool as True/False: OSC T/F).

    A trigger has no value: it is carried by a message without arguments.
    """
    if param.kind is Kind.STRING_LIST:
        return list(value)
    if param.kind is Kind.TRIGGER:
        return []
    if param.kind is Kind.BOOL:
        return [bool(value)]
    return [value]


def build_message(address: str, args: Iterable[Any]) -> bytes:
    """Encode one OSC message (ints as int32, floats as float32, strings, bools)."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def impulses_as_nil(packet: bytes) -> bytes:
    """``packet`` with every OSC impulse type tag (``I``) turned into nil (``N``).

    python-osc cannot parse ``I`` (it drops the argument with a warning); both carry no data, so
    the swap changes no offsets. Bundles are walked; anything malformed is returned unchanged for
    the parser to refuse.
    """
    if packet.startswith(b"#bundle\x00"):
        out, at = bytearray(packet[:16]), 16
        while at + 4 <= len(packet):
            size = int.from_bytes(packet[at:at + 4], "big")
            element = packet[at + 4:at + 4 + size]
            if len(element) != size:
                return packet
            out += packet[at:at + 4] + impulses_as_nil(element)
            at += 4 + size
        return bytes(out) if at == len(packet) else packet
    address_end = packet.find(b"\x00")
    if address_end < 0:
        return packet
    tags_start = (address_end // 4 + 1) * 4  # the address is padded to a multiple of 4 bytes
    tags_end = packet.find(b"\x00", tags_start)
    if packet[tags_start:tags_start + 1] != b"," or tags_end < 0 or b"I" not in packet[tags_start:tags_end]:
        return packet
    return packet[:tags_start] + packet[tags_start:tags_end].replace(b"I", b"N") + packet[tags_end:]


def _error_reply(address: str, reason: str) -> Reply:
    return (ERROR_ADDRESS, address[:MAX_ERROR_TEXT], reason[:MAX_ERROR_TEXT])


class _SafeDispatcher(Dispatcher):
    """python-osc's dispatcher, except that an undecodable packet is logged and dropped.

    python-osc only catches its own ParseError; invalid UTF-8 in a string raises
    UnicodeDecodeError from the parser, which must not reach the server loop.
    """

    def __init__(self, on_malformed: Callable[[], None], on_replies: Callable[[list, tuple[str, int]], None]) -> None:
        super().__init__(strict_timing=False)
        self._on_malformed = on_malformed
        self._on_replies = on_replies

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        try:
            replies = super().call_handlers_for_packet(impulses_as_nil(data), client_address)
        except Exception as exc:
            self._on_malformed()
            refusals.log(logging.WARNING, "malformed OSC packet from %s dropped: %s", client_address[0], exc)
            return []
        if replies:
            self._on_replies(replies, client_address)
        return replies


class OscControl:
    """Maps every parameter address to the store; answers queries, clamps and errors.

    Every answer goes back to the sender (python-osc replies to its address and port) and, through
    ``on_replies``, may be copied elsewhere (the ``osc_reply`` target: one-shot senders such as
    ``oscsend`` have closed their port by the time the answer comes).
    """

    def __init__(self, store: ParamStore, *, allow: Iterable[str] = (),
                 on_replies: Callable[[list[Reply], tuple[str, int]], None] | None = None,
                 quantizer: Quantizer | None = None, status: Callable[[], dict[str, Any]] | None = None) -> None:
        self.store = store
        self.quantizer = quantizer
        self.status = status
        """The status figures: ``/vacelive/status/<name>`` with no argument is answered from them."""
        self.allow = frozenset(allow)
        self.received = 0
        self.refused = 0
        self.on_replies = on_replies
        self.dispatcher = _SafeDispatcher(self._count_malformed, self._copy_replies)
        for param in store.registry:
            self.map_param(param)
        self.dispatcher.set_default_handler(self._unknown, needs_reply_address=True)

    def map_param(self, param: Param) -> None:
        """Answer ``param``'s address (every registry parameter is mapped at start; a parameter
        added to the store later, such as a new LoRA's scale, is mapped with this)."""
        self.dispatcher.map(param.address, self._handle, param, needs_reply_address=True)

    def handle_packet(self, data: bytes, client: tuple[str, int]) -> list[bytes]:
        """Apply one OSC packet that came over a stream (the OSCQuery WebSocket); return the replies.

        The same allow-list, checks and answers as for UDP; the replies are encoded OSC messages
        for the caller to send back on the stream it read from.
        """
        if not self.allowed(client[0]):
            self.received += 1
            self.refused += 1
            refusals.log(logging.WARNING, "OSC from %s refused: not in the allow-list", client[0])
            return []
        replies = self.dispatcher.call_handlers_for_packet(data, client)
        return [build_message(reply[0], reply[1:]) for reply in replies]

    def _copy_replies(self, replies: list[Reply], client: tuple[str, int]) -> None:
        if self.on_replies is not None:
            self.on_replies(replies, client)

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

    def _on_the_beat(self, param: Param, value: Any) -> bool:
        """Hold a quantisable change for its beat boundary when ``quantize`` is on; True if held."""
        mode = self.store.get("quantize")
        if mode == "off" or self.quantizer is None or not (param.name in QUANTISED or param.group == "lora"):
            return False
        coerced, _ = param.coerce(value)
        if param.kind is Kind.TRIGGER and not coerced:
            return True  # a released button: nothing to hold
        try:
            self.quantizer.hold(param.name, coerced, mode)
        except QuantizeError as exc:
            raise ParamError(str(exc)) from None
        return True

    def _apply(self, param: Param, address: str, args: tuple[Any, ...]) -> Reply | None:
        if param.kind is Kind.TRIGGER:
            if len(args) > 1:
                raise ParamError(f"{param.name}: expected at most one argument, got {len(args)}")
            if not self._on_the_beat(param, args[0] if args else None):
                self.store.set(param.name, args[0] if args else None)  # fires unless false or 0
            return None
        if not args:
            return (param.address, *osc_value(param, self.store.get(param.name)))
        if param.kind is Kind.STRING_LIST:
            value: Any = list(args)
        elif len(args) != 1:
            raise ParamError(f"{param.name}: expected one argument, got {len(args)}")
        else:
            value = args[0]
        if self._on_the_beat(param, value):
            return None
        applied, note = self.store.set(param.name, value)
        if note is not None:  # clamped or rounded: say what is in force
            return (param.address, *osc_value(param, applied))
        return None

    def _unknown(self, client: tuple[str, int], address: str, *args: Any) -> Reply:
        if address.startswith(STATUS_PREFIX) and not args and self.status is not None:
            figures = self.status()  # a status figure asked for: answered like a parameter query
            name = address[len(STATUS_PREFIX):]
            if name in figures:
                self.received += 1
                value = figures[name]
                return (address, *(value if isinstance(value, list) else [value]))
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
        """Serve on a background thread (python-osc's own per-packet warnings rate-limited)."""
        root = logging.getLogger()
        if PYTHONOSC_LOG_LIMIT not in root.filters:
            root.addFilter(PYTHONOSC_LOG_LIMIT)
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

    def copy_replies(self, replies: list[Reply], client: tuple[str, int]) -> None:
        """Send answers given to ``client`` to the reply target too (unless it is that client)."""
        target = self.target()
        if target is None or target == (client[0], client[1]):
            return
        for reply in replies:
            self.send(reply[0], *reply[1:])

    def send_error(self, message: str) -> None:
        """Report an engine error to the reply target."""
        self.send(ERROR_ADDRESS, "engine", message[:MAX_ERROR_TEXT])

    def send_status(self) -> None:
        """Send every status figure once."""
        for name, value in self.summary().items():
            self.send(STATUS_PREFIX + name, *(value if isinstance(value, list) else [value]))

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
        """Stop sending, join the thread (if it was started) and close the socket."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5.0)
        self._sock.close()

