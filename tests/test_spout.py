"""The Spout bridge against a fake SpoutGL that behaves as the real library does (Windows only,
so it cannot run here): what is modelled, from SpoutGL's bindings and the Spout2 C++ they wrap,

- ``createOpenGL()`` makes a context current on the calling thread only; ``sendImage`` on a thread
  without one takes DirectX CPU staging (recorded as a fallback); ``closeOpenGL`` must run on the
  thread that created the context (its hidden window belongs to that thread);
- ``waitFrameSync`` returns false at once for a sender that does not signal frame sync, blocks up
  to its timeout for one that does;
- ``receiveImage`` returns true while the sender exists, new frame or not (``isFrameNew`` tells),
  and reports a first contact through ``isUpdated`` without copying;
- a second sender with a taken name is registered as ``NAME_1``;
- ``getSenderName`` is bound to the width getter (so it must not be used).

Time is a fake clock (``sleep`` advances it), so waiting is checked without timing anything.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from vacelive.bridges import BridgeError, BridgeState, open_sink, open_source
import vacelive.bridges.spout as spout

W, H = 64, 48


class FakeClock:
    """``time`` for the bridge: ``sleep`` advances ``now`` instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        self.slept += seconds


class FakeSpoutGL:
    """One machine's Spout: registered senders, their pixels, frame counts and sync events."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.current = threading.local()  # the GL context current on each thread
        self.senders: dict[str, dict] = {}
        self.fallbacks = 0  # sendImage without a current context: DirectX CPU staging
        self.wrong_thread_closes = 0
        self.calls: list[tuple[str, int]] = []  # (what, thread id)
        world = self

        class _Common:
            def __init__(self) -> None:
                self.context_thread: int | None = None

            def createOpenGL(self) -> bool:  # noqa: N802
                world.calls.append(("createOpenGL", threading.get_ident()))
                self.context_thread = threading.get_ident()
                world.current.context = self
                return world.can_create_context

            def closeOpenGL(self) -> bool:  # noqa: N802
                world.calls.append(("closeOpenGL", threading.get_ident()))
                if threading.get_ident() != self.context_thread:
                    world.wrong_thread_closes += 1
                    return False
                world.current.context = None
                return True

            def getSenderName(self):  # noqa: N802  (bound to GetSenderWidth in SpoutGL)
                raise AssertionError("getSenderName is mis-bound in SpoutGL: never call it")

        class SpoutSender(_Common):
            def __init__(self) -> None:
                super().__init__()
                self.requested = ""
                self.registered: str | None = None

            def setSenderName(self, name: str) -> None:  # noqa: N802
                self.requested = name

            def sendImage(self, pixels, width, height, gl_format, invert, fbo) -> bool:  # noqa: N802
                world.calls.append(("sendImage", threading.get_ident()))
                if getattr(world.current, "context", None) is not self:
                    world.fallbacks += 1
                if self.registered is None:
                    name, n = self.requested, 0
                    while name in world.senders:
                        n += 1
                        name = f"{self.requested}_{n}"
                    self.registered = name
                    world.senders[name] = {"frame_sync": False, "signalled": False, "count": 0}
                sender = world.senders[self.registered]
                rgb = np.frombuffer(pixels, np.uint8).reshape(height, width, 3)
                sender["bgra"] = np.dstack([rgb[:, :, ::-1], np.full((height, width), 255, np.uint8)])
                sender["count"] += 1
                return True

            def setFrameSync(self, name: str) -> None:  # noqa: N802
                sender = world.senders[self.registered]
                sender["frame_sync"] = sender["signalled"] = True

            def releaseSender(self) -> None:  # noqa: N802
                world.calls.append(("releaseSender", threading.get_ident()))
                world.senders.pop(self.registered, None)

        class SpoutReceiver(_Common):
            def __init__(self) -> None:
                super().__init__()
                self.name = ""
                self.connected: str | None = None
                self.seen = 0
                self.updated = False
                self.new = False
                self.receives = 0

            def setReceiverName(self, name: str) -> None:  # noqa: N802
                self.name = name

            def getSenderList(self) -> list[str]:  # noqa: N802
                return list(world.senders)

            def waitFrameSync(self, name: str, timeout_ms: int = 0) -> bool:  # noqa: N802
                sender = world.senders.get(name)
                if sender is None or not sender["frame_sync"]:
                    return False  # no sync event: returns at once
                if sender["signalled"]:
                    sender["signalled"] = False
                    return True
                world.clock.now += timeout_ms / 1000.0  # blocks for the timeout
                return False

            def receiveImage(self, buffer, gl_format, invert, fbo) -> bool:  # noqa: N802
                self.receives += 1
                name = self.name or next(iter(world.senders), None)
                sender = world.senders.get(name) if name else None
                if sender is None:
                    self.connected = None
                    return False
                if self.connected != name or buffer is None:
                    self.connected, self.updated, self.new = name, True, False
                    return True
                assert gl_format == spout.GL_BGRA_EXT, "BGRA senders are received as BGRA"
                np.copyto(buffer, sender["bgra"].reshape(-1))
                self.new = sender["count"] != self.seen
                self.seen = sender["count"]
                return True

            def isUpdated(self) -> bool:  # noqa: N802
                updated, self.updated = self.updated, False
                return updated

            def isFrameNew(self) -> bool:  # noqa: N802
                return self.new

            def getSenderWidth(self) -> int:  # noqa: N802
                return world.senders[self.connected]["bgra"].shape[1]

            def getSenderHeight(self) -> int:  # noqa: N802
                return world.senders[self.connected]["bgra"].shape[0]

            def getSenderFormat(self) -> int:  # noqa: N802
                return spout.DXGI_FORMAT_B8G8R8A8_UNORM

            def releaseReceiver(self) -> None:  # noqa: N802
                world.calls.append(("releaseReceiver", threading.get_ident()))

        self.can_create_context = True
        self.SpoutSender = SpoutSender
        self.SpoutReceiver = SpoutReceiver

    def add_sender(self, name: str, frame_sync: bool) -> None:
        """A sender of another program (TouchDesigner), with one frame up."""
        self.senders[name] = {"frame_sync": frame_sync, "signalled": False, "count": 0}
        self.publish(name, np.zeros((H, W, 3), np.uint8))

    def publish(self, name: str, rgb: np.ndarray) -> None:
        sender = self.senders[name]
        sender["bgra"] = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
        sender["count"] += 1
        sender["signalled"] = sender["frame_sync"]


@pytest.fixture
def world(monkeypatch) -> FakeSpoutGL:
    clock = FakeClock()
    fake = FakeSpoutGL(clock)
    monkeypatch.setattr(spout, "time", clock)
    monkeypatch.setattr(spout, "_spoutgl", lambda bridge: fake)
    return fake


def _frame(value: int) -> np.ndarray:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:, :, 0], frame[:, :, 1], frame[:, :, 2] = value, 255 - value, 7
    return frame


def _opened_source(spec: str):
    source = open_source(spec, width=W, height=H, fps=30)
    source.open()
    return source


@pytest.mark.parametrize("spec", ["spout:TD", "spout:"])
def test_receiver_waits_for_a_sender_without_frame_sync_instead_of_spinning(world, spec):
    world.add_sender("TD", frame_sync=False)
    source = _opened_source(spec)
    try:
        assert source.read(0.1) is not None  # the frame that was up when we connected
        receiver = source._receiver
        for _ in range(5):  # nothing new: each read takes its whole timeout, polling every POLL_S
            before_t, before_n = world.clock.now, receiver.receives
            assert source.read(0.1) is None
            assert world.clock.now - before_t == pytest.approx(0.1, abs=spout.POLL_S)
            assert receiver.receives - before_n <= 0.1 / spout.POLL_S + 1
        world.publish("TD", _frame(200))
        frame = source.read(0.1)
        assert frame is not None and np.array_equal(frame, _frame(200))
        assert source.state is BridgeState.LIVE and source.frames == 2
    finally:
        source.close()


def test_receiver_with_frame_sync_takes_each_frame_when_it_is_signalled(world):
    world.add_sender("TD", frame_sync=True)
    source = _opened_source("spout:TD")
    try:
        assert source.read(0.1) is not None
        for value in (10, 20, 30):
            world.publish("TD", _frame(value))
            before = world.clock.now
            assert np.array_equal(source.read(0.1), _frame(value))
            assert world.clock.now - before <= spout.POLL_S  # no polling delay on a synced frame
        before = world.clock.now
        assert source.read(0.1) is None  # no frame: waitFrameSync blocked for the timeout
        assert world.clock.now - before == pytest.approx(0.1, abs=spout.POLL_S)
    finally:
        source.close()


def test_receiver_without_a_sender_waits_out_the_timeout_and_lists_senders(world):
    source = _opened_source("spout:TD")
    try:
        assert source.state is BridgeState.CONNECTING
        before = world.clock.now
        assert source.read(0.25) is None
        assert world.clock.now - before == pytest.approx(0.25)
        assert source.state is BridgeState.CONNECTING
        world.add_sender("Other", frame_sync=False)
        assert source.visible() == ["Other"]
    finally:
        source.close()
    assert source.state is BridgeState.CLOSED
    source.close()  # twice is fine


def test_receiver_context_lives_on_one_thread_whoever_reads(world):
    world.add_sender("TD", frame_sync=True)
    source = _opened_source("spout:TD")  # opened on this (the main) thread, like Engine.start
    frames = []
    reader = threading.Thread(target=lambda: frames.extend(source.read(0.1) for _ in range(2)))
    reader.start()
    reader.join(10)
    source.close()
    assert frames[0] is not None
    threads = {thread for what, thread in world.calls}
    assert len(threads) == 1 and threading.get_ident() not in threads and reader.ident not in threads
    assert [what for what, _ in world.calls] == ["createOpenGL", "releaseReceiver", "closeOpenGL"]
    assert world.wrong_thread_closes == 0


def test_sender_context_is_made_used_and_closed_on_one_thread(world):
    sink = open_sink("spout:vacelive_out")
    sink.open(W, H, 24.0)  # main thread, as Engine.start does
    writer = threading.Thread(target=lambda: [sink.write(_frame(v)) for v in (1, 2, 3)] and sink.close())
    writer.start()  # writes and closes on another thread, as the engine's SinkWriter does
    writer.join(10)
    assert sink.frames == 3 and sink.state is BridgeState.CLOSED
    assert world.fallbacks == 0, "sendImage ran without the context current: DirectX CPU staging"
    assert world.wrong_thread_closes == 0
    threads = {thread for _, thread in world.calls}
    assert len(threads) == 1 and threads.isdisjoint({threading.get_ident(), writer.ident})
    assert [what for what, _ in world.calls] == ["createOpenGL", *["sendImage"] * 3, "releaseSender",
                                                 "closeOpenGL"]
    with pytest.raises(BridgeError, match="before open"):
        sink.write(_frame(4))


def test_sender_to_receiver_round_trip(world):
    sink = open_sink("spout:vacelive_out")
    sink.open(W, H, 24.0)
    source = _opened_source("spout:vacelive_out")
    try:
        sink.write(_frame(50))
        assert sink.published_name == "vacelive_out"
        assert np.array_equal(source.read(0.1), _frame(50))  # first contact sizes the buffer, then reads
        for value in (60, 70):
            sink.write(_frame(value))
            assert np.array_equal(source.read(0.1), _frame(value))
    finally:
        source.close()
        sink.close()


def test_a_taken_sender_name_is_warned_about_and_the_new_name_kept(world, caplog):
    world.add_sender("vacelive_out", frame_sync=False)  # left by a vacelive that crashed
    sink = open_sink("spout:vacelive_out")
    with caplog.at_level(logging.WARNING, logger="vacelive.bridges.spout"):
        sink.open(W, H, 24.0)
        assert "already exists" in caplog.text and "vacelive_out_1" in caplog.text
        sink.write(_frame(1))
    sink.close()
    assert sink.published_name == "vacelive_out_1"
    assert "published this sender as 'vacelive_out_1'" in caplog.text


def test_renamed_by_spout_matches_only_numbered_copies():
    names = ["vacelive_out", "vacelive_out_1", "vacelive_out_2", "vacelive_out_x", "vacelive_outer_1"]
    assert spout.renamed_by_spout("vacelive_out", names) == ["vacelive_out_1", "vacelive_out_2"]


def test_a_context_that_cannot_be_made_fails_the_open_and_stops_its_thread(world):
    world.can_create_context = False
    for bridge, open_it in ((open_source("spout:TD", width=W, height=H, fps=30), lambda b: b.open()),
                            (open_sink("spout:out"), lambda b: b.open(W, H, 24.0))):
        with pytest.raises(BridgeError, match="OpenGL context"):
            open_it(bridge)
        assert bridge.state is BridgeState.FAILED and bridge._gl is None


def test_a_failed_send_raises_in_the_writer_and_the_sink_still_closes_on_its_thread(world, monkeypatch):
    sink = open_sink("spout:vacelive_out")
    sink.open(W, H, 24.0)
    monkeypatch.setattr(world.SpoutSender, "sendImage", lambda self, *args: False)
    with pytest.raises(BridgeError, match="sendImage failed"):
        sink.write(_frame(1))  # the GL thread's exception reaches the caller
    sink.close()
    assert sink.state is BridgeState.CLOSED and sink.frames == 0
    assert [what for what, _ in world.calls] == ["createOpenGL", "releaseSender", "closeOpenGL"]
    assert world.wrong_thread_closes == 0
