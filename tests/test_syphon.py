"""The Syphon bridge against a fake syphon-python and Metal that behave as the real ones do
(macOS only, so they cannot run here): what is modelled, from Syphon-Framework, syphon-python
0.1.1/0.2.0 and Apple's notification guide,

- servers announce themselves by distributed notification; the shared directory's list changes
  only when the notification is delivered, which happens only while the *main* thread runs its run
  loop; ``SyphonServerDirectory.servers`` pumps the calling thread's run loop, then reads the list;
- ``publish_frame_texture`` encodes a blit that reads the texture into the command buffer and,
  unless ``auto_commit=False``, commits it without waiting for the GPU: the blit stays in flight
  until someone waits for it, and a texture overwritten while a blit reads it tears.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from vacelive.bridges import BridgeError, BridgeState, open_sink, open_source
import vacelive.bridges.syphon as syphon

W, H = 32, 24


class FakeTexture:
    def __init__(self, world, width: int, height: int, pixel_format: int) -> None:
        self.world, self.w, self.h, self.format = world, width, height, pixel_format
        self.pixels = np.zeros(width * height * 4, np.uint8)

    def width(self) -> int:
        return self.w

    def height(self) -> int:
        return self.h

    def pixelFormat(self) -> int:  # noqa: N802
        return self.format

    def getBytes_bytesPerRow_fromRegion_mipmapLevel_(self, buffer, row_bytes, region, level) -> None:  # noqa: N802
        np.copyto(buffer, self.pixels)

    def replaceRegion_mipmapLevel_withBytes_bytesPerRow_(self, region, level, data, row_bytes) -> None:  # noqa: N802
        if any(blit.reads is self and blit.committed and not blit.completed for blit in self.world.blits):
            self.world.torn += 1  # overwritten while the GPU copies it out
        self.pixels = np.asarray(data, np.uint8).reshape(-1).copy()


class FakeCommandBuffer:
    def __init__(self, world) -> None:
        self.reads = None
        self.committed = self.completed = False
        world.blits.append(self)

    def commit(self) -> None:
        self.committed = True

    def commitAndWaitUntilSubmitted(self) -> None:  # noqa: N802
        self.committed = True

    def waitUntilCompleted(self) -> None:  # noqa: N802
        self.completed = True


class FakeWorld:
    """One Mac: servers that announced, the shared directory's list, blits in flight."""

    def __init__(self) -> None:
        self.pending: list = []  # announce notifications not delivered yet
        self.listed: list = []  # SyphonServerDirectory.sharedDirectory().servers()
        self.blits: list[FakeCommandBuffer] = []
        self.torn = 0
        self.published: list[FakeTexture] = []
        self.stopped: list[str] = []
        world = self

        class SyphonServerDirectory:
            def __init__(self) -> None:
                self.run_loop_interval = 1.0

            def update_run_loop(self) -> None:
                if threading.current_thread() is threading.main_thread():  # distributed notifications
                    world.listed += world.pending
                    world.pending = []

            @property
            def servers(self) -> list:
                self.update_run_loop()
                return list(world.listed)

            def servers_matching_name(self, name=None, app_name=None) -> list:
                return [s for s in self.servers if s.name == name or s.app_name == app_name]

        class SyphonMetalClient:
            def __init__(self, description) -> None:
                self.description = description
                self.is_valid = True
                self.has_new_frame = True

            @property
            def new_frame_image(self) -> FakeTexture:
                return self.description.texture

            def stop(self) -> None:
                world.stopped.append(self.description.name)

        class SyphonMetalServer:
            def __init__(self, name: str) -> None:
                self.name = name
                self.device = SimpleNamespace(
                    newTextureWithDescriptor_=lambda d: FakeTexture(world, d.width, d.height, d.format))
                self.command_queue = SimpleNamespace(commandBuffer=lambda: FakeCommandBuffer(world))

            def publish_frame_texture(self, texture, region=None, size=None, is_flipped=False,
                                      command_buffer=None, auto_commit=True) -> None:
                if command_buffer is None:
                    command_buffer = self.command_queue.commandBuffer()
                command_buffer.reads = texture
                world.published.append(texture)
                if auto_commit:
                    command_buffer.commitAndWaitUntilSubmitted()

            def stop(self) -> None:
                world.stopped.append(self.name)

        self.module = SimpleNamespace(SyphonServerDirectory=SyphonServerDirectory,
                                      SyphonMetalClient=SyphonMetalClient, SyphonMetalServer=SyphonMetalServer)
        self.metal = SimpleNamespace(
            MTLRegionMake2D=lambda x, y, w, h: (x, y, w, h),
            MTLTextureDescriptor=SimpleNamespace(
                texture2DDescriptorWithPixelFormat_width_height_mipmapped_=lambda f, w, h, m: SimpleNamespace(
                    format=f, width=w, height=h)))

    def announce(self, name: str, app_name: str, rgb: np.ndarray) -> None:
        """A server starts (TouchDesigner's Syphon Spout Out TOP) with one BGRA frame up."""
        texture = FakeTexture(self, rgb.shape[1], rgb.shape[0], syphon.MTL_PIXEL_FORMAT_BGRA8)
        bgra = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
        texture.pixels = bgra.reshape(-1).copy()
        self.pending.append(SimpleNamespace(name=name, app_name=app_name, texture=texture))


