"""Server settings: one frozen object built from flags and ``HFSERVE_*`` environment variables.

There is no module-level instance: the CLI builds one and hands it to ``create_app(settings)``;
tests do the same with ``Settings(...)``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.store.urls import check_store_url


def _split_list(value: Any) -> Any:
    """Env vars carry lists as comma-separated text (``HFSERVE_API_KEY=a,b``) or a JSON array."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every option of ``hfserve serve``; each also reads ``HFSERVE_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="HFSERVE_", frozen=True, extra="forbid")

    model: str | None = Field(None, description="Pin the server to this model (org/name[@rev] or a local dir).")
    host: str = "localhost"
    port: int = Field(8000, ge=0, le=65535)
    continuous_batching: bool = Field(False, description="Accepted for compatibility with transformers serve.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+|mps)$")
    attn_implementation: str | None = None
    quantization: Literal["bnb-4bit", "bnb-8bit"] | None = None
    trust_remote_code: bool = False
    model_timeout: int = Field(300, ge=-1, description="Idle seconds before a model unloads; -1 never.")
    enable_cors: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    reasoning: Literal["auto", "on", "off"] = "auto"
    # NoDecode: the env value reaches the validator as text, so an explicit dict replaces it instead of
    # being deep-merged with it.
    chat_template_kwargs: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    default_seed: int | None = None
    tool_call_parser: str | None = Field(None, description="Tool-call format; detected from the model by default.")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    api_key: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    max_queue: int = Field(256, ge=1)
    max_batch_size: int = Field(32, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    max_num_batched_tokens: int = Field(2048, ge=16, description="Prompt tokens prefilled per engine step.")
    cpu_prefill_ms: float = Field(
        0, ge=0, description="CPU: a step prefills about this many milliseconds of prompt, measured (0: off)."
    )
    max_kv_tokens: int | None = Field(None, ge=16, description="Tokens the KV cache holds (paged: the pool's size).")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="CUDA: share of memory for weights and KV.")
    prefix_caching: bool = Field(True, description="Reuse the KV of prompt prefixes seen before.")
    cpu_threads: int | None = Field(None, ge=1, description="torch threads on CPU (default: cores-1; all to prefill).")
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="Shard each model across this many devices.")
    stream_interval_ms: float = Field(0.0, ge=0.0, le=1000.0, description="Hold streamed tokens this long.")
    drain_grace: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Seconds after SIGTERM with /ready 503 and new requests refused, before the "
        "listener closes (in-flight requests finish either way); 0 closes it at once.",
    )
    max_body_size: int = Field(32 * 1024 * 1024, ge=1024, description="Largest request body in bytes.")
    responses_store: str = Field(
        "memory://", description="Where stored responses live: memory://, sqlite:///path or redis://host:port/db."
    )
    responses_store_size: int = Field(1000, ge=0, description="Responses kept for previous_response_id (0: none).")
    responses_store_ttl: float = Field(3600.0, gt=0, description="Seconds a stored response is kept.")
    # Media (app/media): where it may come from and how much one request may bring.
    allowed_media_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Hosts, IPs or CIDR networks media may be fetched from even when private."
    )
    allow_private_media: bool = Field(False, description="Fetch media from loopback/private/link-local addresses.")
    allowed_local_media_path: str | None = Field(None, description="Directory file:// media URLs may read from.")
    media_fetch_timeout: float = Field(10.0, gt=0, le=600, description="Seconds one media fetch may take.")
    max_media_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Encoded media bytes per request.")
    max_media_per_request: int = Field(16, ge=0, description="Media content parts per request.")
    max_image_pixels: int = Field(25_000_000, ge=1, description="Pixels per image.")
    max_audio_seconds: float = Field(1200.0, gt=0, description="Seconds of audio per request.")
    max_video_frames: int = Field(64, ge=1, description="Frames sampled from one video at most.")
    video_frames: int = Field(8, ge=1, description="Frames sampled from a video by default.")
    video_fps: float | None = Field(None, gt=0, description="Sample videos at this rate by default instead.")
    allowed_local_model_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Directories below which a request may name a local model directory."
    )
    metrics: bool = Field(True, description="Request metrics at /metrics (process metrics are always there).")

    @field_validator("cors_origins", "api_key", "allowed_media_hosts", "allowed_local_model_paths", mode="before")
    @classmethod
    def _lists_from_text(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("responses_store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        return check_store_url(value)

    @field_validator("chat_template_kwargs", mode="before")
    @classmethod
    def _kwargs_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            parsed = json.loads(value) if value.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError("chat_template_kwargs must be a JSON object")
            return parsed
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value
