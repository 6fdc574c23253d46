"""Who runs next: the waiting line, the long prompt being prefilled chunk by chunk, and which newcomers
are prefilled in a step (within the step's token budget, the batch's rows and the KV budget).

It owns no tensors and runs no model: the batched engine asks it, then has the model runner do the work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from app.engine.options import BatchLimits
from app.engine.process.rows import EngineRequest


class Scheduler:
    def __init__(self, limits: BatchLimits, max_rows: int) -> None:
        self._limits = limits
        self.max_rows = max_rows
        self._waiting: deque[EngineRequest] = deque()
        self.chunked: EngineRequest | None = None  # the long prompt being prefilled, one chunk per step

    @property
    def pending(self) -> bool:
        """Requests are waiting or being prefilled."""
        return bool(self._waiting) or self.chunked is not None

    def add(self, request: EngineRequest) -> None:
        self._waiting.append(request)

    def withdraw(self, request_ids: Collection[str]) -> list[EngineRequest]:
        """Take these requests out of the waiting line and out of chunked prefill (they were aborted)."""
        gone = [r for r in self._waiting if r.id in request_ids]
        for request in gone:
            self._waiting.remove(request)
        if self.chunked is not None and self.chunked.id in request_ids:
            gone.append(self.chunked)
            self.chunked = None
        return gone

    def drain(self) -> list[EngineRequest]:
        """Everything not yet running (the loop is ending)."""
        pending = list(self._waiting) + ([self.chunked] if self.chunked else [])
        self._waiting.clear()
        self.chunked = None
        return pending

    def next_chunk(self, budget: int) -> list[int]:
        """The next piece of the chunked prompt that fits in ``budget`` tokens."""
        assert self.chunked is not None
        return self.chunked.prompt[self.chunked.done : self.chunked.done + budget]

    def chunk_prefilled(self, tokens: int, running: int) -> EngineRequest | None:
        """The chunked prompt advanced by ``tokens``: the request when it is whole and its rows fit the batch.
        A whole prompt that no longer fits (the batch filled up meanwhile) goes back to the front of the line,
        to be prefilled again later."""
        request = self.chunked
        assert request is not None
        request.done += tokens
        if request.done < len(request.prompt):
            return None
        self.chunked = None
        if running + request.open <= self.max_rows:
            return request
        request.done = 0
        self._waiting.appendleft(request)
        return None

    def chunk_failed(self) -> EngineRequest:
        request, self.chunked = self.chunked, None
        assert request is not None
        return request

    def pick(self, budget: int, running: int, width: int) -> list[EngineRequest]:
        """Newcomers to prefill together in this step, in arrival order. A prompt longer than the budget that
        comes first becomes ``chunked`` instead (the caller prefills its first chunk); a request with media is
        prefilled alone and whole (placeholders and features meet in one forward)."""
        picked: list[EngineRequest] = []
        rows = running
        while self._waiting and self.chunked is None:
            request = self._waiting[0]
            if rows + request.open > self.max_rows or not self._kv_fits(running, rows + request.open, width, request):
                break
            if request.request.inputs:
                if not picked:
                    picked.append(self._waiting.popleft())
                break
            if len(request.prompt) > budget:
                if not picked and budget > 0:
                    self.chunked = self._waiting.popleft()
                break
            picked.append(self._waiting.popleft())
            budget -= len(request.prompt)
            rows += request.open
            width = max(width, len(request.prompt))
        return picked

    def _kv_fits(self, running: int, rows: int, width: int, request: EngineRequest) -> bool:
        """Within the KV budget, or alone (admission refuses requests that cannot fit even alone)."""
        budget = self._limits.max_kv_tokens
        return budget is None or running == 0 or rows * max(width, len(request.prompt)) <= budget
