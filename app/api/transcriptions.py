"""POST /v1/audio/transcriptions (multipart/form-data, as OpenAI takes it)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.response import Stream
from pydantic import ValidationError

from app.api.body import validation_error
from app.api.delivery import sse_response
from app.api.disconnect import unless_disconnected
from app.api.openapi import documented
from app.errors import InvalidRequest
from app.protocol.audio import (
    Transcription,
    TranscriptionRequest,
    TranscriptionVerbose,
    TranscriptTextDelta,
    TranscriptTextDone,
)
from app.serving.subtitles import to_srt, to_vtt
from app.serving.transcriptions import TranscriptionService

_LISTS = {"timestamp_granularities", "include"}


async def _read_form(request: Request[Any, Any, Any]) -> tuple[TranscriptionRequest, bytes]:
    if not request.content_type[0].startswith("multipart/form-data"):
        raise InvalidRequest("Send the audio as multipart/form-data with a `file` field.", param="file")
    try:
        form = await request.form()
    except ClientException as exc:
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
        parsed = TranscriptionRequest.model_validate(fields)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    return parsed, await upload.read()


class TranscriptionsController(Controller):
    path = "/v1/audio/transcriptions"

    @post(
        "",
        status_code=200,
        operation_id="createTranscription",
        opt=documented(
            TranscriptionRequest,
            form=True,
            json=Transcription | TranscriptionVerbose,
            stream=TranscriptTextDelta | TranscriptTextDone,
            text=True,
            stream_done=False,
        ),
    )
    async def create(self, request: Request, transcription_service: TranscriptionService) -> Response[bytes] | Stream:
        body, audio = await _read_form(request)
        prepared = await transcription_service.prepare(body, audio)  # errors: before any response
        if body.stream:
            return sse_response(transcription_service.stream(prepared), done=False)
        result = await unless_disconnected(request, transcription_service.complete(prepared))
        if body.response_format == "text":
            return Response(result.text.encode(), media_type="text/plain; charset=utf-8")
        if body.response_format in ("srt", "vtt"):
            assert isinstance(result, TranscriptionVerbose)
            text = to_srt(result.segments) if body.response_format == "srt" else to_vtt(result.segments)
            return Response(text.encode(), media_type="text/plain; charset=utf-8")
        payload = result.model_dump_json(exclude_none=True).encode()
        return Response(payload, media_type="application/json")
