"""The engine of a speech-to-text model (encoder-decoder: Whisper and any ``AutoModelForSpeechSeq2Seq``).

It runs in the engine process in place of ``BatchedEngine`` and speaks the same pipe protocol: each
``GenerationRequest`` is one window of audio (``inputs``: input features; ``options``: language, task,
prompt ids, timestamps), transcribed with ``generate`` (greedy, one beam, or sampled with the request's
temperature and seed) while its tokens stream out as ``TokenEvent``s; a ``FinishEvent`` ends it.
Windows are transcribed one at a time, in arrival order.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
import structlog
import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from app.engine.process.outbox import Outbox
from app.engine.types import (
    EngineEvent,
    FinishEvent,
    FinishReason,
    GenerationRequest,
    RequestTiming,
    TokenEvent,
    TokenLogprob,
)

log = structlog.get_logger(__name__)


class _Aborted(StoppingCriteria):
    def __init__(self, engine: SpeechEngine, request_id: str) -> None:
        self._engine, self._id = engine, request_id

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        stop = self._engine.is_aborted(self._id)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class _Scores(LogitsProcessor):
    """Keeps the log-probabilities of the step about to be sampled (after the model's own processors)."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.last = torch.log_softmax(scores[0].float(), dim=-1)
        return scores


class _Streamer:
    """Receives ``generate``'s tokens (after the decoder prompt) and sends text deltas with logprobs."""

    def __init__(self, engine: SpeechEngine, request: GenerationRequest, scores: _Scores) -> None:
        self._engine, self._request, self._scores = engine, request, scores
        self.prompt: list[int] | None = None
        self.ids: list[int] = []
        self.first_token = 0  # when the first generated token came (time.time_ns)
        self._text = ""

    def put(self, value: torch.Tensor) -> None:
        if self.prompt is None:  # the decoder prompt (with the language Whisper detected)
            self.prompt = [int(t) for t in value.reshape(-1).tolist()]
            return
        self.first_token = self.first_token or time.time_ns()
        for token in value.reshape(-1).tolist():
            self.ids.append(int(token))
            text = self._engine.decode(self.ids)
            delta = text[len(self._text) :] if text.startswith(self._text) and not text.endswith("\ufffd") else ""
            if delta:
                self._text = text
            scores = self._scores.last
            logprob = float(scores[int(token)]) if scores is not None else 0.0
            logprobs = (TokenLogprob(int(token), delta, logprob),)
            request_id = self._request.request_id
            self._engine.send(request_id, [TokenEvent(request_id, (int(token),), delta, 0, logprobs)])

    def end(self) -> None:
        pass

    def tail(self) -> str:
        text = self._engine.decode(self.ids)
        return text[len(self._text) :] if text.startswith(self._text) else ""


class SpeechEngine:
    def __init__(self, model: Any, tokenizer: Any, *, name: str, outbox: Outbox) -> None:
        self._model, self._tokenizer, self._outbox = model, tokenizer, outbox
        self._whisper = getattr(model.config, "model_type", None) == "whisper"
        lang_to_id = getattr(model.generation_config, "lang_to_id", None) or {}
        self._languages = {int(i): token.strip("<|>") for token, i in lang_to_id.items()}
        self._inbox: queue.Queue[tuple[GenerationRequest, int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._aborted: set[str] = set()
        self._running = 0
        self._thread = threading.Thread(target=self._run, name=f"speech[{name}]", daemon=True)
        self._thread.start()

    max_rows = 1

    # -- what the engine process calls ----------------------------------------------------------
    def submit(self, request: GenerationRequest) -> None:
        self._inbox.put((request, time.time_ns()))

    def abort(self, request_id: str) -> None:
        with self._lock:
            self._aborted.add(request_id)

    def is_aborted(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._aborted

    def shutdown(self, timeout: float = 10.0) -> None:
        self._inbox.put(None)
        self._thread.join(timeout)

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def send(self, request_id: str, events: list[EngineEvent]) -> None:
        """A window's finish goes out with nothing running: one window runs at a time, and no later message
        would correct the count the HTTP side keeps (the model would never look idle, so never unload)."""
        finished = any(isinstance(event, FinishEvent) for event in events)
        self._outbox.add(request_id, events)
        self._outbox.flush(busy=False, running=0 if finished else self._running)

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        while (item := self._inbox.get()) is not None:
            request, arrived = item
            with self._lock:
                self._running = 1
            try:
                self._transcribe(request, arrived)
            finally:
                with self._lock:
                    self._running = 0
                    self._aborted.discard(request.request_id)

    def _transcribe(self, request: GenerationRequest, arrived: int) -> None:
        scheduled = time.time_ns()
        scores = _Scores()
        streamer = _Streamer(self, request, scores)

        def finish(reason: FinishReason, produced: int, *, started: bool = True, **kw: Any) -> None:
            timing = RequestTiming(arrived, scheduled if started else 0, streamer.first_token, time.time_ns())
            event = FinishEvent(request.request_id, reason, len(request.prompt_ids), produced, timing=timing, **kw)
            self.send(request.request_id, [event])

        if self.is_aborted(request.request_id):  # aborted while it waited: it never started
            finish("abort", 0, started=False)
            return
        try:
            with torch.inference_mode(), torch.random.fork_rng(devices=[]):
                if request.params.seed is not None:
                    torch.manual_seed(request.params.seed)
                kwargs = self._generate_kwargs(request)
                self._model.generate(**kwargs, streamer=streamer, logits_processor=LogitsProcessorList([scores]))
        except Exception as exc:  # this window fails; the engine goes on
            log.exception("transcription_failed", request_id=request.request_id)
            finish("error", len(streamer.ids), error=str(exc))
            return
        produced = len(streamer.ids)
        if self.is_aborted(request.request_id):
            reason: FinishReason = "abort"
        else:
            reason = "length" if produced >= request.params.max_tokens else "stop"
        heard = next((self._languages[t] for t in streamer.prompt or [] if t in self._languages), None)
        finish(reason, produced, text=streamer.tail(), detail={"language": heard})

    def _generate_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        device, dtype = self._model.device, self._model.dtype
        kwargs: dict[str, Any] = {}
        for key, value in (request.inputs or {}).items():
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(device)
            kwargs[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
        params = request.params
        kwargs.update(max_new_tokens=params.max_tokens, num_beams=1, stopping_criteria=StoppingCriteriaList())
        kwargs["stopping_criteria"].append(_Aborted(self, request.request_id))
        if not params.greedy:
            kwargs.update(do_sample=True, temperature=params.temperature)
        else:
            kwargs["do_sample"] = False
        options = dict(request.options or {})
        if self._whisper:
            if "prompt_ids" in options:
                options["prompt_ids"] = torch.tensor(options["prompt_ids"], dtype=torch.long, device=device)
            kwargs.update(options)
        return kwargs
