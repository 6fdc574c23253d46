"""The inference thread of one model: iteration-level (continuous) batching.

Every loop iteration (a step): take new requests, drop aborted ones, prefill newcomers within the
step's token budget (several short prompts in one padded forward; a long prompt one chunk per step,
so running decodes never wait for a whole long prefill), then one decode step for every running row,
sampling each row with its own parameters. Requests join and leave between steps.

The event loop only enqueues work (``generate``) and receives each step's events in one
``call_soon_threadsafe``. torch runs on this thread only (CUDA graphs and caches keep thread state).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog
import torch
from transformers import DynamicCache

from app.engine.admission import BatchLimits, check_request
from app.engine.batch import KVBatch, mergeable, prefill, prefill_chunk, repeat_rows
from app.engine.constraints import Grammars
from app.engine.detokenizer import TextAssembler
from app.engine.rows import EngineRequest, Row
from app.engine.sampler import BatchSampler, Draw, SequenceSampling
from app.engine.steps import StepLog
from app.engine.stream import Delivery, RequestStream
from app.engine.types import EngineEvent, EngineHealth, FinishEvent, FinishReason, GenerationRequest, TokenEvent
from app.engine.types import TokenLogprob as Logprob
from app.errors import EngineFailure, Overloaded

log = structlog.get_logger(__name__)


class BatchedEngine:
    """An ``EngineClient`` batching every concurrent request of one model in one decode loop."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        limits: BatchLimits,
        delivery: Delivery | None = None,
        trace_steps: bool = False,
    ) -> None:
        self._model, self._tokenizer, self._limits = model, tokenizer, limits
        self._vocab = int(model.get_output_embeddings().weight.shape[0])
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        batchable = mergeable(DynamicCache(config=model.config))
        self._max_rows = limits.max_batch_size if batchable else 1
        self._sampler = BatchSampler(self._vocab, model.device)
        self._grammars = Grammars(tokenizer, self._vocab)
        self._batch = KVBatch(model, prebuilt_masks=batchable)
        self._rows: list[Row] = []
        self._waiting: deque[EngineRequest] = deque()
        self._chunked: EngineRequest | None = None
        self._inbox: queue.Queue[EngineRequest | None] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self._aborted: set[str] = set()
        self._admitted = 0  # requests accepted but not yet decoding
        self._stopping = False
        self._failure: str | None = None
        self._delivery = delivery or Delivery(limits.stream_interval)
        self._steps = StepLog(self._delivery.steps, enabled=trace_steps)
        self._thread = threading.Thread(target=self._run, name=f"engine[{name}]", daemon=True)
        self._thread.start()

    @property
    def max_rows(self) -> int:
        return self._max_rows

    @property
    def vocab_size(self) -> int:
        return self._vocab

    # -- EngineClient ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> RequestStream:
        if self._stopping or not self._thread.is_alive():
            raise EngineFailure(f"The inference loop has stopped: {self._failure or 'shut down'}")
        check_request(request, vocab_size=self._vocab, max_rows=self._max_rows, limits=self._limits)
        with self._lock:
            if self._admitted >= self._limits.max_queue:
                raise Overloaded("Too many requests are waiting for this model; retry shortly.")
        self._delivery.loop = asyncio.get_running_loop()
        stream = RequestStream(request.request_id, request.params.n, self.abort)
        self.submit(request, stream)
        return stream

    def submit(self, request: GenerationRequest, handle: Any) -> None:
        """Queue an already admitted request; its events go to ``handle`` through the delivery."""
        with self._lock:
            self._admitted += 1
            self._live.add(request.request_id)
        self._inbox.put(EngineRequest(request, handle, request.params.n, list(request.prompt_ids)))

    def abort(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._live:
                self._aborted.add(request_id)

    def health(self) -> EngineHealth:
        return EngineHealth(
            alive=self._thread.is_alive(), running=len(self._rows), waiting=self._admitted, detail=self._failure
        )

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the loop: every running and waiting request finishes as aborted."""
        with self._lock:
            self._stopping = True
            self._aborted.update(self._live)
        self._inbox.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():  # let the weights and the KV cache be freed
            self._model = self._batch = None  # type: ignore[assignment]

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while self._take_new(block=not (self._rows or self._waiting or self._chunked)):
                    self._drop_aborted()
                    self._steps.begin()
                    self._admit()
                    if self._rows:
                        self._decode()
                    self._steps.end()
                    self._deliver()
        except BaseException as exc:  # the loop itself died: health turns false
            self._failure = repr(exc)
            log.exception("engine_loop_died", error=self._failure)
        finally:
            self._finish_everything()

    def _take_new(self, *, block: bool) -> bool:
        """Move queued requests to the waiting line; False once shut down."""
        try:
            item = self._inbox.get(block=block)
            while item is not None:
                self._waiting.append(item)
                item = self._inbox.get_nowait()
            return False
        except queue.Empty:
            return not self._stopping

    def _drop_aborted(self) -> None:
        with self._lock:
            if not self._aborted:
                return
            aborted, self._aborted = self._aborted, set()
        gone = [i for i, row in enumerate(self._rows) if row.owner.id in aborted]
        for i in gone:
            self._finish(self._rows[i], "abort")
        if gone:
            self._keep([i for i in range(len(self._rows)) if i not in set(gone)])
        for req in [r for r in self._waiting if r.id in aborted]:
            self._waiting.remove(req)
            self._fail_request(req, "abort")
        if self._chunked is not None and self._chunked.id in aborted:
            self._fail_request(self._chunked, "abort")
            self._chunked = None

    def _keep(self, indices: Sequence[int]) -> None:
        self._rows = [self._rows[i] for i in indices]
        self._batch.keep(indices)

    # -- prefill --------------------------------------------------------------------------------
    def _admit(self) -> None:
        budget = self._limits.max_num_batched_tokens
        if self._chunked is not None:
            budget -= self._continue_chunked(budget)
        picked: list[EngineRequest] = []
        rows = len(self._rows)
        width = self._batch.width
        while self._waiting and self._chunked is None:
            req = self._waiting[0]
            if rows + req.open > self._max_rows or not self._kv_fits(rows + req.open, max(width, len(req.prompt))):
                break
            if req.request.inputs:  # media: prefilled alone and whole (placeholders and features meet in one forward)
                if not picked:
                    picked.append(self._waiting.popleft())
                break
            if len(req.prompt) > budget:
                if not picked and budget > 0:  # too long for this step: prefill it chunk by chunk
                    self._chunked = self._waiting.popleft()
                    self._continue_chunked(budget)
                break
            picked.append(self._waiting.popleft())
            budget -= len(req.prompt)
            rows += req.open
            width = max(width, len(req.prompt))
        if picked:
            self._prefill(picked)

    def _kv_fits(self, rows: int, width: int) -> bool:
        """Within the KV budget, or alone (``generate`` refuses requests that cannot fit even alone)."""
        budget = self._limits.max_kv_tokens
        return budget is None or not self._rows or rows * width <= budget

    def _prefill(self, requests: list[EngineRequest]) -> None:
        self._steps.prefilling(requests, sum(len(r.prompt) for r in requests))
        try:
            media = requests[0].request.inputs if len(requests) == 1 else None
            cache, mask, logits = prefill(self._model, [r.prompt for r in requests], self._pad, media)
            mask = repeat_rows(cache, mask, [r.open for r in requests])
        except Exception as exc:  # only these newcomers fail; the running batch goes on
            log.exception("prefill_failed", requests=[r.id for r in requests])
            for req in requests:
                self._fail_request(req, "error", str(exc))
            return
        index = torch.repeat_interleave(torch.arange(len(requests)), torch.tensor([r.open for r in requests]))
        self._join(requests, cache, mask, logits.index_select(0, index.to(logits.device)))

    def _continue_chunked(self, budget: int) -> int:
        """Prefill the next chunk of the long prompt in progress; returns the tokens spent."""
        req = self._chunked
        assert req is not None
        chunk = req.prompt[req.done : req.done + budget]
        self._steps.prefilling((req,), len(chunk))
        try:
            req.cache = req.cache or DynamicCache(config=self._model.config)
            logits = prefill_chunk(self._model, req.cache, chunk, req.done)
        except Exception as exc:
            log.exception("prefill_failed", requests=[req.id])
            self._fail_request(req, "error", str(exc))
            self._chunked = None
            return len(chunk)
        req.done += len(chunk)
        if req.done == len(req.prompt):
            self._chunked = None
            if len(self._rows) + req.open <= self._max_rows:
                mask = torch.ones((1, len(req.prompt)), dtype=torch.long, device=self._model.device)
                mask = repeat_rows(req.cache, mask, [req.open])
                self._join([req], req.cache, mask, logits.expand(req.open, -1))
            else:  # the batch filled up meanwhile: prefill again later
                req.done, req.cache = 0, None
                self._waiting.appendleft(req)
        return len(chunk)

    def _join(
        self, requests: list[EngineRequest], cache: DynamicCache, mask: torch.Tensor, logits: torch.Tensor
    ) -> None:
        """New rows (one per choice) sample their first token and join the running batch."""
        try:
            rows = [Row(req, i, self._sampling(req, i), self._text(req)) for req in requests for i in range(req.open)]
        except Exception as exc:  # e.g. a sampling state that cannot be built: only these requests fail
            log.exception("join_failed", requests=[r.id for r in requests])
            for req in requests:
                self._fail_request(req, "error", str(exc))
            return
        first = len(self._rows)
        self._rows.extend(rows)  # running before no longer waiting: the engine never looks idle in between
        self._batch.add(cache, mask)
        with self._lock:
            self._admitted -= len(requests)
        self._steps.joined(requests)
        finished = {first + i for i in self._advance(rows, logits)}
        if finished:
            self._keep([i for i in range(len(self._rows)) if i not in finished])

    def _sampling(self, req: EngineRequest, index: int) -> SequenceSampling:
        params = req.request.params
        grammar = self._grammars.matcher(params.grammar, params.stop_token_ids) if params.grammar else None
        return SequenceSampling(params, req.prompt, self._vocab, self._model.device, index, grammar)

    def _text(self, req: EngineRequest) -> TextAssembler:
        return TextAssembler(self._tokenizer, req.request.params.stop, req.request.params.skip_special_tokens)

    # -- decode ---------------------------------------------------------------------------------
    def _decode(self) -> None:
        tokens = torch.tensor([row.token for row in self._rows], dtype=torch.long, device=self._model.device)
        self._steps.decoding(self._rows)
        try:
            logits = self._batch.step(tokens)
        except Exception as exc:  # the forward pass cannot tell whose fault: fail the running rows only
            log.exception("decode_failed", rows=len(self._rows))
            for row in self._rows:
                self._finish(row, "error", str(exc))
            self._keep([])
            return
        finished = self._advance(self._rows, logits)
        if finished:
            self._keep([i for i in range(len(self._rows)) if i not in finished])

    def _advance(self, rows: list[Row], logits: torch.Tensor) -> set[int]:
        """Sample the next token of every row; returns the positions (in ``rows``) that finished."""
        finite = torch.isfinite(logits[:, : self._vocab]).all(dim=-1).tolist()
        finished: set[int] = set()
        healthy = [i for i, ok in enumerate(finite) if ok]
        for i in set(range(len(rows))) - set(healthy):
            self._finish(rows[i], "error", "the model produced non-finite logits")
            finished.add(i)
        if not healthy:
            return finished
        sub = logits if len(healthy) == len(rows) else logits[healthy]
        draws = self._sampler.sample(sub, [rows[i].sampling for i in healthy])
        for i, draw in zip(healthy, draws, strict=True):
            if self._accept(rows[i], draw):
                finished.add(i)
        return finished

    def _accept(self, row: Row, draw: Draw) -> bool:
        """Record one token for ``row``; True when the row is finished."""
        params = row.owner.request.params
        row.sampling.observe(draw.token_id)
        row.token = draw.token_id
        row.produced += 1
        if draw.token_id in params.stop_token_ids:
            self._finish(row, "stop")
            return True
        piece, stopped = row.text.add(draw.token_id)
        logprobs, top = self._logprobs(draw)
        self._emit(row, TokenEvent(row.owner.id, (draw.token_id,), piece, row.index, logprobs, top))
        if stopped:
            self._finish(row, "stop")
        elif row.produced >= params.max_tokens:
            self._finish(row, "length")
        else:
            return False
        return True

    def _logprobs(self, draw: Draw) -> tuple[tuple[Logprob, ...], tuple[tuple[Logprob, ...], ...]]:
        if draw.logprob is None:
            return (), ()
        decode = self._tokenizer.decode
        chosen = Logprob(draw.token_id, decode([draw.token_id]), draw.logprob)
        return (chosen,), (tuple(Logprob(t, decode([t]), lp) for t, lp in draw.top),)

    # -- events ---------------------------------------------------------------------------------
    def _emit(self, row: Row, event: EngineEvent) -> None:
        row.events.append(event)
        if len(row.events) == 1:
            self._delivery.add(row.owner.stream, row.events)

    def _finish(self, row: Row, reason: FinishReason, error: str | None = None) -> None:
        req = row.owner
        tail = row.text.finish() if reason != "error" else ""
        finish = FinishEvent(req.id, reason, len(req.prompt), row.produced, tail, error, row.index, timing=req.timing())
        self._emit(row, finish)
        if reason == "abort":
            log.info("engine_request_aborted", request_id=req.id, index=row.index, completion_tokens=row.produced)
        req.open -= 1
        if req.open == 0:
            with self._lock:
                self._live.discard(req.id)
                self._aborted.discard(req.id)

    def _fail_request(self, req: EngineRequest, reason: FinishReason, error: str | None = None) -> None:
        """A request that never reached the batch (aborted while waiting, or its prefill failed)."""
        with self._lock:
            self._admitted -= 1
            self._live.discard(req.id)
        if reason == "abort":
            log.info("engine_request_aborted", request_id=req.id, completion_tokens=0)
        timing = req.timing()
        events: list[EngineEvent] = [
            FinishEvent(req.id, reason, len(req.prompt), 0, error=error, index=i, timing=timing)
            for i in range(req.open)
        ]
        self._delivery.add(req.stream, events)

    def _deliver(self) -> None:
        if self._delivery.flush(busy=bool(self._rows)):
            for row in self._rows:
                row.events.clear()

    def _finish_everything(self) -> None:
        reason = "abort" if self._failure is None else "error"
        for row in self._rows:
            self._finish(row, reason, self._failure)
        self._rows.clear()
        pending = list(self._waiting) + ([self._chunked] if self._chunked else [])
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                pending.append(item)
        for req in pending:
            self._fail_request(req, reason, self._failure)
        self._deliver()
