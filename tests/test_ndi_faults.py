"""NDI bridge logic against a stand-in for cyndilib (no NDI runtime, no network): the receiver
rebuilt after its timeout, an unsupported FourCC dropped, sender failures mapped to BridgeError."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

import vacelive.bridges.ndi as ndi_bridge
from vacelive.bridges.base import BridgeError, BridgeState
from vacelive.bridges.ndi import NDISink, NDISource


def fourcc(name: str) -> int:
    return int.from_bytes(name.encode(), "little")


class Video(bytearray):
    """What the frame-sync fills (its pixels are its own buffer): one frame per ``deliver``."""

    def __init__(self):
        super().__init__()
        self.xres = 0
        self.stamp = 0.0
        self.code = fourcc("RGBA")

    def deliver(self, width=4, height=2, code="RGBA", value=90):
        self.xres, self.stamp, self.code = width, self.stamp + 1.0, fourcc(code)
        self[:] = bytes([value]) * (width * height * 4)
        self.size = (width, height)

    def get_timestamp_posix(self):
        return self.stamp

    def get_resolution(self):
        return self.size

    def get_fourcc(self):
        return self.code

    def get_frame_rate(self):
        return 30

    def get_line_stride(self):
        return 0


class FakeNDI:
    """The few cyndilib names the bridge uses; records receivers built and what senders do."""

    def __init__(self):
        self.receivers = []
        self.connected = True
        self.sources = ["HOST (TD-out)"]
        self.video = Video()
        self.open_error: Exception | None = None
        self.write_result: object = True
        fake = self

        class Receiver:
            def __init__(self, **kwargs):
                fake.receivers.append(self)
                self.frame_sync = SimpleNamespace(set_video_frame=lambda v: None, capture_video=lambda: None)

            def set_source(self, source):
                self.source = source

            def is_connected(self):
                return fake.connected

            def disconnect(self):
                pass

        class Finder:
            def open(self):
                pass

            def close(self):
                pass

            def get_source_names(self):
                return list(fake.sources)

            def get_source(self, name):
                return SimpleNamespace(name=name)

        class Sender:
            def __init__(self, name, clock_video=False, clock_audio=False):
                self.name = name

            def set_video_frame(self, frame):
                pass

            def open(self):
                if fake.open_error is not None:
                    raise fake.open_error

            def write_video(self, data):
                if isinstance(fake.write_result, Exception):
                    raise fake.write_result
                return fake.write_result

            def close(self):
                pass

        frame = SimpleNamespace(set_resolution=lambda w, h: None, set_fourcc=lambda c: None,
                                set_frame_rate=lambda r: None)
        self.module = SimpleNamespace(
            Receiver=Receiver, Finder=Finder, Sender=Sender, VideoFrameSync=lambda: fake.video,
            VideoSendFrame=lambda: frame, RecvColorFormat=SimpleNamespace(UYVY_RGBA=1),
            RecvBandwidth=SimpleNamespace(highest=1, lowest=0), FourCC=SimpleNamespace(RGBX=fourcc("RGBX")),
        )


@pytest.fixture()
def fake(monkeypatch):
    fake = FakeNDI()
    monkeypatch.setattr(ndi_bridge, "_cyndilib", lambda: fake.module)
    return fake


def test_the_receiver_is_rebuilt_when_a_lost_sender_does_not_come_back(fake, monkeypatch):
    monkeypatch.setattr(ndi_bridge, "REBUILD_AFTER_S", 0.05)
    source = NDISource("ndi:TD-out", "TD-out")
    source.open()
    assert len(fake.receivers) == 1 and source.state is BridgeState.CONNECTING
    fake.video.deliver()
    assert source.read(0.05) is not None and source.state is BridgeState.LIVE
    fake.connected = False  # the sender went away
    assert source.read(0.02) is None and source.state is BridgeState.LOST
    assert len(fake.receivers) == 1  # not yet: NDI may reconnect by itself
    source._lost_since -= 1.0  # ...and it has not, for longer than REBUILD_AFTER_S
    assert source.read(0.02) is None
    assert len(fake.receivers) == 2 and fake.receivers[-1].source.name == "HOST (TD-out)"
    fake.connected = True
    fake.video.deliver(value=200)
    frame = source.read(0.05)
    assert frame is not None and source.state is BridgeState.LIVE and (frame == 200).all()
    source.close()


def test_no_rebuild_while_the_sender_is_not_visible(fake):
    source = NDISource("ndi:TD-out", "TD-out")
    source.open()
    fake.video.deliver()
    assert source.read(0.05) is not None
    fake.connected, fake.sources = False, []
    assert source.read(0.02) is None and source.state is BridgeState.LOST
    source._lost_since -= ndi_bridge.REBUILD_AFTER_S + 1.0
    assert source.read(0.02) is None
    assert len(fake.receivers) == 1  # rebuilding for a sender nobody sees would only churn
    source.close()


def test_an_unsupported_fourcc_is_dropped_with_a_warning(fake, caplog):
    source = NDISource("ndi:TD-out", "TD-out")
    source.open()
    fake.video.deliver(code="P216")
    with caplog.at_level(logging.WARNING):
        assert source.read(0.02) is None
    assert source.layout is None and source.frames == 0
    assert "unsupported NDI FourCC" in caplog.text
    fake.video.deliver(code="RGBA", value=7)  # the next supported frame comes through
    frame = source.read(0.05)
    assert frame is not None and frame.shape == (2, 4, 3) and (frame == 7).all() and source.layout == "RGBA"
    source.close()


def test_sender_failures_are_bridge_errors_naming_the_sink(fake):
    fake.open_error = RuntimeError("NDI runtime not found")
    sink = NDISink("ndi:vacelive", "vacelive")
    with pytest.raises(BridgeError, match="ndi:vacelive: NDI sender could not start: NDI runtime not found"):
        sink.open(4, 2, 30.0)
    assert sink.state is BridgeState.FAILED
    fake.open_error = None
    sink.open(4, 2, 30.0)
    assert sink.state is BridgeState.LIVE
    frame = np.zeros((2, 4, 3), np.uint8)
    sink.write(frame)
    fake.write_result = RuntimeError("send buffer gone")
    with pytest.raises(BridgeError, match="ndi:vacelive: NDI send failed: send buffer gone"):
        sink.write(frame)
    fake.write_result = False
    with pytest.raises(BridgeError, match="ndi:vacelive: NDI sender is not running"):
        sink.write(frame)
    assert sink.frames == 1
    sink.close()
    with pytest.raises(BridgeError, match="write\\(\\) before open\\(\\)"):
        sink.write(frame)
