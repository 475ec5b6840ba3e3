"""Live reload: new generator, size, source or sinks while the output keeps its clock."""

from __future__ import annotations

import time
import weakref

import numpy as np
import pytest

from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator
from vacelive.engine.app import resolve_model_defaults
from vacelive.engine.loop import Engine
from vacelive.engine.reload import Builders, Reloader
from vacelive.engine.state import ParamStore
from tests.waiting import wait_for

FPS = 20.0
PERIOD = 1.0 / FPS


class Marked(ScriptedGenerator):
    """A generator whose frames all hold one value, to tell which generator made them."""

    def __init__(self, width: int, height: int, value: int) -> None:
        super().__init__(width, height)
        self.value = value

    def generate(self, chunk):
        super().generate(chunk)
        return np.full((12, self.height, self.width, 3), self.value, dtype=np.uint8)


def _store() -> ParamStore:
    store = ParamStore()
    for name, value in (("width", 64), ("height", 64), ("fps", FPS), ("sink", ["recording"])):
        store.set(name, value, live=False)
    return store


class Rig:
    """An engine publishing to recording sinks, with a reloader whose builders the test controls."""

    def __init__(self, build_generator, sinks_made: list[RecordingSink] | None = None) -> None:
        self.store = _store()
        self.sink = RecordingSink()
        self.first = Marked(64, 64, 10)
        self.engine = Engine(self.store, self.first, CountingSource(64, 64, 100.0), [self.sink],
                             make_annotator=lambda n: None, make_mask_source=lambda n: None)
        self.sinks_made = sinks_made if sinks_made is not None else []

        def make_sink(spec: str) -> RecordingSink:
            sink = RecordingSink()
            sink.name = spec
            self.sinks_made.append(sink)
            return sink

        self.reloader = Reloader(self.store, self.engine, Builders(
            generator=build_generator, source=lambda store: CountingSource(64, 64, 100.0), sink=make_sink,
            annotators=lambda store: (lambda n: None, lambda n: None), resolve=resolve_model_defaults))


@pytest.fixture
def rig_factory():
    rigs = []

    def make(build_generator, **kwargs) -> Rig:
        rig = Rig(build_generator, **kwargs)
        rigs.append(rig)
        rig.engine.start()
        assert wait_for(lambda: any(f[0, 0, 0] == 10 for f in rig.sink.frames[-3:]), 30)
        return rig

    yield make
    for rig in rigs:
        assert rig.engine.stop() == []


def test_a_slow_generator_load_does_not_interrupt_the_clock(rig_factory):
    def slow_build(store):
        time.sleep(1.5)  # loading weights
        return Marked(store.get("width"), store.get("height"), 20)

    rig = rig_factory(slow_build)
    rig.store.set("steps", 2)
    rig.store.set("dtype", "fp32")  # reload-time: pending until /vacelive/reload
    assert rig.store.get("dtype") == "auto" and rig.store.pending == {"dtype": "fp32"}
    reload_started = time.monotonic()
    rig.store.set("reload", True)
    assert rig.reloader.wait(30) and rig.engine.metrics.reload_state.startswith("done: dtype")
    assert rig.store.get("dtype") == "fp32" and rig.store.pending == {}
    assert wait_for(lambda: any(f[0, 0, 0] == 20 for f in rig.sink.frames[-3:]), 30), "the new generator never published"
    times = np.array(rig.sink.times)
    during = np.diff(times[(times > reload_started) & (times < reload_started + 1.6)])
    assert len(during) >= 1.2 * FPS  # frames kept coming while the new generator loaded
    assert during.max() < 2 * PERIOD, f"largest gap {during.max() * 1000:.0f} ms"


def test_a_failing_load_leaves_the_old_generator_producing(rig_factory):
    def failing_build(store):
        raise FileNotFoundError("weights role 'dit': file 'x.safetensors' not found in w")

    rig = rig_factory(failing_build)
    rig.store.set("model", "1.3B")
    rig.store.set("reload", True)
    assert rig.reloader.wait(30)
    assert rig.engine.metrics.reload_state.startswith("reload of model failed, the running one goes on")
    assert "x.safetensors" in rig.engine.metrics.last_error
    assert rig.store.get("model") == "tiny" and rig.store.pending == {}
    chunks = len(rig.first.chunks)
    assert wait_for(lambda: len(rig.first.chunks) > chunks + 1, 30)  # the old generator goes on
    assert rig.engine.generator_stage.generator is rig.first


def test_a_new_size_reopens_the_sinks_and_frees_the_old_generator(rig_factory):
    made: list[RecordingSink] = []
    rig = rig_factory(lambda store: Marked(store.get("width"), store.get("height"), 30), sinks_made=made)
    old = weakref.ref(rig.first)
    rig.first = None
    rig.store.set("width", 128)
    rig.store.set("height", 96)
    rig.store.set("reload", True)
    assert rig.reloader.wait(30) and rig.engine.metrics.reload_state.startswith("done")
    assert rig.sink.closed  # the old writer flushed and closed it before the reopen
    assert [s.opened_with for s in made] == [(128, 96, FPS)]
    assert wait_for(lambda: any(f[0, 0, 0] == 30 for f in made[0].frames[-3:]), 30)
    assert all(f.shape == (96, 128, 3) for f in made[0].frames)  # never a frame of the old size
    assert (rig.engine.width, rig.engine.height) == (128, 96)
    assert old() is None  # nothing holds the old generator (its GPU memory can go)


def test_new_sinks_and_a_new_source_come_in_and_the_removed_sink_closes(rig_factory):
    made: list[RecordingSink] = []
    rig = rig_factory(lambda store: Marked(64, 64, 40), sinks_made=made)
    rig.store.set("sink", ["recording", "second"])
    rig.store.set("source", "testpattern")
    rig.store.set("reload", True)
    assert rig.reloader.wait(30)
    assert [s.name for s in made] == ["second"] and not rig.sink.closed  # kept, not reopened
    assert wait_for(lambda: len(made[0].frames) > 5 and len(rig.sink.frames) > 5, 30)
    rig.store.set("sink", ["second"])
    rig.store.set("reload", True)
    assert rig.reloader.wait(30)
    assert rig.sink.closed and not made[0].closed
    assert rig.store.get("sink") == ["second"] and rig.store.get("source") == "testpattern"
