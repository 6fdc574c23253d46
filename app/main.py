"""The application factory: wires routes, services, errors, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException

from app.api.chat import ChatController
from app.api.completions import CompletionsController
from app.api.deps import (
    provide_chat_service,
    provide_completion_service,
    provide_embedding_service,
    provide_health_service,
    provide_messages_service,
    provide_model_catalog_service,
    provide_rerank_service,
    provide_responses_service,
    provide_tokenize_service,
    provide_transcription_service,
)
from app.api.embeddings import EmbeddingsController
from app.api.error_handler import handle_app_error, handle_http_error, handle_unexpected
from app.api.health import HealthController
from app.api.messages import MessagesController
from app.api.middleware import GUARDED_PREFIXES, api_key_middleware, request_middleware
from app.api.model_catalog import ModelCatalogController
from app.api.openapi import ApiDocument, openapi_config, openapi_json
from app.api.rerank import RerankController
from app.api.responses import ResponsesController
from app.api.tokenize import TokenizeController
from app.api.transcriptions import TranscriptionsController
from app.drain import on_drain_signal
from app.engine.client.heap import return_large_blocks
from app.engine.client.loader import load_model
from app.engine.options import BatchLimits, LoadOptions
from app.errors import HfServeError
from app.media.limits import FetchPolicy, MediaLimits
from app.models.registry import Loader, ModelRegistry
from app.observability.telemetry import Telemetry
from app.serving.anthropic_messages import AnthropicMessagesService
from app.serving.chat import ChatService
from app.serving.completions import CompletionService
from app.serving.embeddings import EmbeddingService
from app.serving.health import HealthService
from app.serving.media import MediaConfig
from app.serving.model_catalog import ModelCatalogService
from app.serving.output import check_tool_parser
from app.serving.prepare import Preparer, PromptDefaults
from app.serving.rerank import RerankService
from app.serving.response_store import ResponseStore
from app.serving.responses import ResponsesService
from app.serving.tokenize import TokenizeService
from app.serving.transcriptions import TranscriptionService
from app.settings import Settings
from app.store.backends import open_store
from app.store.base import StoreLimits

log = structlog.get_logger(__name__)


def media_config(settings: Settings) -> MediaConfig:
    policy = FetchPolicy(
        timeout=settings.media_fetch_timeout,
        connect_timeout=min(5.0, settings.media_fetch_timeout),
        allowed_hosts=tuple(settings.allowed_media_hosts),
        allow_private=settings.allow_private_media,
        local_path=settings.allowed_local_media_path,
    )
    limits = MediaLimits(
        max_parts=settings.max_media_per_request,
        max_bytes=settings.max_media_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_audio_seconds=settings.max_audio_seconds,
        max_video_frames=settings.max_video_frames,
        video_frames=min(settings.video_frames, settings.max_video_frames),
        video_fps=settings.video_fps,
    )
    return MediaConfig(policy=policy, limits=limits)


def load_options(settings: Settings, telemetry: Telemetry, engine_log_setup: Callable[[], None] | None) -> LoadOptions:
    return LoadOptions(
        dtype=settings.dtype,
        device=settings.device,
        attn_implementation=settings.attn_implementation,
        quantization=settings.quantization,
        trust_remote_code=settings.trust_remote_code,
        max_model_len=settings.max_model_len,
        cpu_threads=settings.cpu_threads,
        tensor_parallel_size=settings.tensor_parallel_size,
        log_setup=engine_log_setup,
        trace_steps=telemetry.tracing,
        limits=BatchLimits(
            max_batch_size=settings.max_batch_size,
            max_num_batched_tokens=settings.max_num_batched_tokens,
            cpu_prefill_s=settings.cpu_prefill_ms / 1000,
            max_kv_tokens=settings.max_kv_tokens,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            prefix_caching=settings.prefix_caching,
            max_queue=settings.max_queue,
            stream_interval=settings.stream_interval_ms / 1000,
        ),
    )


def services(settings: Settings, registry: ModelRegistry, telemetry: Telemetry, store: ResponseStore) -> State:
    """Every endpoint's service, built once; the generating ones share one ``Preparer``."""
    defaults = PromptDefaults(
        chat_template_kwargs=dict(settings.chat_template_kwargs),
        reasoning=settings.reasoning,
        default_seed=settings.default_seed,
        tool_call_parser=check_tool_parser(settings.tool_call_parser),
    )
    media = media_config(settings)
    preparer = Preparer(registry, defaults, media)
    return State(
        {
            "chat_service": ChatService(preparer),
            "completion_service": CompletionService(preparer),
            "responses_service": ResponsesService(preparer, store),
            "messages_service": AnthropicMessagesService(preparer),
            "transcription_service": TranscriptionService(registry, media),
            "embedding_service": EmbeddingService(registry),
            "rerank_service": RerankService(registry),
            "model_catalog_service": ModelCatalogService(registry),
            "tokenize_service": TokenizeService(registry, preparer),
            "health_service": HealthService(registry, store, telemetry),
        }
    )


