"""The engine of embed and score models: inputs in, one vector (or one score) per input out, in padded batches.

It runs in the engine process in place of ``BatchedEngine``. Its thread takes every input waiting in its inbox
(from any number of API requests), orders them by length, and runs them in right-padded batches of at most
``max_batch_size`` rows and ``max_num_batched_tokens`` tokens (rows x longest). Each batch's results go back
as one ``Pooled`` message. An embed model's token states are pooled (cls, mean, max or last token) and, when
its layout says so, L2-normalized; a cross-encoder's one logit goes through its activation (sigmoid, as
sentence-transformers' ``CrossEncoder`` applies by default).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog
import torch

from app.engine.architectures import EMBED, default_pooling
from app.engine.messages import Pooled
from app.engine.options import BatchLimits
from app.engine.sentence_transformers import read_layout
from app.engine.types import ModelInfo, PoolingRequest, PoolingResult

log = structlog.get_logger(__name__)
_IDENTITY = "torch.nn.modules.linear.Identity"


@dataclasses.dataclass(frozen=True, slots=True)
class Pooler:
    """How a forward pass's output becomes each row's values."""

    task: str  # embed | score
    mode: str = "mean"  # cls | mean | max | lasttoken (embed)
    normalize: bool = False
    sigmoid: bool = True  # score: the cross-encoder's activation

    def __call__(self, output: Any, mask: torch.Tensor) -> torch.Tensor:
        if self.task != EMBED:
            logits = output.logits[:, 0].float()
            return (torch.sigmoid(logits) if self.sigmoid else logits).unsqueeze(-1)
        states = output.last_hidden_state.float()
        pooled = _pool(states, mask, self.mode)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1) if self.normalize else pooled


def _pool(states: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Right-padded ``states`` [rows, width, hidden] pooled over each row's real tokens (``mask``)."""
    if mode == "cls":
        return states[:, 0]
    if mode == "lasttoken":
        last = mask.sum(dim=1) - 1
        return states[torch.arange(states.shape[0], device=states.device), last]
    keep = mask.unsqueeze(-1).to(states.dtype)
    if mode == "max":
        return states.masked_fill(keep == 0, -1e9).max(dim=1).values
    return (states * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1e-9)


def make_pooler(task: str, folder: str, config: Any) -> tuple[Pooler, int | None]:
    """The model's pooler and the sequence length its layout caps inputs at (None: no cap of its own)."""
    if task != EMBED:
        activation = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn")
        return Pooler(task, sigmoid=activation != _IDENTITY), None
    layout = read_layout(folder)
    if layout is None:
        return Pooler(task, default_pooling(getattr(config, "model_type", None))), None
    return Pooler(task, layout.mode, layout.normalize), layout.max_seq_length


def matryoshka_dimensions(config: Any) -> tuple[int, ...] | None:
    """What ``dimensions`` may ask for, as the config says (vLLM's convention): ``matryoshka_dimensions`` lists
    them, ``is_matryoshka: true`` allows any; otherwise the model's vectors are not truncated."""
    listed = getattr(config, "matryoshka_dimensions", None)
    if listed:
        return tuple(sorted(int(d) for d in listed))
    return () if getattr(config, "is_matryoshka", False) else None


def pooling_info(info: ModelInfo, folder: str, config: Any, model: Any) -> ModelInfo:
    """``info`` completed for an embed or score model: its vector size, its Matryoshka dimensions, and the
    context capped by its sentence-transformers layout."""
    _, cap = make_pooler(info.task, folder, config)
    context = min(info.max_context, cap) if cap else info.max_context
    if info.task != EMBED:
        return dataclasses.replace(info, max_context=context)
    size = int(model.get_input_embeddings().weight.shape[1])
    return dataclasses.replace(
        info, max_context=context, embedding_size=size, matryoshka_dimensions=matryoshka_dimensions(config)
    )


