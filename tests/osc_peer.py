"""A real OSC peer on loopback for the tests: sends from one socket and reads the replies."""

from __future__ import annotations

import socket
from typing import Any

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket


def message(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def bundle(*messages: tuple) -> bytes:
    builder = OscBundleBuilder(IMMEDIATELY)
    for address, *args in messages:
        msg = OscMessageBuilder(address=address)
        for arg in args:
            msg.add_arg(arg)
        builder.add_content(msg.build())
    return builder.build().dgram


class Peer:
    """A UDP socket that talks to the engine and collects what comes back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def send(self, address: str, *args: Any) -> None:
        self.sock.sendto(message(address, *args), self.target)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def receive(self, timeout: float = 2.0) -> tuple[str, list[Any]]:
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65536)
        msgs = [m.message for m in OscPacket(data).messages]
        return msgs[0].address, list(msgs[0].params)

    def ask(self, address: str) -> list[Any]:
        self.send(address)
        got, args = self.receive()
        assert got == address, (got, args)
        return args

    def close(self) -> None:
        self.sock.close()
