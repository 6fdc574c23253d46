"""The engine's contract, free of torch: what serving code builds, sends and receives.

Serving code depends only on these types, so tests can drive it with a scripted engine and the real engine can
change underneath (our own scheduler, transformers' continuous batching, a remote engine)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "abort", "error"]
# Temperatures this small are greedy decoding: dividing logits by them overflows to inf (then NaN
# probabilities), and the distribution they would give is the argmax anyway.
GREEDY_BELOW = 1e-5
SpeechTask = Literal["transcribe", "translate"]  # Whisper's tasks: same language as spoken, or English


@dataclass(frozen=True, slots=True)
class ReasoningMarkers:
    """Where a model's reasoning block starts and ends in its decoded output. Stop strings apply to the
    content the client sees, so the engine does not match them inside such a block."""

    start: str
    end: str
    open: bool = False  # the prompt opened a block: the output starts inside it


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Per-request decoding parameters, already merged from model defaults and the request."""

    max_tokens: int
    temperature: float = 1.0  # below GREEDY_BELOW (0 included) means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 disables
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # multiplicative, over prompt and output (transformers' meaning)
    presence_penalty: float = 0.0  # additive, over output tokens (OpenAI's meaning)
    frequency_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    n: int = 1  # choices; they share the prompt's prefill
    logprobs: int | None = None  # None: none; k >= 0: the chosen token's logprob plus the k most likely
    # None: none; k >= 0: every prompt token's logprob (given the tokens before it) plus the k most likely there.
    # With max_tokens 0 the prompt is only scored: no token is generated.
    prompt_logprobs: int | None = None
    # A constraint on the output: a grammar in llguidance's serialized form (from a JSON schema, Lark or
    # a regex); each step only tokens the grammar allows can be drawn, and once it is complete only EOS.
    grammar: str | None = None
    skip_special_tokens: bool = True  # False keeps special-token text (a tool-call marker that is one)
    reasoning: ReasoningMarkers | None = None  # the model's reasoning block, which stop strings skip
    reasoning_budget: int | None = None  # tokens the reasoning block may hold before its end marker is forced

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A validated, tokenized request: the only thing that reaches the engine."""

    request_id: str
    prompt_ids: Sequence[int]
    params: SamplingParams
    # Processor outputs the forward takes besides the ids (pixel_values, ...), as numpy arrays; None for text.
    inputs: Mapping[str, Any] | None = None
    options: Mapping[str, Any] | None = None  # a speech-to-text model's (language, task, prompt_ids, timestamps)
    # How many engine requests the client's one request became (a completions call's prompts), all
    # admitted together: a group larger than the waiting line could never be admitted.
    group: int = 1


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token_id: int
    token: str  # the token's own text
    logprob: float


@dataclass(frozen=True, slots=True)
class PromptLogprob:
    """One prompt token as the model scored it from the tokens before it: its logprob, its rank among the
    vocabulary (1: the most likely) and the most likely tokens at its position. The first token has nothing
    before it: ``logprob`` and ``rank`` are None and ``top`` is empty."""

    token_id: int
    token: str
    logprob: float | None
    rank: int | None
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """Generated tokens of choice ``index`` and the text they complete (empty while text is held back).

    The engine emits one token per event; a consumer that falls behind receives the backlog of a
    choice merged into one event. ``logprobs``/``top_logprobs`` have one entry per token when asked for.
    ``prompt_logprobs`` (one per prompt token, when asked for) rides on the first event of each choice.
    """

    request_id: str
    token_ids: tuple[int, ...]
    text: str
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()
    top_logprobs: tuple[tuple[TokenLogprob, ...], ...] = ()
    prompt_logprobs: tuple[PromptLogprob, ...] | None = None

    @property
    def token_id(self) -> int:
        return self.token_ids[-1]

    def __reduce__(self) -> tuple[type[TokenEvent], tuple[object, ...]]:  # 4x faster than a frozen dataclass's
        fields = (self.request_id, self.token_ids, self.text, self.index, self.logprobs, self.top_logprobs)
        return TokenEvent, (*fields, self.prompt_logprobs)

    def merged(self, later: TokenEvent) -> TokenEvent:
        return TokenEvent(
            self.request_id,
            self.token_ids + later.token_ids,
            self.text + later.text,
            self.index,
            self.logprobs + later.logprobs,
            self.top_logprobs + later.top_logprobs,
            self.prompt_logprobs if self.prompt_logprobs is not None else later.prompt_logprobs,
        )


@dataclass(frozen=True, slots=True)
class RequestTiming:
    """When the engine reached each stage of a request, in ``time.time_ns()`` (one clock for every process on
    the host): it arrived, its prefill started, its first token was sampled, and this choice finished.
    0 marks a stage it never reached."""

    arrived: int
    scheduled: int = 0
    first_token: int = 0
    finished: int = 0


@dataclass(frozen=True, slots=True)
class FinishEvent:
    """The last event of choice ``index``. ``text`` is held-back text released at the end. ``prompt_tokens`` is
    the request's; ``completion_tokens`` counts this choice's tokens. ``timing`` is set by the engine (None for a
    finish made up outside it, e.g. when its process died). ``prompt_logprobs``: see ``TokenEvent``."""

    request_id: str
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    text: str = ""
    error: str | None = None
    index: int = 0
    detail: Mapping[str, Any] | None = None  # beyond text: a speech model's language, the stop string that ended it
    timing: RequestTiming | None = None
    prompt_logprobs: tuple[PromptLogprob, ...] | None = None
    reasoning_tokens: int = 0  # of ``completion_tokens``: those inside the reasoning block
    cached_tokens: int = 0  # prompt tokens whose KV came from the prefix cache (not prefilled again)


class StepRecord(NamedTuple):
    """What one step of the batching loop did. Recorded only when tracing is on, and sent over the pipe with
    the step's events; the HTTP process turns it into a span linked to the requests in it. A named tuple:
    it pickles at a third of a slotted dataclass's cost, both ways."""

    started: int  # time.time_ns()
    ended: int
    prefill_ids: tuple[str, ...]  # requests prefilled in this step (whole prompts, or one chunk of a long one)
    prefill_tokens: int
    decode_ids: tuple[str, ...]  # the request of every row decoded in this step (n choices: n entries)


