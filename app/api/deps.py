"""Dependency providers: services live in ``app.state``, built once by ``create_app``."""

from __future__ import annotations

from litestar.datastructures import State

from app.serving.anthropic_messages import AnthropicMessagesService
from app.serving.chat import ChatService
from app.serving.completions import CompletionService
from app.serving.embeddings import EmbeddingService
from app.serving.health import HealthService
from app.serving.model_catalog import ModelCatalogService
from app.serving.rerank import RerankService
from app.serving.responses import ResponsesService
from app.serving.tokenize import TokenizeService
from app.serving.transcriptions import TranscriptionService


def provide_chat_service(state: State) -> ChatService:
    return state.chat_service


def provide_completion_service(state: State) -> CompletionService:
    return state.completion_service


def provide_model_catalog_service(state: State) -> ModelCatalogService:
    return state.model_catalog_service


def provide_health_service(state: State) -> HealthService:
    return state.health_service


def provide_responses_service(state: State) -> ResponsesService:
    return state.responses_service


def provide_transcription_service(state: State) -> TranscriptionService:
    return state.transcription_service


def provide_tokenize_service(state: State) -> TokenizeService:
    return state.tokenize_service


def provide_messages_service(state: State) -> AnthropicMessagesService:
    return state.messages_service


def provide_embedding_service(state: State) -> EmbeddingService:
    return state.embedding_service


def provide_rerank_service(state: State) -> RerankService:
    return state.rerank_service
