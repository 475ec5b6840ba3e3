"""The OSCQuery WebSocket: one client connection, upgraded from a GET on the OSCQuery HTTP port.

The proposal's bidirectional extension, as this connection carries it:

- text frames from the client are JSON commands, ``{"COMMAND": "LISTEN", "DATA": "/vacelive/fps"}``
  and ``"IGNORE"``; the server (see :mod:`vacelive.engine.oscquery`) keeps :attr:`WebSocketClient.listening`
  and streams each change of a listened value to it as a binary frame holding one OSC message;
- binary frames from the client are OSC packets, applied like UDP ones; their replies (query
  answers, errors) come back as binary frames.

The handshake (RFC 6455 section 4.2) is done here on the HTTP server's own socket, after the
Origin check; the framing (masking, fragments, ping/pong, the close handshake) is websockets'
sans-I/O protocol. Threads: the HTTP handler's thread reads; one writer thread per client drains a
bounded queue, so whoever sends (the OSC thread, on a parameter change) never waits for a slow
client; a client whose queue fills, or that stops answering pings, is dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import BinaryIO

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

log = logging.getLogger(__name__)

HANDSHAKE_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE_BYTES = 64 * 1024
"""Largest message accepted from a client (an OSC packet or a command); larger closes with 1009."""
QUEUE_LIMIT = 1024
"""Frames waiting for a client; past this the client is too slow and is dropped."""
PING_INTERVAL_S = 20.0
"""A ping goes out this often; a client silent for two intervals is dropped."""


def upgrade_requested(headers: Mapping[str, str]) -> bool:
    """Whether a request asks to become a WebSocket."""
    return headers.get("Upgrade", "").strip().lower() == "websocket"


def handshake_refusal(headers: Mapping[str, str]) -> str | None:
    """Why a WebSocket handshake is malformed, or ``None`` if it can be accepted."""
    connection = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    if "upgrade" not in connection:
        return "Connection: Upgrade missing"
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        return "Sec-WebSocket-Version must be 13"
    try:
        key = base64.b64decode(headers.get("Sec-WebSocket-Key", "").strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 16:
        return "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept answer to a Sec-WebSocket-Key."""
    digest = hashlib.sha1((key.strip() + HANDSHAKE_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


class WebSocketClient:
    """One open WebSocket: reads on the calling thread, writes on its own."""

    def __init__(self, reader: BinaryIO, sock: socket.socket, peer: tuple[str, int],
                 on_text: Callable[[WebSocketClient, str], None],
                 on_binary: Callable[[WebSocketClient, bytes], None]) -> None:
        self.peer = peer
        self.listening: frozenset[str] = frozenset()
        """Paths whose changes this client asked for (replaced whole, never mutated: read from other threads)."""
        self.status_sent: dict[str, object] = {}
        """Status figures last sent to this client (only changes are sent)."""
        self._reader = reader
        self._sock = sock
        self._on_text = on_text
        self._on_binary = on_binary
        self._protocol = ServerProtocol(state=State.OPEN, max_size=MAX_MESSAGE_BYTES)
        self._lock = threading.Lock()
        self._outgoing: queue.Queue[bytes | None] = queue.Queue(QUEUE_LIMIT)
        self._closed = False
        self._last_heard = time.monotonic()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._writer = threading.Thread(target=self._write_loop, name="vacelive-oscquery-ws", daemon=True)
        self.finished = threading.Event()
        """Set when :meth:`run` has returned (the connection is over)."""

    def send_binary(self, payload: bytes) -> None:
        """Queue one binary frame (an OSC packet); never blocks. Nothing is sent once closing."""
        with self._lock:
            if not self._closed and self._protocol.state is State.OPEN:
                self._protocol.send_binary(payload)
                self._flush_locked()

    def send_text(self, text: str) -> None:
        """Queue one text frame; never blocks. Nothing is sent once closing."""
        with self._lock:
            if not self._closed and self._protocol.state is State.OPEN:
                self._protocol.send_text(text.encode("utf-8"))
                self._flush_locked()

    def close(self, code: int = 1001, reason: str = "server stopping", timeout_s: float = 1.0) -> None:
        """Start the closing handshake; drop the connection if it has not ended within ``timeout_s``."""
        with self._lock:
            if not self._closed and self._protocol.state is State.OPEN:
                self._protocol.send_close(code, reason)
                self._flush_locked()
        if not self.finished.wait(timeout_s):
            self.abort()

    def run(self) -> None:
        """Serve the connection until it closes (called on the HTTP handler's thread)."""
        self._writer.start()
        try:
            while True:
                data = self._reader.read1(65536)
                with self._lock:
                    if not data:
                        self._protocol.receive_eof()
                    else:
                        self._last_heard = time.monotonic()
                        self._protocol.receive_data(data)
                    frames = self._protocol.events_received()
                    self._flush_locked()
                for frame in frames:
                    self._deliver(frame)
                if not data or self._protocol.state is State.CLOSED or self._protocol.close_expected():
                    break
        except (OSError, ValueError):  # reset by the peer, or the socket shut by abort()
            pass
        finally:
            with self._lock:
                self._closed = True
            try:  # let the writer send what is queued (the reply to the client's close) first
                self._outgoing.put(None, timeout=1.0)
            except queue.Full:
                pass
            self._writer.join(2.0)
            self._shutdown()
            self.finished.set()

    def abort(self) -> None:
        """Drop the connection now (server stop, a slow or silent client); nothing queued is sent."""
        with self._lock:
            self._closed = True
        try:
            self._outgoing.put_nowait(None)
        except queue.Full:
            pass
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader; the HTTP server closes the socket
        except OSError:
            pass

    def _deliver(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.PING, Opcode.PONG, Opcode.CLOSE):
            return  # the protocol answers pings and closes by itself
        if frame.opcode is not Opcode.CONT:
            self._fragment_opcode, self._fragments = frame.opcode, []
        self._fragments.append(bytes(frame.data))
        if sum(len(part) for part in self._fragments) > MAX_MESSAGE_BYTES:
            log.warning("WebSocket client %s: message over %d bytes, closing", self.peer[0], MAX_MESSAGE_BYTES)
            with self._lock:
                if self._protocol.state is State.OPEN:
                    self._protocol.send_close(1009, "message too big")
                    self._flush_locked()
            self._fragments = []
            return
        if not frame.fin:
            return
        message, opcode, self._fragments = b"".join(self._fragments), self._fragment_opcode, []
        try:
            if opcode is Opcode.TEXT:
                self._on_text(self, message.decode("utf-8", errors="replace"))
            elif opcode is Opcode.BINARY:
                self._on_binary(self, message)
        except Exception:  # a bad message must not end the connection, let alone the server
            log.exception("WebSocket message from %s failed", self.peer[0])

    def _flush_locked(self) -> None:
        for chunk in self._protocol.data_to_send():
            try:
                self._outgoing.put_nowait(chunk)  # b"" asks for the TCP half-close after a close frame
            except queue.Full:
                log.warning("WebSocket client %s is not reading: dropped", self.peer[0])
                self._closed = True
                self._shutdown()
                return

    def _write_loop(self) -> None:
        last_ping = time.monotonic()
        while True:
            try:
                chunk: bytes | None = self._outgoing.get(timeout=PING_INTERVAL_S / 4)
                idle = False
            except queue.Empty:
                chunk, idle = b"", True
            now = time.monotonic()
            if now - self._last_heard > 2 * PING_INTERVAL_S:
                log.info("WebSocket client %s stopped answering: dropped", self.peer[0])
                self.abort()
                return
            if now - last_ping > PING_INTERVAL_S:
                last_ping = now
                with self._lock:
                    if not self._closed and self._protocol.state is State.OPEN:
                        self._protocol.send_ping(b"")
                        self._flush_locked()
            if idle:
                continue
            try:
                if chunk is None:
                    return
                if not chunk:  # the protocol's end of stream: half-close after the close frame
                    self._sock.shutdown(socket.SHUT_WR)
                    return
                self._sock.sendall(chunk)
            except OSError:
                self.abort()
                return