def cors_config(settings: Settings) -> CORSConfig | None:
    if not settings.enable_cors:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID"],
    )


def create_app(
    settings: Settings,
    *,
    loader: Loader = load_model,
    engine_log_setup: Callable[[], None] | None = None,
    telemetry: Telemetry | None = None,
) -> Litestar:
    """``telemetry``: by default tracing as the ``OTEL_*`` environment says, and metrics unless turned off."""
    telemetry = telemetry or Telemetry.from_env(metrics=settings.metrics, log_setup=engine_log_setup)
    return_large_blocks()  # a huge request's memory goes back to the system once it is refused or done
    registry = ModelRegistry(
        load_options(settings, telemetry, engine_log_setup),
        idle_timeout=settings.model_timeout,
        pinned=settings.model,
        allowed_local_paths=settings.allowed_local_model_paths,
        loader=loader,
        telemetry=telemetry,
    )
    if telemetry.metrics is not None:
        telemetry.metrics.watch_engines(registry.engine_load)
    limits = StoreLimits(max_size=settings.responses_store_size, ttl=settings.responses_store_ttl)
    store = ResponseStore(open_store(settings.responses_store, limits))
    state = services(settings, registry, telemetry, store)

    @asynccontextmanager
    async def run_registry(_: Litestar) -> AsyncIterator[None]:
        telemetry.start()
        log.info("telemetry", **telemetry.describe())
        await registry.start()
        on_drain_signal(registry.start_draining)
        log.info("responses_store", url=store.url)
        try:
            yield
        finally:
            await registry.close()
            await store.close()
            telemetry.shutdown()

    middleware = [request_middleware(telemetry)]
    if settings.api_key:
        middleware.append(api_key_middleware(settings.api_key))
    state["api_document"] = document = ApiDocument(guarded_prefixes=GUARDED_PREFIXES if settings.api_key else ())
    return Litestar(
        route_handlers=[
            ChatController,
            CompletionsController,
            ResponsesController,
            MessagesController,
            TranscriptionsController,
            EmbeddingsController,
            RerankController,
            ModelCatalogController,
            HealthController,
            TokenizeController,
            openapi_json,
        ],
        dependencies={
            "chat_service": Provide(provide_chat_service, sync_to_thread=False),
            "completion_service": Provide(provide_completion_service, sync_to_thread=False),
            "responses_service": Provide(provide_responses_service, sync_to_thread=False),
            "messages_service": Provide(provide_messages_service, sync_to_thread=False),
            "transcription_service": Provide(provide_transcription_service, sync_to_thread=False),
            "model_catalog_service": Provide(provide_model_catalog_service, sync_to_thread=False),
            "embedding_service": Provide(provide_embedding_service, sync_to_thread=False),
            "rerank_service": Provide(provide_rerank_service, sync_to_thread=False),
            "health_service": Provide(provide_health_service, sync_to_thread=False),
            "tokenize_service": Provide(provide_tokenize_service, sync_to_thread=False),
        },
        exception_handlers={
            HfServeError: handle_app_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
        middleware=middleware,
        cors_config=cors_config(settings),
        lifespan=[run_registry],
        state=state,
        request_max_body_size=settings.max_body_size,
        openapi_config=openapi_config(document),
        logging_config=None,  # logging is ours (app.observability.logging), for stdlib loggers too
    )