class PoolingEngine:
    def __init__(
        self,
        model: Any,
        pooler: Pooler,
        *,
        name: str,
        pad_id: int,
        limits: BatchLimits,
        send: Callable[[Pooled], None],
    ) -> None:
        self._model, self._pooler, self._pad, self._limits, self._send = model, pooler, pad_id, limits, send
        self._inbox: queue.Queue[list[PoolingRequest] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._aborted: set[str] = set()
        self._held = 0  # inputs received and not answered yet
        self._thread = threading.Thread(target=self._run, name=f"pooling[{name}]", daemon=True)
        self._thread.start()

    @property
    def max_rows(self) -> int:
        return self._limits.max_batch_size

    # -- what the engine process calls ----------------------------------------------------------
    def pool(self, requests: list[PoolingRequest]) -> None:
        with self._lock:
            self._held += len(requests)
        self._inbox.put(requests)

    def abort(self, request_id: str) -> None:
        with self._lock:
            self._aborted.add(request_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._inbox.put(None)
        self._thread.join(timeout)

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        while (first := self._inbox.get()) is not None:
            waiting = list(first)
            stop = False
            while not self._inbox.empty():
                more = self._inbox.get_nowait()
                if more is None:
                    stop = True
                    break
                waiting.extend(more)
            waiting.sort(key=lambda r: len(r.prompt_ids))  # less padding; stable, so arrival order within a length
            for batch in self._batches(self._live(waiting)):
                self._answer(batch, self._run_batch(batch))
            if stop:
                return

    def _live(self, waiting: list[PoolingRequest]) -> list[PoolingRequest]:
        with self._lock:
            live = [r for r in waiting if r.request_id not in self._aborted]
            self._held -= len(waiting) - len(live)
        return live

    def _batches(self, waiting: Sequence[PoolingRequest]) -> list[list[PoolingRequest]]:
        """Consecutive runs of ``waiting`` (sorted by length) within the row and padded-token limits."""
        rows, tokens = self._limits.max_batch_size, self._limits.max_num_batched_tokens
        batches: list[list[PoolingRequest]] = []
        for request in waiting:
            current = batches[-1] if batches else None
            width = len(request.prompt_ids)  # the longest so far: sorted by length
            if current is None or len(current) >= rows or (len(current) + 1) * width > tokens:
                batches.append([request])
            else:
                current.append(request)
        return batches

    def _run_batch(self, batch: list[PoolingRequest]) -> list[Any] | str:
        """Each row's values (float32 numpy), or the error that failed the batch."""
        try:
            device = self._model.device
            width = max(len(r.prompt_ids) for r in batch)
            ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            types = torch.zeros((len(batch), width), dtype=torch.long)
            for row, request in enumerate(batch):
                length = len(request.prompt_ids)
                ids[row, :length] = torch.tensor(list(request.prompt_ids), dtype=torch.long)
                mask[row, :length] = 1
                if request.token_type_ids is not None:
                    types[row, :length] = torch.tensor(list(request.token_type_ids), dtype=torch.long)
            kwargs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            if any(r.token_type_ids is not None for r in batch):
                kwargs["token_type_ids"] = types.to(device)
            with torch.inference_mode():
                values = self._pooler(self._model(**kwargs), kwargs["attention_mask"])
            return list(values.cpu().numpy())
        except Exception as exc:  # this batch fails; the engine goes on
            log.exception("pooling_failed", rows=len(batch))
            return f"{type(exc).__name__}: {exc}"

    def _answer(self, batch: list[PoolingRequest], values: list[Any] | str) -> None:
        if isinstance(values, str):
            results = [PoolingResult(r.request_id, None, len(r.prompt_ids), error=values) for r in batch]
        else:
            results = [PoolingResult(r.request_id, v, len(r.prompt_ids)) for r, v in zip(batch, values, strict=True)]
        with self._lock:
            self._held -= len(batch)
            held = self._held
            if not held:  # nothing left that an abort could name
                self._aborted.clear()
        self._send(Pooled(results, held))


def pad_token(tokenizer: Any) -> int:
    """The id padded positions get (masked out, so any valid id does)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
