"""The HTTP side of an embed or score model: its tokenizer, and ``RemotePoolingEngine``, the ``PoolingClient`` of
its engine process (``app/engine/process/pooling.py``).

``RemotePoolingEngine`` is a ``RemoteEngine`` (the same spawn, pipe, health and shutdown) that sends ``Pool``
messages and reads ``Pooled`` ones: each API request's inputs go down in one message, and each result comes back
into the future its request awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from app.engine.client.admission import admit_pooling
from app.engine.client.remote import RemoteEngine
from app.engine.messages import Abort, FromEngine, Pool, Pooled, ProtocolError
from app.engine.types import EngineHealth, GenerationRequest, PoolingRequest, PoolingResult
from app.errors import EngineFailure, HfServeError, InvalidRequest, ServiceUnavailable


class PoolingTokenizer:
    """A ``PairTokenizer`` (and the ``decode`` every renderer has) over a transformers tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def encode(self, text: str, *, max_length: int | None = None) -> list[int]:
        cut = {"truncation": True, "max_length": max_length} if max_length else {}
        return list(self._tokenizer(text, add_special_tokens=True, **cut)["input_ids"])

    def encode_pair(
        self, first: str, second: str, *, max_length: int | None = None
    ) -> tuple[list[int], list[int] | None]:
        cut = {"truncation": True, "max_length": max_length} if max_length else {}
        encoded = self._tokenizer(first, second, add_special_tokens=True, **cut)
        types = encoded.get("token_type_ids")
        return list(encoded["input_ids"]), list(types) if types is not None else None

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))


class RemotePoolingEngine(RemoteEngine):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._futures: dict[str, asyncio.Future[PoolingResult]] = {}
        self._calls = 0  # API requests with inputs in the engine: its waiting line, for admission
        self._held = 0  # inputs the engine holds, as its last message said

    def generate(self, request: GenerationRequest) -> Any:
        raise InvalidRequest(
            f"`{self.info.name}` is a {self.info.task} model; it does not generate text.", param="model"
        )

    async def pool(self, requests: Sequence[PoolingRequest]) -> list[PoolingResult]:
        self.check_serving()
        admit_pooling(requests, vocab_size=self.info.vocab_size or 0, limits=self._limits, waiting=self._calls)
        loop = asyncio.get_running_loop()
        self._attach(loop)
        futures = [loop.create_future() for _ in requests]
        self._futures.update((r.request_id, f) for r, f in zip(requests, futures, strict=True))
        self._calls += 1
        try:
            self._send(Pool(list(requests)))
            return list(await asyncio.gather(*futures))
        finally:
            self._calls -= 1
            for request, future in zip(requests, futures, strict=True):
                self._futures.pop(request.request_id, None)
                if not future.done():  # the client went away: the engine skips what has not run
                    future.cancel()
                    self.abort(request.request_id)

    def abort(self, request_id: str) -> None:
        if self._failure is None:
            with contextlib.suppress(OSError, ValueError):
                self._send(Abort(request_id))

    def health(self) -> EngineHealth:
        health = super().health()
        return EngineHealth(health.alive, running=self._held, waiting=0, detail=health.detail)

    def _on_readable(self) -> None:
        try:
            while self._conn.poll():
                message: FromEngine = self._conn.recv()
                if not isinstance(message, Pooled):
                    raise ProtocolError(message)
                self._held = message.running
                for result in message.results:
                    future = self._futures.pop(result.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(result)
        except (EOFError, OSError):
            self._ended("the inference process exited")
        except ProtocolError as exc:
            self._process.kill()
            self._ended(str(exc))

    def _close_pipe(self, reason: str) -> None:
        super()._close_pipe(reason)
        failure: HfServeError = EngineFailure(f"The inference process has stopped: {reason}")
        if self._stopping:
            failure = ServiceUnavailable("The model stopped serving (shutting down or unloading); retry.")
        for future in self._futures.values():
            if not future.done():
                future.set_exception(failure)
        self._futures.clear()