@pytest.fixture
def world(monkeypatch) -> FakeWorld:
    fake = FakeWorld()
    monkeypatch.setattr(syphon, "_syphon", lambda bridge: fake.module)
    monkeypatch.setitem(sys.modules, "Metal", fake.metal)
    monkeypatch.setattr(syphon, "OPEN_DISCOVERY_S", 0.05)
    monkeypatch.setattr(syphon, "RETRY_S", 0.01)
    monkeypatch.setattr(syphon, "_main_pumped_at", float("-inf"))
    return fake


def _image(value: int) -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    image[:, :, 0], image[:, :, 1], image[:, :, 2] = value, 3, 255 - value
    return image


def _read_off_main(source, seconds: float) -> list:
    """Read on another thread (as the engine's source reader does) until a frame or ``seconds``."""
    got: list = []

    def run() -> None:
        deadline = time.monotonic() + seconds
        while not got and time.monotonic() < deadline:
            frame = source.read(0.02)
            if frame is not None:
                got.append(frame)

    reader = threading.Thread(target=run)
    reader.start()
    return got, reader


def test_a_server_up_at_open_is_found_by_a_reader_off_the_main_thread(world):
    world.announce("vacelive_in", "TouchDesigner", _image(40))
    source = open_source("syphon:vacelive_in", width=W, height=H, fps=30)
    source.open()  # main thread, as Engine.start: delivers the pending announcements
    try:
        got, reader = _read_off_main(source, 5.0)
        reader.join(10)
        assert got and np.array_equal(got[0], _image(40))
        assert source.state is BridgeState.LIVE
        assert source.visible() == ["TouchDesigner: vacelive_in"]
    finally:
        source.close()
    assert syphon._open_directories == []


def test_a_later_server_is_found_off_the_main_thread_while_the_main_thread_pumps(world):
    source = open_source("syphon:vacelive_in", width=W, height=H, fps=30)
    source.open()
    try:
        assert source.state is BridgeState.CONNECTING
        got, reader = _read_off_main(source, 5.0)
        world.announce("vacelive_in", "TouchDesigner", _image(90))  # TouchDesigner starts after the engine
        while reader.is_alive():  # the main thread's idle loop
            assert syphon.pump_main_run_loop(0.01)
        assert got and np.array_equal(got[0], _image(90))
    finally:
        source.close()


def test_without_a_main_pump_a_later_server_is_not_seen_off_main_and_that_is_said(world, caplog):
    source = open_source("syphon:", width=W, height=H, fps=30)
    source.open()
    try:
        world.announce("out", "Resolume", _image(5))
        with caplog.at_level(logging.WARNING, logger="vacelive.bridges.syphon"):
            got, reader = _read_off_main(source, 0.3)
            reader.join(10)
        assert not got and world.listed == []
        assert "start the Syphon sender before the engine" in caplog.text
        frame = None
        for _ in range(50):  # the same source read on the main thread delivers the notification
            frame = source.read(0.02)
            if frame is not None:
                break
        assert np.array_equal(frame, _image(5))
    finally:
        source.close()


def test_pump_main_run_loop_does_nothing_off_main_or_without_a_source(world):
    assert syphon.pump_main_run_loop(0.01) is False  # no Syphon source open
    source = open_source("syphon:x", width=W, height=H, fps=30)
    source.open()
    try:
        off_main: list = []
        thread = threading.Thread(target=lambda: off_main.append(syphon.pump_main_run_loop(0.01)))
        thread.start()
        thread.join(10)
        assert off_main == [False]
        assert syphon.pump_main_run_loop(0.01) is True
    finally:
        source.close()
    assert syphon.pump_main_run_loop(0.01) is False


def test_sink_fills_two_textures_in_turn_and_never_overwrites_one_being_copied(world):
    sink = open_sink("syphon:vacelive_out")
    sink.open(W, H, 24.0)
    frames = [_image(v) for v in (10, 20, 30, 40, 50)]
    for frame in frames:
        sink.write(frame)
    assert world.torn == 0
    first, second = world.published[:2]
    assert first is not second and world.published == [first, second] * 2 + [first]
    assert all(blit.committed for blit in world.blits)
    expected = np.dstack([frames[-1], np.full((H, W), 255, np.uint8)]).reshape(-1)
    assert np.array_equal(first.pixels, expected)
    sink.close()
    assert all(blit.completed for blit in world.blits) and world.stopped == ["vacelive_out"]
    assert sink.state is BridgeState.CLOSED
    sink.close()
    with pytest.raises(BridgeError, match="before open"):
        sink.write(frames[0])