EngineEvent = TokenEvent | FinishEvent


@dataclass(frozen=True, slots=True)
class EngineHealth:
    alive: bool
    running: int
    waiting: int
    detail: str | None = None
    kv_usage: float = 0.0  # share of the KV cache in use, 0-1
    kv_capacity: int = 0  # KV-cache slots (tokens) the engine may hold; 0 when not bounded
    kv_blocks_used: int = 0  # the paged KV cache's blocks in use (0 and 0: the cache is not paged)
    kv_blocks_total: int = 0
    prefix_cache_queries: int = 0  # prompt tokens looked up in the prefix cache, since the model loaded
    prefix_cache_hits: int = 0  # of them, tokens found there
    prefix_caching: bool = False  # the paged cache reuses prompt prefixes
    kv_live_tokens: int = 0  # tokens the paged cache holds for running and prefilling sequences (shared: each)
    preemptions: int = 0  # sequences preempted (their blocks freed, recomputed later) for want of KV blocks


class EventStream(Protocol):
    """One request's events. ``close()`` (or dropping it unread) aborts what has not finished."""

    def __aiter__(self) -> EventStream: ...

    async def __anext__(self) -> EngineEvent: ...

    def close(self) -> None: ...


class EngineObserver(Protocol):
    """Sees what an engine delivers, once per delivery (not per token): telemetry hooks in here."""

    def delivered(self, batch: Sequence[tuple[str, Sequence[EngineEvent]]], steps: Sequence[StepRecord]) -> None:
        """``batch``: the events of each request since the last delivery; ``steps``: what the engine's steps
        did meanwhile (recorded only when tracing is on). Runs on the event loop; must not raise."""
        ...


@runtime_checkable
class EngineClient(Protocol):
    """What serving code needs from an engine."""

    def generate(self, request: GenerationRequest) -> EventStream:
        """Admit the request now (raising ``Overloaded``/``EngineFailure``/``InvalidRequest`` before anything
        is streamed) and return its events: tokens of every choice, then one ``FinishEvent`` per choice.
        Closing or dropping the iterator aborts the request."""
        ...

    def abort(self, request_id: str) -> None:
        """Stop a request (client gone); safe to call for finished or unknown ids."""
        ...

    def health(self) -> EngineHealth: ...


