"""POST /v1/audio/transcriptions and POST /v1/audio/translations (multipart/form-data, as OpenAI takes
them): one form reader and one way to answer; the service decides the task by the request's type."""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Controller, Request, Response, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.response import Stream
from pydantic import ValidationError

from app.api.body import validation_error
from app.api.delivery import sse_response
from app.api.disconnect import unless_disconnected
from app.api.openapi import documented
from app.errors import InvalidRequest, PayloadTooLarge
from app.protocol.audio import (
    Transcription,
    TranscriptionRequest,
    TranscriptionVerbose,
    TranscriptTextDelta,
    TranscriptTextDone,
    TranslationRequest,
)
from app.serving.subtitles import to_srt, to_vtt
from app.serving.transcriptions import TranscriptionService

_LISTS = {"timestamp_granularities", "include"}
FormT = TypeVar("FormT", bound=TranslationRequest)


async def _read_form(request: Request[Any, Any, Any], model: type[FormT]) -> tuple[FormT, bytes]:
    if not request.content_type[0].startswith("multipart/form-data"):
        raise InvalidRequest("Send the audio as multipart/form-data with a `file` field.", param="file")
    try:
        form = await request.form()
    except ClientException as exc:
        # Litestar reports a body past --max-body-size, and a part past the parser's limits, as
        # "Request Entity Too Large" (the latter with a 400 status, kept for its own compatibility).
        if exc.status_code == 413 or exc.detail == "Request Entity Too Large":
            message = "The upload is larger than this server accepts (--max-body-size)."
            raise PayloadTooLarge(message, param="file") from exc
        raise InvalidRequest(f"The multipart body cannot be read: {exc.detail}", param="file") from exc
    fields: dict[str, Any] = {}
    upload: UploadFile | None = None
    for key, value in form.multi_items():
        name = key.removesuffix("[]")
        if isinstance(value, UploadFile):
            if name == "file":
                upload = value
            continue
        if name in _LISTS:
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    if upload is None:
        raise InvalidRequest("The `file` field (the audio) is missing.", param="file")
    try:
        parsed = model.model_validate(fields)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    return parsed, await upload.read()


async def _answer(
    request: Request[Any, Any, Any], service: TranscriptionService, body: TranslationRequest, audio: bytes
) -> Response[bytes] | Stream:
    prepared = await service.prepare(body, audio)  # errors: before any response
    if isinstance(body, TranscriptionRequest) and body.stream:
        return sse_response(service.stream(prepared), done=False)
    result = await unless_disconnected(request, service.complete(prepared))
    if body.response_format == "text":
        return Response(result.text.encode(), media_type="text/plain; charset=utf-8")
    if body.response_format in ("srt", "vtt"):
        assert isinstance(result, TranscriptionVerbose)
        text = to_srt(result.segments) if body.response_format == "srt" else to_vtt(result.segments)
        return Response(text.encode(), media_type="text/plain; charset=utf-8")
    payload = result.model_dump_json(exclude_none=True).encode()
    return Response(payload, media_type="application/json")


class TranscriptionsController(Controller):
    path = "/v1/audio"

    @post(
        "/transcriptions",
        status_code=200,
        operation_id="createTranscription",
        summary="Transcribe audio",
        opt=documented(
            TranscriptionRequest,
            form=True,
            json=Transcription | TranscriptionVerbose,
            stream=TranscriptTextDelta | TranscriptTextDone,
            text=True,
            stream_done=False,
        ),
    )
    async def transcribe(
        self, request: Request, transcription_service: TranscriptionService
    ) -> Response[bytes] | Stream:
        body, audio = await _read_form(request, TranscriptionRequest)
        return await _answer(request, transcription_service, body, audio)

    @post(
        "/translations",
        status_code=200,
        operation_id="createTranslation",
        summary="Translate audio into English",
        opt=documented(TranslationRequest, form=True, json=Transcription | TranscriptionVerbose, text=True),
    )
    async def translate(
        self, request: Request, transcription_service: TranscriptionService
    ) -> Response[bytes] | Stream:
        body, audio = await _read_form(request, TranslationRequest)
        return await _answer(request, transcription_service, body, audio)
