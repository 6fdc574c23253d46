"""The model registry: the load state machine, shared loads, leases and idle unloading.

States per ``id@revision``: absent → loading(processor → config → download → weights) → ready →
unloading → absent, or loading → failed. Everything here runs on the event loop; the blocking load
runs in a worker thread and reports progress back with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

import structlog

from app.engine.client.heap import freeze_heap
from app.engine.client.loader import LoadedModel, load_model
from app.engine.options import LoadOptions
from app.engine.types import ServingModel
from app.errors import HfServeError, ModelLoadFailed, ModelNotAllowed, ServiceUnavailable
from app.models.ids import ModelRef, parse_model_ref, parse_requested_ref
from app.models.observed import observe
from app.observability.telemetry import Telemetry, phase

log = structlog.get_logger(__name__)
Loader = Callable[..., LoadedModel]
_PROGRESS_INTERVAL = 0.2  # seconds between progress events of one stage


class ModelState(StrEnum):
    ABSENT = "absent"
    LOADING = "loading"
    READY = "ready"
    UNLOADING = "unloading"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LoadUpdate:
    status: str  # loading | ready | error
    model: str
    stage: str | None = None
    current: int | None = None
    total: int | None = None
    has_progress: bool = False
    cached: bool | None = None
    message: str | None = None


@dataclass(eq=False)
class _Entry:
    ref: ModelRef
    pinned: bool
    state: ModelState = ModelState.ABSENT
    last: LoadUpdate | None = None
    last_emit: float = 0.0
    error: HfServeError | None = None
    task: asyncio.Task[None] | None = None
    loaded: LoadedModel | None = None
    serving: ServingModel | None = None  # what requests get: ``loaded.serving``, observed
    subscribers: set[asyncio.Queue[LoadUpdate]] = field(default_factory=set)
    active: int = 0
    last_used: float = 0.0
    unloaded: asyncio.Event = field(default_factory=asyncio.Event)
    recovering: bool = False  # replacing an engine that died: requests get a 503 meanwhile, they do not wait


class ModelRegistry:
    def __init__(
        self,
        options: LoadOptions,
        *,
        idle_timeout: float = 300,
        pinned: str | None = None,
        loader: Loader = load_model,
        telemetry: Telemetry | None = None,
        allowed_local_paths: Sequence[str] = (),
    ) -> None:
        """``allowed_local_paths``: the directories below which a request may name a local model
        (``--allowed-local-model-path``); the pinned model may be any directory."""
        self._options = options
        self._allowed_local_paths = tuple(allowed_local_paths)
        self._telemetry = telemetry or Telemetry(metrics=False)
        self._idle_timeout = idle_timeout
        self._loader = loader
        self._pinned = parse_model_ref(pinned) if pinned else None
        self._pinned_names = {pinned.strip(), self._pinned.name, self._pinned.source} if self._pinned else set()
        self._entries: dict[str, _Entry] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # replacements of dead engines
        self.draining = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._pinned is not None:
            self._ensure_loading(self._pinned)
        self._reaper = asyncio.create_task(self._watch_loaded())

    def start_draining(self) -> None:
        """Stop being ready and refuse new leases (503); leases already held run to their end."""
        self.draining = True

    async def close(self) -> None:
        self.draining = True
        if self._reaper:
            self._reaper.cancel()
        for task in list(self._background):
            with suppress(BaseException):
                await asyncio.wait_for(task, timeout=10)
        for entry in list(self._entries.values()):
            if entry.task and not entry.task.done():
                with suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(entry.task), timeout=5)
            if entry.loaded is not None:
                await asyncio.to_thread(entry.loaded.close)
        self._entries.clear()

    # -- lookups -------------------------------------------------------------------------------
    @property
    def pinned(self) -> ModelRef | None:
        return self._pinned

    def resolve(self, requested: str | None) -> ModelRef:
        """The model a request addresses (the pinned one when it names none). Errors echo only the
        request's own text."""
        if self._pinned is None:
            if not requested:
                raise ModelNotAllowed("`model` is required: this server is not pinned to a model.", param="model")
            return parse_requested_ref(requested, self._allowed_local_paths)
        if requested and not self._names_pinned(requested.strip()):
            raise ModelNotAllowed(
                f"This server serves only `{self._pinned.name}`; it cannot serve `{requested.strip()}`.",
                param="model",
            )
        return self._pinned

    def _names_pinned(self, requested: str) -> bool:
        if requested in self._pinned_names or os.path.normpath(requested) in self._pinned_names:
            return True
        try:
            return parse_requested_ref(requested, self._allowed_local_paths) == self._pinned
        except HfServeError:
            return False

    def state(self, ref: ModelRef) -> ModelState:
        entry = self._entries.get(ref.name)
        return entry.state if entry else ModelState.ABSENT

    def loaded_names(self) -> list[str]:
        return [name for name, e in self._entries.items() if e.state == ModelState.READY]

    def loaded_tasks(self) -> dict[str, str]:
        """The task each loaded model serves (text-generation, embed, score, ...), by name."""
        return {name: e.serving.info.task for name, e in self._entries.items() if e.serving is not None}

    def engine_load(self) -> dict[str, dict[str, float]]:
        """Running rows, waiting requests, KV-cache use (0-1), capacity and blocks (used, total; 0 when not paged), and
        the paged cache's counters (prefix-cache queries and hits in tokens, preemptions) of every loaded model."""
        load = {}
        for name, entry in self._entries.items():
            if entry.loaded is not None and entry.state == ModelState.READY:
                health = entry.loaded.engine.health()
                load[name] = {
                    "running": health.running,
                    "waiting": health.waiting,
                    "kv_usage": health.kv_usage,
                    "kv_capacity": health.kv_capacity,
                    "kv_blocks_used": health.kv_blocks_used,
                    "kv_blocks_total": health.kv_blocks_total,
                    "prefix_cache_queries": health.prefix_cache_queries,
                    "prefix_cache_hits": health.prefix_cache_hits,
                    "preemptions": health.preemptions,
                    "kv_live_tokens": health.kv_live_tokens,
                    "prefix_caching": health.prefix_caching,
                }
        return load

    def engines_alive(self) -> bool:
        return all(e.loaded.engine.health().alive for e in self._entries.values() if e.loaded and e.state == "ready")

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        if self.draining:
            return False, {"status": "draining"}
        if self._pinned is None:
            return True, {"status": "ready", "loaded": self.loaded_names()}
        entry = self._entries.get(self._pinned.name)
        state = entry.state if entry else ModelState.ABSENT
        body: dict[str, Any] = {"status": str(state), "model": self._pinned.name}
        if entry and entry.last and state == ModelState.LOADING:
            body.update(stage=entry.last.stage, progress={"current": entry.last.current, "total": entry.last.total})
        if entry and entry.error and state == ModelState.FAILED:
            body["error"] = entry.error.message
        return state == ModelState.READY, body

    # -- loading -------------------------------------------------------------------------------
    async def load_updates(self, ref: ModelRef) -> AsyncIterator[LoadUpdate]:
        """``/load_model``: the progress of this model's (shared) load, ending ready or error."""
        entry = self._entries.get(ref.name)
        if entry and entry.state == ModelState.READY:
            yield LoadUpdate("ready", ref.name, cached=True)
            return
        if entry and entry.state == ModelState.UNLOADING:
            await entry.unloaded.wait()  # then load it again
        entry = self._ensure_loading(ref)
        updates: asyncio.Queue[LoadUpdate] = asyncio.Queue()
        entry.subscribers.add(updates)
        try:
            if entry.last is not None:  # joined a load already under way
                yield entry.last
            while True:
                update = await updates.get()
                yield update
                if update.status != "loading":
                    return
        finally:
            entry.subscribers.discard(updates)

    @asynccontextmanager
    async def lease(self, ref: ModelRef) -> AsyncIterator[ServingModel]:
        """Hold a ready model for one request: waits for its load; it never unloads meanwhile."""
        if self.draining:
            raise ServiceUnavailable("The server is shutting down.")
        while True:
            entry = self._entries.get(ref.name)
            if entry is None or entry.state in (ModelState.ABSENT, ModelState.FAILED):
                entry = self._ensure_loading(ref)
            if entry.state == ModelState.LOADING and entry.recovering:
                raise ServiceUnavailable(
                    f"`{ref.name}` is reloading after its inference process stopped: retry shortly.", retry_after=5
                )
            if entry.state == ModelState.UNLOADING and entry.recovering:
                raise ServiceUnavailable(
                    f"`{ref.name}` is being replaced after its inference process stopped: retry shortly.",
                    retry_after=5,
                )
            if entry.state == ModelState.LOADING and entry.task is not None:
                with phase("model.wait", {"hfserve.model": ref.name}):
                    await asyncio.shield(entry.task)
                if entry.state == ModelState.FAILED and entry.error is not None:
                    raise entry.error
            elif entry.state == ModelState.UNLOADING:
                await entry.unloaded.wait()
            elif entry.state == ModelState.READY and entry.serving is not None:
                break
        entry.active += 1
        try:
            yield entry.serving
        finally:
            entry.active -= 1
            entry.last_used = time.monotonic()

    def _ensure_loading(self, ref: ModelRef) -> _Entry:
        entry = self._entries.get(ref.name)
        if entry is not None and entry.state in (ModelState.LOADING, ModelState.READY, ModelState.UNLOADING):
            return entry
        entry = _Entry(ref, pinned=ref == self._pinned, state=ModelState.LOADING)
        self._entries[ref.name] = entry
        entry.task = asyncio.create_task(self._load(entry), name=f"load[{ref.name}]")
        return entry

    async def _load(self, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        name = entry.ref.name

        def progress(stage: str, current: int | None, total: int | None) -> None:  # loader thread
            loop.call_soon_threadsafe(self._on_progress, entry, stage, current, total)

        started = time.monotonic()
        log.info("model_load_started", model=name)
        try:
            entry.loaded = await asyncio.to_thread(
                self._loader, name, entry.ref.source, entry.ref.revision, self._options, progress
            )
        except Exception as exc:
            error = exc if isinstance(exc, HfServeError) else ModelLoadFailed(f"Could not load `{name}`: {exc}")
            entry.state, entry.error = ModelState.FAILED, error
            log.warning("model_load_failed", model=name, error=error.message)
            if not entry.pinned and self._entries.get(name) is entry:
                del self._entries[name]  # any name can fail: only the pinned model's failure is kept (/ready)
            self._publish(entry, LoadUpdate("error", name, message=error.message))
            return
        entry.serving = observe(entry.loaded, self._telemetry)
        entry.state, entry.last_used = ModelState.READY, time.monotonic()
        entry.loaded.engine.watch_exit(partial(self._engine_exited, entry))
        seconds = time.monotonic() - started
        if self._telemetry.metrics is not None:
            self._telemetry.metrics.model_load.labels(name).observe(seconds)
        log.info("model_load_finished", model=name, seconds=round(seconds, 3))
        freeze_heap("model_loaded")
        self._publish(entry, LoadUpdate("ready", name, cached=False))

    def _on_progress(self, entry: _Entry, stage: str, current: int | None, total: int | None) -> None:
        now = time.monotonic()
        same_stage = entry.last is not None and entry.last.stage == stage
        finished = current is not None and current == total
        if same_stage and not finished and now - entry.last_emit < _PROGRESS_INTERVAL:
            return
        if same_stage and entry.last is not None and (entry.last.current, entry.last.total) == (current, total):
            return
        entry.last_emit = now
        has_progress = stage in ("download", "weights")
        self._publish(entry, LoadUpdate("loading", entry.ref.name, stage, current, total, has_progress))

    def _publish(self, entry: _Entry, update: LoadUpdate) -> None:
        entry.last = update if update.status == "loading" else None
        for queue in entry.subscribers:
            queue.put_nowait(update)

    # -- a dead engine, idle unloading ---------------------------------------------------------
    def _engine_exited(self, entry: _Entry) -> None:
        """The moment an engine process ends (its sentinel): the model stops being ready at once, and is
        replaced (a pinned model reloads at once; requests meanwhile get a 503 with ``Retry-After``)."""
        if entry.state != ModelState.READY or self._entries.get(entry.ref.name) is not entry:
            return
        detail = entry.loaded.engine.health().detail if entry.loaded else None
        log.error("engine_dead", model=entry.ref.name, detail=detail)
        entry.state, entry.recovering = ModelState.UNLOADING, True
        self._background.add(task := asyncio.create_task(self._replace(entry), name=f"replace[{entry.ref.name}]"))
        task.add_done_callback(self._background.discard)

    async def _replace(self, entry: _Entry) -> None:
        await self._unload(entry)
        if entry.pinned and not self.draining:
            self._ensure_loading(entry.ref).recovering = True

    async def _watch_loaded(self) -> None:
        """Unloads idle models (``--model-timeout``)."""
        interval = min(max(self._idle_timeout / 4, 0.25), 5.0) if self._idle_timeout >= 0 else 5.0
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for entry in list(self._entries.values()):
                if entry.state != ModelState.READY or entry.loaded is None:
                    continue
                health = entry.loaded.engine.health()
                if entry.active or health.running or health.waiting:  # in use: idle time starts after it
                    entry.last_used = now
                elif not entry.pinned and 0 <= self._idle_timeout <= now - entry.last_used:
                    await self._unload(entry)

    async def _unload(self, entry: _Entry) -> None:
        entry.state = ModelState.UNLOADING
        log.info("model_unloading", model=entry.ref.name)
        loaded, entry.loaded, entry.serving = entry.loaded, None, None
        try:
            if loaded is not None:
                await asyncio.to_thread(loaded.close)
        finally:
            entry.state = ModelState.ABSENT
            self._entries.pop(entry.ref.name, None)
            entry.unloaded.set()
            log.info("model_unloaded", model=entry.ref.name)
            freeze_heap("model_unloaded")  # what only that model held can be collected now