class PromptRenderer(Protocol):
    """Turns chat messages into prompt token ids (blocking: call it off the event loop)."""

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        special_tokens: bool = False,
    ) -> list[int]: ...

    def encode_text(self, text: str, *, special_tokens: bool = False) -> list[int]: ...

    def encode_fim(self, prefix: str, suffix: str) -> list[int]:
        """Raises ``InvalidRequest`` (param ``suffix``) when the tokenizer has no FIM tokens."""
        ...

    def decode(self, ids: list[int]) -> str: ...

    def detokenize(self, ids: list[int]) -> str:
        """Special tokens kept; raises ``InvalidRequest`` (param ``tokens``) for ids outside the vocabulary."""
        ...

    def token_strings(self, ids: list[int]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What serving code knows about a loaded model, besides its renderer and engine."""

    name: str  # canonical ``id@revision`` (or the local directory)
    max_context: int
    eos_token_ids: tuple[int, ...]
    generation_defaults: Mapping[str, Any]  # the model's generation_config, as plain values
    vocab_size: int | None = None  # rows of the output embedding: the valid token ids
    modalities: frozenset[str] = frozenset({"text"})
    model_type: str = ""  # config.model_type
    added_tokens: Mapping[str, int] = field(default_factory=dict)  # the tokenizer's added tokens and their ids
    special_tokens: frozenset[str] = frozenset()  # added tokens that decoding drops unless told to keep them
    chat_template: str = ""
    task: str = "text-generation"  # or image-text-to-text, multimodal-lm, speech-to-text, embed, score
    audio_sampling_rate: int | None = None  # what the processor's feature extractor wants
    audio_window_s: float | None = None  # longest audio one forward takes (speech-to-text)
    embedding_size: int | None = None  # the length of an embed model's vectors
    # ``dimensions`` an embed model may be truncated to (Matryoshka): None: none; (): any up to embedding_size
    matryoshka_dimensions: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class PoolingRequest:
    """One input of an embed or score model, tokenized: the only thing that reaches the pooling engine.
    ``token_type_ids`` mark a pair's second text, for the encoders that take them (cross-encoders)."""

    request_id: str
    prompt_ids: Sequence[int]
    token_type_ids: Sequence[int] | None = None


@dataclass(frozen=True, slots=True)
class PoolingResult:
    """What the pooling engine made of one input: its embedding, or its one score, as a float32 numpy array
    (``values``, None with ``error``)."""

    request_id: str
    values: Any
    prompt_tokens: int
    error: str | None = None


class PoolingClient(Protocol):
    """What serving needs from the engine of an embed or score model."""

    async def pool(self, requests: Sequence[PoolingRequest]) -> list[PoolingResult]:
        """Admit ``requests`` together (raising ``Overloaded``/``EngineFailure``/``InvalidRequest`` first), then
        their results in the same order; cancelling the call drops what has not run yet."""
        ...

    def health(self) -> EngineHealth: ...


class PairTokenizer(Protocol):
    """The HTTP-side tokenizer of an embed or score model (blocking: call it off the event loop)."""

    def encode(self, text: str, *, max_length: int | None = None) -> list[int]:
        """With the model's special tokens; cut to ``max_length`` (keeping them) when given."""
        ...

    def encode_pair(
        self, first: str, second: str, *, max_length: int | None = None
    ) -> tuple[list[int], list[int] | None]:
        """A cross-encoder's input: the ids and, when the model takes them, the token type ids."""
        ...


@dataclass(slots=True)
class MediaInputs:
    """Decoded media of one request, in prompt order per kind (PIL images, float32 audio, RGB frames)."""

    images: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)  # [frames, height, width, 3] uint8 arrays
    video_audios: list[Any] = field(default_factory=list)  # audio tracks of the videos, for models that take audio


@dataclass(frozen=True, slots=True)
class EncodedPrompt:
    ids: list[int]
    inputs: Mapping[str, Any]  # see GenerationRequest.inputs


class MediaRenderer(PromptRenderer, Protocol):
    """A renderer whose processor also takes images, audio or video (blocking: call it off the loop)."""

    def encode_chat_media(
        self,
        messages: list[dict[str, Any]],
        media: MediaInputs,
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        special_tokens: bool = False,
    ) -> EncodedPrompt: ...


@dataclass(frozen=True, slots=True)
class SpeechInput:
    """One window of audio ready for a speech-to-text model."""

    inputs: Mapping[str, Any]  # input_features (and attention mask) as numpy arrays
    prompt_ids: list[int]  # decoder prompt the engine starts from (reported as prompt tokens)
    options: Mapping[str, Any]
    max_tokens: int  # what the decoder has room for after its prompt


class SpeechFrontend(Protocol):
    """The parent-process side of a speech-to-text model: features in, text (and timestamps) out."""

    translates: bool  # takes the translate task (speech in any language it knows, English text out)

    def prepare(
        self,
        samples: Any,
        *,
        language: str | None,
        prompt: str | None,
        timestamps: bool,
        task: SpeechTask = "transcribe",
    ) -> SpeechInput: ...

    def segments(self, token_ids: Sequence[int], offset: float, duration: float) -> list[tuple[float, float, str]]:
        """(start, end, text) per segment of one window starting at ``offset`` seconds, ``duration`` long."""
        ...

    def decode(self, token_ids: Sequence[int]) -> str: ...

    def language_name(self, language: str | None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ServingModel:
    """A loaded model as serving code sees it."""

    info: ModelInfo
    renderer: PromptRenderer
    engine: EngineClient
