"""The HTTP side of ``hfserve chat``: an OpenAI-compatible server's models, its ``/load_model`` progress
(hfserve and ``transformers serve``), and streamed chat completions, as plain values.

Only httpx and httpx-sse: the chat command must start fast and work against any OpenAI-compatible server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError, connect_sse

DEFAULT_URL = "http://127.0.0.1:8000"
_CONNECT_TIMEOUT = 10.0


class ChatClientError(Exception):
    """Anything the chat command reports in one line (never a traceback)."""


class ServerUnreachable(ChatClientError):
    pass


class ServerError(ChatClientError):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(f"the server answered {status}: {message}")
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of a streamed answer: ``kind`` is ``content`` or ``reasoning``."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


def root_url(url: str) -> str:
    """The server's root: a scheme is added when missing, and a trailing ``/v1`` is dropped."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url.removesuffix("/v1")


def error_of(response: httpx.Response) -> ServerError:
    """The server's message, from OpenAI's error shape or whatever JSON or text came back."""
    response.read()
    try:
        body = response.json()
    except ValueError:
        return ServerError(response.status_code, response.text.strip()[:300] or response.reason_phrase)
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or json.dumps(error)
        return ServerError(response.status_code, str(message), error.get("code"))
    return ServerError(response.status_code, str(error))


def _reasoning_of(delta: Mapping[str, Any]) -> str | None:
    """vLLM and hfserve send ``reasoning_content``; newer servers send ``reasoning``."""
    for name in ("reasoning_content", "reasoning"):
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return None


class ChatServer:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = root_url(url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(None, connect=_CONNECT_TIMEOUT)  # answers and loads may take long
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _unreachable(self, exc: httpx.TransportError) -> ChatClientError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            reason = "connection refused" if isinstance(exc, httpx.ConnectError) else "no answer"
            return ServerUnreachable(f"no server answers at {self.url} ({reason}). Start one with `hfserve serve`.")
        return ChatClientError(f"the connection to {self.url} broke ({type(exc).__name__}: {exc}).")

    def models(self) -> list[str]:
        """The ids ``/v1/models`` lists, in its order."""
        try:
            response = self._http.get("/v1/models", timeout=30)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code != 200:
            raise error_of(response)
        try:
            data = response.json().get("data") or []
        except (ValueError, AttributeError) as exc:
            raise ChatClientError(f"{self.url}/v1/models did not answer with a model list.") from exc
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]

    def load_events(self, model: str) -> Iterator[dict[str, Any]]:
        """``/load_model``'s events (``status``, ``stage``, ``progress``, ...); none when the server has no
        such endpoint (a plain OpenAI-compatible server). An unknown model is a ``ServerError``."""
        try:
            with connect_sse(self._http, "POST", "/load_model", json={"model": model}) as source:
                if source.response.status_code in (404, 405):
                    error = error_of(source.response)
                    if error.code == "model_not_found":
                        raise error
                    return
                yield from self._events(source)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def stream_chat(
        self, model: str, messages: list[dict[str, Any]], settings: Mapping[str, Any]
    ) -> Iterator[Delta | Usage]:
        """A streamed chat completion's text pieces, then its usage when the server reports it."""
        body = {
            **settings,
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            with connect_sse(self._http, "POST", "/v1/chat/completions", json=body) as source:
                for chunk in self._events(source):
                    yield from _chunk_pieces(chunk)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    @staticmethod
    def _events(source: EventSource) -> Iterator[dict[str, Any]]:
        if source.response.status_code != 200:
            raise error_of(source.response)
        try:
            for event in source.iter_sse():
                if event.data == "[DONE]":
                    return
                if not event.data:
                    continue
                payload = json.loads(event.data)
                if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                    error = payload["error"]
                    raise ServerError(200, str(error.get("message") or error), error.get("code"))
                yield payload
        except (SSEError, ValueError) as exc:
            raise ChatClientError(f"the server's stream could not be read: {exc}") from exc


def _chunk_pieces(chunk: Mapping[str, Any]) -> Iterator[Delta | Usage]:
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        reasoning = _reasoning_of(delta)
        if reasoning:
            yield Delta("reasoning", reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            yield Delta("content", content)
    usage = chunk.get("usage")
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        yield Usage(int(usage["prompt_tokens"]), int(usage.get("completion_tokens") or 0))
