"""The load state machine with the real loader on tiny local models."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from app.engine.client.loader import LoadedModel, load_model
from app.engine.options import LoadOptions
from app.engine.types import FinishEvent, GenerationRequest, SamplingParams
from app.errors import ModelNotAllowed, ModelNotFound, ServiceUnavailable
from app.models.ids import parse_model_ref
from app.models.registry import ModelRegistry, ModelState
from tests.fixtures.tiny_models import NEVER_EOS_MODEL_ID
from tests.support.models import snapshot_path


class GatedLoader:
    """The real loader, counted, and held at its start until the test opens the gate."""

    def __init__(self, *, open_gate: bool = True) -> None:
        self.calls = 0
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()

    def __call__(self, *args: object) -> LoadedModel:
        self.calls += 1
        assert self.gate.wait(30)
        return load_model(*args)  # type: ignore[arg-type]


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.fixture
def model_dir(hf_home: Path) -> str:
    return str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID))


async def test_concurrent_loads_share_one_load(model_dir: str) -> None:
    loader = GatedLoader(open_gate=False)
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, loader=loader)
    await registry.start()
    ref = parse_model_ref(model_dir)

    async def collect() -> list:
        return [update async for update in registry.load_updates(ref)]

    first, second = asyncio.create_task(collect()), asyncio.create_task(collect())
    await until(lambda: loader.calls == 1)
    assert registry.state(ref) == ModelState.LOADING
    waiting_request = asyncio.create_task(registry.lease(ref).__aenter__())
    loader.gate.set()
    a, b = await asyncio.gather(first, second)
    model = await waiting_request
    assert loader.calls == 1
    assert a[-1].status == b[-1].status == "ready" and a[-1].cached is False
    assert [u.stage for u in a if u.status == "loading"][:2] == ["processor", "config"]
    assert model.info.name == ref.name
    assert [u.cached for u in [x async for x in registry.load_updates(ref)]] == [True]
    await registry.close()


async def test_idle_unload_never_happens_mid_request(model_dir: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=0.2)
    await registry.start()
    ref = parse_model_ref(model_dir)
    async with registry.lease(ref) as model:
        await asyncio.sleep(1.0)  # five idle timeouts pass while the request holds the model
        assert registry.state(ref) == ModelState.READY
        request = GenerationRequest("held", [1, 2, 3], SamplingParams(max_tokens=2))
        events = [event async for event in model.engine.generate(request)]
        assert isinstance(events[-1], FinishEvent) and events[-1].completion_tokens == 2
    await until(lambda: registry.state(ref) == ModelState.ABSENT)
    assert registry.loaded_names() == []
    await registry.close()


async def test_failed_load_is_forgotten_unless_pinned(tmp_path: Path) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, pinned="nobody/missing")
    await registry.start()
    await until(lambda: registry.state(registry.pinned) == ModelState.FAILED)
    ready, body = registry.readiness()
    assert not ready and body["status"] == "failed" and "does not exist" in body["error"]

    other = parse_model_ref("nobody/other")
    with pytest.raises(Exception):  # noqa: B017 - pinned registries refuse other models first
        registry.resolve("nobody/other")
    unpinned = ModelRegistry(LoadOptions(), idle_timeout=-1)
    await unpinned.start()
    with pytest.raises(ModelNotFound):
        async with unpinned.lease(other):
            pass
    assert unpinned.state(other) == ModelState.ABSENT
    await registry.close()
    await unpinned.close()


async def test_draining_registry_is_not_ready(model_dir: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1)
    await registry.start()
    assert registry.readiness() == (True, {"status": "ready", "loaded": []})
    await registry.close()
    assert registry.readiness() == (False, {"status": "draining"})


async def test_load_requested_while_unloading_loads_again(model_dir: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1)
    await registry.start()
    ref = parse_model_ref(model_dir)
    assert [u.status async for u in registry.load_updates(ref)][-1] == "ready"
    entry = registry._entries[ref.name]
    unloading = asyncio.create_task(registry._unload(entry))
    await until(lambda: registry.state(ref) == ModelState.UNLOADING)
    updates = await asyncio.wait_for(asyncio.gather(unloading, _collect(registry, ref)), timeout=30)
    assert updates[1][-1].status == "ready" and registry.state(ref) == ModelState.READY
    await registry.close()


async def _collect(registry: ModelRegistry, ref) -> list:
    return [update async for update in registry.load_updates(ref)]


async def test_draining_registry_refuses_new_leases(model_dir: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1)
    await registry.start()
    await registry.close()
    with pytest.raises(ServiceUnavailable):
        async with registry.lease(parse_model_ref(model_dir)):
            pass


async def test_a_dead_engine_is_replaced_and_readiness_says_so_at_once(model_dir: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, pinned=model_dir)
    await registry.start()
    ref = registry.pinned
    await until(lambda: registry.state(ref) == ModelState.READY, timeout=30)
    assert registry.readiness()[0]
    dead = registry._entries[ref.name].loaded
    os.kill(dead.engine._process.pid, signal.SIGKILL)  # the engine process dies
    started = time.monotonic()
    await until(lambda: not registry.readiness()[0], timeout=5)
    # Nothing polls for a dead engine: only its end (its pipe's, or its process sentinel's, whichever comes
    # first) can flip readiness, and the registry's other timer (the idle watcher) ticks every 5 s here. The
    # bound leaves room for a loaded machine.
    assert time.monotonic() - started < 3.0, "readiness must follow the engine's end, not a poll"
    with pytest.raises(ServiceUnavailable) as refused:  # while it is replaced, requests do not wait: 503
        async with registry.lease(ref):
            pass
    assert refused.value.headers == {"Retry-After": "5"}
    await until(
        lambda: registry.state(ref) == ModelState.READY and registry._entries[ref.name].loaded is not dead, timeout=30
    )
    assert registry.engines_alive() and registry.readiness()[0]
    async with registry.lease(ref) as model:  # the replacement serves
        events = [e async for e in model.engine.generate(GenerationRequest("r", [5, 6], SamplingParams(max_tokens=2)))]
        assert isinstance(events[-1], FinishEvent) and events[-1].reason == "length"
    await registry.close()


async def test_a_shut_down_engine_is_not_mistaken_for_a_dead_one(model_dir: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=0.5)
    await registry.start()
    ref = parse_model_ref(model_dir)
    assert [u.status async for u in registry.load_updates(ref)][-1] == "ready"
    await until(lambda: registry.state(ref) == ModelState.ABSENT, timeout=10)  # an idle unload stops the process
    await asyncio.sleep(0.2)
    assert registry.state(ref) == ModelState.ABSENT and not registry._background
    await registry.close()


def test_a_pinned_registry_refuses_other_names_echoing_only_the_clients_text(tmp_path: Path) -> None:
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, pinned=str(pinned))
    for same in (str(pinned), f"{pinned}/", f"{tmp_path}/./pinned", None, ""):
        assert registry.resolve(same) == registry.pinned
    for other in ("~", "/proc/self/cwd", str(tmp_path), "org/name"):
        with pytest.raises(ModelNotAllowed) as caught:
            registry.resolve(other)
        assert caught.value.message.endswith(f"it cannot serve `{other}`.")
        assert os.path.expanduser("~") not in caught.value.message.replace(str(pinned), "")
        assert os.getcwd() not in caught.value.message.replace(str(pinned), "")


def test_an_unpinned_registry_takes_local_directories_only_below_the_allowed_paths(tmp_path: Path) -> None:
    model = tmp_path / "models" / "tiny"
    model.mkdir(parents=True)
    allowed = ModelRegistry(LoadOptions(), idle_timeout=-1, allowed_local_paths=[str(model.parent)])
    assert allowed.resolve(str(model)).source == str(model)
    closed = ModelRegistry(LoadOptions(), idle_timeout=-1)
    messages = set()
    for text in (str(model), "~", "/proc/self/cwd", str(tmp_path), str(tmp_path / "missing"), "./models"):
        with pytest.raises(ModelNotFound) as caught:
            closed.resolve(text)
        messages.add(caught.value.message.replace(text, "<model>"))
    assert len(messages) == 1
