"""The inference thread of one model, in the engine process: iteration-level (continuous) batching.

Every loop iteration (a step): take new requests, drop aborted ones, prefill the newcomers the scheduler
picks within the step's token budget (several short prompts in one padded forward; a long prompt one chunk
per step, so running decodes never wait for a whole long prefill), then one decode step for every running
row, sampling each row with its own parameters. Requests join and leave between steps.

The pipe's reader only queues work (``submit``, ``abort``); the step's events leave through the ``Outbox``.
torch runs on this thread only (CUDA graphs and caches keep thread state).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog
import torch

from app.engine.options import BatchLimits
from app.engine.process.constraints import Grammars
from app.engine.process.detokenizer import TextAssembler
from app.engine.process.model_runner import ModelRunner
from app.engine.process.outbox import Outbox
from app.engine.process.prompt_scoring import PositionScore, describe
from app.engine.process.rows import EngineRequest, Row
from app.engine.process.sampler import BatchSampler, Draw, SequenceSampling
from app.engine.process.scheduler import Scheduler
from app.engine.process.steps import StepLog
from app.engine.types import EngineEvent, FinishEvent, FinishReason, GenerationRequest, PromptLogprob, TokenEvent
from app.engine.types import TokenLogprob as Logprob

log = structlog.get_logger(__name__)


class BatchedEngine:
    """Batches every concurrent request of one model in one decode loop."""

    def __init__(
        self,
        runner: ModelRunner,
        tokenizer: Any,
        *,
        name: str,
        limits: BatchLimits,
        outbox: Outbox,
        trace_steps: bool = False,
        on_death: Callable[[str], None] | None = None,
    ) -> None:
        self._tokenizer = tokenizer
        self._runner = runner
        self._vocab = self._runner.vocab_size
        self._max_rows = limits.max_batch_size if self._runner.batchable else 1
        self._limits = limits
        self._scheduler = self._make_scheduler()
        self._sampler = BatchSampler(self._vocab, self._runner.device)
        self._grammars = Grammars(tokenizer, self._vocab)
        self._rows: list[Row] = []
        self._inbox: queue.Queue[EngineRequest | None] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self._aborted: set[str] = set()
        self._failure: str | None = None
        self._outbox = outbox
        self._on_death = on_death  # the loop died (not a failed step: the loop itself): told why, last
        self._steps = StepLog(outbox.steps, enabled=trace_steps)
        self._thread = threading.Thread(target=self._run, name=f"engine[{name}]", daemon=True)
        self._thread.start()

    @property
    def max_rows(self) -> int:
        return self._max_rows

    def _make_scheduler(self) -> Any:
        return Scheduler(self._limits, self._max_rows)

    # -- what the engine process calls ----------------------------------------------------------
    def submit(self, request: GenerationRequest) -> None:
        """Queue a request the HTTP side has admitted; its events leave through the outbox."""
        with self._lock:
            self._live.add(request.request_id)
        self._inbox.put(EngineRequest(request, request.params.n, list(request.prompt_ids)))

    def abort(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._live:
                self._aborted.add(request_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the loop: every running and waiting request finishes as aborted."""
        with self._lock:
            self._aborted.update(self._live)
        self._inbox.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():  # let the weights and the KV cache be freed
            stop_followers = getattr(self._runner, "stop_followers", None)  # a tensor-parallel rank 0
            if stop_followers is not None:
                stop_followers()
            self._runner = None  # type: ignore[assignment]

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while self._take_new(block=not (self._rows or self._scheduler.pending)):
                    self._drop_aborted()
                    self._steps.begin()
                    self._step()
                    self._steps.end()
                    self._deliver()
        except BaseException as exc:  # the loop itself died: every request it holds fails
            self._failure = repr(exc)
            log.exception("engine_loop_died", error=self._failure)
        finally:
            self._finish_everything()
            if self._failure is not None and self._on_death is not None:
                self._on_death(self._failure)

    def _take_new(self, *, block: bool) -> bool:
        """Move queued requests to the waiting line; False once shut down."""
        try:
            item = self._inbox.get(block=block)
            while item is not None:
                self._take_in(item)
                item = self._inbox.get_nowait()
            return False
        except queue.Empty:
            return True

    def _take_in(self, req: EngineRequest) -> None:
        """Into the waiting line. A request that asks for prompt logprobs is scored first (``prompt_scoring``);
        one that asks for no token at all (max_tokens 0: only its prompt scored) finishes right there."""
        params = req.request.params
        if params.prompt_logprobs is not None:
            try:
                scores = self._score_prompt(req.prompt, params.prompt_logprobs)
                req.prompt_logprobs = describe(req.prompt, scores, self._tokenizer.decode)
            except Exception as exc:  # only this request fails
                log.exception("prompt_scoring_failed", requests=[req.id])
                self._fail_request(req, "error", str(exc))
                return
        if params.max_tokens == 0:
            self._fail_request(req, "length")
        else:
            self._scheduler.add(req)

    def _score_prompt(self, prompt: list[int], top_k: int) -> list[PositionScore]:
        return self._runner.score_prompt(prompt, top_k)  # a replicated runner runs it on every rank

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
        chunking = self._scheduler.chunked is not None
        for req in self._scheduler.withdraw(aborted):
            self._fail_request(req, "abort")
        if chunking and self._scheduler.chunked is None:
            self._runner.drop_chunk()

    def _keep(self, indices: Sequence[int]) -> None:
        self._rows = [self._rows[i] for i in indices]
        self._runner.keep(indices)

    def _step(self) -> None:
        self._prefill_newcomers()
        if self._rows:
            self._decode()

    # -- prefill --------------------------------------------------------------------------------
    def _prefill_newcomers(self) -> None:
        budget = self._limits.max_num_batched_tokens
        if self._scheduler.chunked is not None:
            budget -= self._prefill_chunk(budget)
        chunk_in_progress = self._scheduler.chunked is not None
        picked = self._scheduler.pick(budget, running=len(self._rows), width=self._runner.width)
        if picked:
            self._prefill(picked)
        elif not chunk_in_progress and self._scheduler.chunked is not None:  # a long prompt's first chunk
            self._prefill_chunk(budget)

    def _prefill(self, requests: list[EngineRequest]) -> None:
        self._steps.prefilling(requests, sum(len(r.prompt) for r in requests))
        try:
            media = requests[0].request.inputs if len(requests) == 1 else None
            logits = self._runner.prefill([r.prompt for r in requests], [r.open for r in requests], media)
        except Exception as exc:  # only these newcomers fail; the running batch goes on
            log.exception("prefill_failed", requests=[r.id for r in requests])
            for req in requests:
                self._fail_request(req, "error", str(exc))
            return
        self._join(requests, logits)

    def _prefill_chunk(self, budget: int) -> int:
        """Prefill the next chunk of the long prompt in progress; returns the tokens spent."""
        req = self._scheduler.chunked
        assert req is not None
        chunk = self._scheduler.next_chunk(budget)
        self._steps.prefilling((req,), len(chunk))
        try:
            logits = self._runner.prefill_chunk(chunk, req.done)
        except Exception as exc:
            log.exception("prefill_failed", requests=[req.id])
            self._runner.drop_chunk()
            self._fail_request(self._scheduler.chunk_failed(), "error", str(exc))
            return len(chunk)
        whole = self._scheduler.chunk_prefilled(len(chunk), running=len(self._rows))
        if whole is not None:
            self._runner.stage_chunked(len(whole.prompt), whole.open)
            self._join([whole], logits.expand(whole.open, -1))
        elif self._scheduler.chunked is None:  # whole, but the batch filled up meanwhile: prefilled again later
            self._runner.drop_chunk()
        return len(chunk)

    def _join(self, requests: list[EngineRequest], logits: torch.Tensor) -> None:
        """New rows (one per choice), prefilled and staged by the runner, sample their first token and join."""
        try:
            rows = [Row(req, i, self._sampling(req, i), self._text(req)) for req in requests for i in range(req.open)]
        except Exception as exc:  # e.g. a sampling state that cannot be built: only these requests fail
            log.exception("join_failed", requests=[r.id for r in requests])
            self._runner.discard()
            for req in requests:
                self._fail_request(req, "error", str(exc))
            return
        first = len(self._rows)
        self._rows.extend(rows)
        self._runner.join()
        self._steps.joined(requests)
        finished = {first + i for i in self._advance(rows, logits)}
        if finished:
            self._keep([i for i in range(len(self._rows)) if i not in finished])

    def _sampling(self, req: EngineRequest, index: int) -> SequenceSampling:
        params = req.request.params
        grammar = self._grammars.matcher(params.grammar, params.stop_token_ids) if params.grammar else None
        return SequenceSampling(params, req.prompt, self._vocab, self._runner.device, index, grammar)

    def _text(self, req: EngineRequest) -> TextAssembler:
        params = req.request.params
        return TextAssembler(self._tokenizer, params.stop, params.skip_special_tokens, params.reasoning)

    # -- decode ---------------------------------------------------------------------------------
    def _decode(self) -> None:
        self._steps.decoding(self._rows)
        try:
            logits = self._runner.decode([row.token for row in self._rows])
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
        if params.reasoning_budget is not None:  # a spent budget ends the block: its end marker comes next
            row.sampling.force(row.text.reasoning_overrun(params.reasoning_budget))
        logprobs, top = self._logprobs(draw)
        first = self._prompt_logprobs_once(row)
        self._emit(row, TokenEvent(row.owner.id, (draw.token_id,), piece, row.index, logprobs, top, first))
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
            self._outbox.add(row.owner.id, row.events)

    def _finish(self, row: Row, reason: FinishReason, error: str | None = None) -> None:
        req = row.owner
        tail = row.text.finish() if reason != "error" else ""
        stop = row.text.stop_string if reason == "stop" else None
        detail = {"stop_sequence": stop} if stop else None
        finish = FinishEvent(
            req.id,
            reason,
            len(req.prompt),
            row.produced,
            tail,
            error,
            row.index,
            detail,
            timing=req.timing(),
            prompt_logprobs=self._prompt_logprobs_once(row),
            reasoning_tokens=row.text.reasoning_tokens,
            cached_tokens=req.cached,
        )
        self._emit(row, finish)
        if reason == "abort":
            log.info("engine_request_aborted", request_id=req.id, index=row.index, completion_tokens=row.produced)
        req.open -= 1
        if req.open == 0:
            with self._lock:
                self._live.discard(req.id)
                self._aborted.discard(req.id)

    @staticmethod
    def _prompt_logprobs_once(row: Row) -> tuple[PromptLogprob, ...] | None:
        """The request's prompt logprobs, on the first event of each choice only."""
        if row.owner.prompt_logprobs is None or row.prompt_logprobs_sent:
            return None
        row.prompt_logprobs_sent = True
        return row.owner.prompt_logprobs

    def _fail_request(self, req: EngineRequest, reason: FinishReason, error: str | None = None) -> None:
        """A request that never reached the batch (aborted while waiting, its prefill failed, or it asked for
        no token: ``length``)."""
        with self._lock:
            self._live.discard(req.id)
        if reason == "abort":
            log.info("engine_request_aborted", request_id=req.id, completion_tokens=0)
        timing = req.timing()
        events: list[EngineEvent] = [
            FinishEvent(
                req.id,
                reason,
                len(req.prompt),
                0,
                error=error,
                index=i,
                timing=timing,
                prompt_logprobs=req.prompt_logprobs,
            )
            for i in range(req.open)
        ]
        self._outbox.add(req.id, events)

    def _deliver(self) -> None:
        if self._outbox.flush(busy=bool(self._rows), running=len(self._rows), kv_tokens=self._runner.kv_tokens):
            for row in self._rows:
                row.events.clear()

    def _finish_everything(self) -> None:
        reason = "abort" if self._failure is None else "error"
        for row in self._rows:
            self._finish(row, reason, self._failure)
        self._rows.clear()
        for item in self._scheduler.drain():
            self._drop_waiting(item, reason, self._failure)
        while True:
            try:
                request = self._inbox.get_nowait()
            except queue.Empty:
                break
            if request is not None:
                self._fail_request(request, reason, self._failure)
        self._deliver()

    def _drop_waiting(self, item: Any, reason: FinishReason, error: str | None = None) -> None:
        """What waited in the scheduler's line leaves without running (the paged engine frees its blocks too)."""
        self._fail_request(item, reason, error)
