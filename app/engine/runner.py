"""The inference thread of one model.

Generation runs on a dedicated thread per model (CUDA graphs and caches keep thread-local state);
the event loop only enqueues work and receives events through ``call_soon_threadsafe``. Requests are
decoded one after another here; a request is checked for abort after every token, so a client that
goes away frees the model within one step.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import structlog
import torch
from transformers import DynamicCache

from app.engine.detokenizer import TextAssembler
from app.engine.sampler import RequestSampler
from app.engine.types import EngineEvent, EngineHealth, FinishEvent, FinishReason, GenerationRequest, TokenEvent
from app.errors import EngineFailure, Overloaded

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Work:
    request: GenerationRequest
    emit: Callable[[EngineEvent], None]


class ThreadedEngine:
    """An ``EngineClient`` that runs one request at a time on the model's own thread."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str, max_queue: int) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self._max_queue = max_queue
        self._inbox: queue.Queue[_Work | None] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self._aborted: set[str] = set()
        self._running = 0
        self._failure: str | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"engine[{name}]", daemon=True)
        self._thread.start()

    # -- EngineClient ------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> AsyncIterator[EngineEvent]:
        if self._stopping or not self._thread.is_alive():
            raise EngineFailure(f"The inference loop has stopped: {self._failure or 'shut down'}")
        if self._inbox.qsize() >= self._max_queue:
            raise Overloaded("Too many requests are waiting for this model; retry shortly.")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()
        with self._lock:
            self._live.add(request.request_id)
        self._inbox.put(_Work(request, lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev)))
        finished = False
        try:
            while not finished:
                event = await events.get()
                finished = isinstance(event, FinishEvent)
                yield event
        finally:
            if not finished:
                self.abort(request.request_id)

    def abort(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._live:
                self._aborted.add(request_id)

    def health(self) -> EngineHealth:
        alive = self._thread.is_alive()
        return EngineHealth(alive=alive, running=self._running, waiting=self._inbox.qsize(), detail=self._failure)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the loop: the running request and every queued one finish as aborted."""
        with self._lock:
            self._stopping = True
            self._aborted.update(self._live)
        self._inbox.put(None)
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while (work := self._inbox.get()) is not None:
                self._running = 1
                try:
                    self._serve(work)
                finally:
                    self._running = 0
                    with self._lock:
                        self._live.discard(work.request.request_id)
                        self._aborted.discard(work.request.request_id)
        except BaseException as exc:  # the loop itself died: health turns false
            self._failure = repr(exc)
            log.exception("engine_loop_died", error=self._failure)
        finally:
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                work = self._inbox.get_nowait()
            except queue.Empty:
                return
            if work is not None:
                req = work.request
                work.emit(FinishEvent(req.request_id, "abort", len(req.prompt_ids), 0, error="engine stopped"))

    def _is_aborted(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._aborted

    def _serve(self, work: _Work) -> None:
        req = work.request
        if self._is_aborted(req.request_id):
            work.emit(FinishEvent(req.request_id, "abort", len(req.prompt_ids), 0))
            return
        try:
            with torch.inference_mode():
                self._decode(work)
        except Exception as exc:  # one failing request must not take the loop down
            log.exception("request_failed_in_engine", request_id=req.request_id)
            work.emit(FinishEvent(req.request_id, "error", len(req.prompt_ids), 0, error=str(exc)))

    def _forward(self, ids: list[int], cache: DynamicCache) -> torch.Tensor:
        input_ids = torch.tensor([ids], dtype=torch.long, device=self._model.device)
        out = self._model(input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1]

    def _decode(self, work: _Work) -> None:
        req, params = work.request, work.request.params
        device = self._model.device
        sampler = RequestSampler(params, req.prompt_ids, self._vocab_size, device)
        text = TextAssembler(self._tokenizer, params.stop)
        stop_ids = frozenset(params.stop_token_ids)
        cache = DynamicCache(config=self._model.config)
        logits = self._forward(list(req.prompt_ids), cache)
        produced = 0
        reason: FinishReason = "length"
        while produced < params.max_tokens:
            token = sampler.sample(logits)
            sampler.observe(token)
            produced += 1
            if token in stop_ids:
                reason = "stop"
                break
            piece, stopped = text.add(token)
            work.emit(TokenEvent(req.request_id, token, piece))
            if stopped:
                reason = "stop"
                break
            if self._is_aborted(req.request_id):
                reason = "abort"
                break
            if produced < params.max_tokens:
                logits = self._forward([token], cache)
        tail = text.finish()  # held-back text that did not turn into a stop string
        if reason == "abort":
            log.info("engine_request_aborted", request_id=req.request_id, completion_tokens=produced)
        work.emit(FinishEvent(req.request_id, reason, len(req.prompt_ids), produced, text=tail))
