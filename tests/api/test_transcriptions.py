"""/v1/audio/transcriptions and /v1/audio/translations end to end: the tiny Whisper (5-second window, so
longer audio is split), the official client in every response format and streaming, Open WebUI's request,
and an English-only checkpoint that transcribes but cannot translate."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.fixtures.media_models import SPEECH_MODEL_ID, SPEECH_WINDOW_S, VISION_MODEL_ID, english_only_copy
from tests.support.media import requires_espeak, requires_ffmpeg, sine, speech
from tests.support.models import snapshot_path
from tests.support.server import ServerProcess, run_server

pytestmark = requires_ffmpeg
CUE = re.compile(r"(\d\d:\d\d:\d\d[,.]\d\d\d) --> (\d\d:\d\d:\d\d[,.]\d\d\d)")


@pytest.fixture(scope="module")
def server(media_hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(media_hf_home, logs_dir, "--model-timeout", "-1", "--api-key", "stt-key") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="stt-key", max_retries=0)


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.mp3"
    sine(path, seconds=2.0)
    return path


@pytest.fixture(scope="module")
def long_tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "long.flac"
    sine(path, seconds=12.0, frequency=300)
    return path


def _seconds(clock: str) -> float:
    hours, minutes, rest = clock.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def test_json_text_and_stream_agree(client: OpenAI, tone: Path) -> None:
    result = client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=tone, temperature=0)
    assert result.text and result.text == result.text.strip()
    assert result.usage.type == "duration" and result.usage.seconds == pytest.approx(2.0, abs=0.1)
    text = client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=tone, response_format="text")
    assert text == result.text
    events = list(client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=tone, stream=True))
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert events[-1].type == "transcript.text.done" and events[-1].text == result.text
    assert "".join(e.delta for e in events[:-1]).strip() == result.text


def test_verbose_json_srt_and_vtt_share_segments(client: OpenAI, tone: Path) -> None:
    verbose = client.audio.transcriptions.create(
        model=SPEECH_MODEL_ID, file=tone, response_format="verbose_json", timestamp_granularities=["segment"]
    )
    assert verbose.duration == pytest.approx(2.0, abs=0.1) and verbose.language and verbose.text
    assert verbose.segments and verbose.segments[0].start == 0.0
    assert all(0.0 <= s.start <= s.end <= verbose.duration + 0.01 for s in verbose.segments)
    assert "".join(s.text for s in verbose.segments).strip() == verbose.text
    assert all(s.avg_logprob <= 0.0 and s.tokens for s in verbose.segments)
    srt = client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=tone, response_format="srt")
    vtt = client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=tone, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    for body in (srt, vtt):
        cues = CUE.findall(body)
        assert [(_seconds(a), _seconds(b)) for a, b in cues] == [(s.start, s.end) for s in verbose.segments]
    assert srt.splitlines()[0] == "1"


def test_long_audio_is_split_into_windows(client: OpenAI, long_tone: Path) -> None:
    verbose = client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=long_tone, response_format="verbose_json")
    assert verbose.duration == pytest.approx(12.0, abs=0.1)
    windows = sorted({s.seek for s in verbose.segments})
    assert len(windows) >= 12 // SPEECH_WINDOW_S + 1
    assert verbose.segments[-1].end == pytest.approx(12.0, abs=0.1)
    streamed = list(client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=long_tone, stream=True))
    plain = client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=long_tone)
    assert streamed[-1].text == plain.text


def test_language_and_prompt_reach_the_decoder(client: OpenAI, tone: Path) -> None:
    verbose = client.audio.transcriptions.create(
        model=SPEECH_MODEL_ID, file=tone, response_format="verbose_json", language="fr", prompt="Paris"
    )
    assert verbose.language == "french"
    with pytest.raises(BadRequestError) as caught:
        client.audio.transcriptions.create(model=SPEECH_MODEL_ID, file=tone, language="xx")
    assert caught.value.body["param"] == "language"


def test_seeded_sampling_is_reproducible(client: OpenAI, tone: Path) -> None:
    def run() -> str:
        return client.audio.transcriptions.create(
            model=SPEECH_MODEL_ID, file=tone, temperature=0.9, extra_body={"seed": 7}
        ).text

    assert run() == run()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": SPEECH_MODEL_ID, "timestamp_granularities[]": "word", "response_format": "verbose_json"}, None),
        ({"model": SPEECH_MODEL_ID, "response_format": "xml"}, "response_format"),
        ({"model": SPEECH_MODEL_ID, "stream": "true", "response_format": "srt"}, "response_format"),
        ({"model": VISION_MODEL_ID}, "model"),
    ],
)
def test_bad_requests_are_400(server: ServerProcess, tone: Path, fields: dict[str, str], param: str | None) -> None:
    reply = httpx.post(
        f"{server.base_url}/audio/transcriptions",
        headers={"Authorization": "Bearer stt-key"},
        data=fields,
        files={"file": ("tone.mp3", tone.read_bytes(), "audio/mpeg")},
        timeout=60,
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == (param or "timestamp_granularities")


def test_missing_or_undecodable_file_is_400(server: ServerProcess) -> None:
    url, auth = f"{server.base_url}/audio/transcriptions", {"Authorization": "Bearer stt-key"}
    reply = httpx.post(url, headers=auth, data={"model": SPEECH_MODEL_ID}, files={"x": ("a", b"1")}, timeout=60)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "file"
    files = {"file": ("a.wav", b"not audio at all", "audio/wav")}
    reply = httpx.post(url, headers=auth, data={"model": SPEECH_MODEL_ID}, files=files, timeout=60)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_media"
    reply = httpx.post(url, headers=auth, json={"model": SPEECH_MODEL_ID}, timeout=60)
    assert reply.status_code == 400


@requires_espeak
def test_open_webui_stt_request(server: ServerProcess, tmp_path: Path) -> None:
    """What Open WebUI sends with "Speech-to-Text Engine: OpenAI", the server's /v1 URL and an STT model:
    a browser recording (webm/opus) as `file`, `model` as a form field, the key as a Bearer token."""
    recording = speech(tmp_path / "recording.webm")
    reply = httpx.post(
        f"{server.base_url}/audio/transcriptions",
        headers={"Authorization": "Bearer stt-key"},
        files={"file": ("recording.webm", recording, "audio/webm")},
        data={"model": SPEECH_MODEL_ID, "language": "en"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    body = json.loads(reply.text)
    assert isinstance(body["text"], str) and body["text"]
    unauthorized = httpx.post(
        f"{server.base_url}/audio/transcriptions",
        files={"file": ("recording.webm", recording, "audio/webm")},
        data={"model": SPEECH_MODEL_ID},
        timeout=60,
    )
    assert unauthorized.status_code == 401


def test_translations_answer_in_every_format(client: OpenAI, server: ServerProcess, tone: Path) -> None:
    result = client.audio.translations.create(model=SPEECH_MODEL_ID, file=tone, temperature=0)
    assert isinstance(result.text, str) and result.text == result.text.strip()
    text = client.audio.translations.create(model=SPEECH_MODEL_ID, file=tone, response_format="text")
    assert text == result.text
    srt = client.audio.translations.create(model=SPEECH_MODEL_ID, file=tone, response_format="srt")
    assert srt.splitlines()[0] == "1" and CUE.findall(srt)
    reply = httpx.post(
        f"{server.base_url}/audio/translations",
        headers={"Authorization": "Bearer stt-key"},
        data={"model": SPEECH_MODEL_ID, "response_format": "verbose_json", "prompt": "Hello"},
        files={"file": ("tone.mp3", tone.read_bytes(), "audio/mpeg")},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    verbose = reply.json()
    assert (verbose["task"], verbose["language"]) == ("translate", "english")
    assert verbose["duration"] == pytest.approx(2.0, abs=0.1) and verbose["segments"]
    with pytest.raises(BadRequestError) as caught:
        client.audio.translations.create(model=VISION_MODEL_ID, file=tone)
    assert caught.value.body["param"] == "model"


def test_an_english_only_model_transcribes_but_cannot_translate(
    media_hf_home: Path, logs_dir: Path, tmp_path: Path, tone: Path
) -> None:
    folder = english_only_copy(snapshot_path(media_hf_home, SPEECH_MODEL_ID), tmp_path / "whisper-en")
    with run_server(media_hf_home, logs_dir, str(folder)) as pinned:
        english = OpenAI(base_url=pinned.base_url, api_key="unused", max_retries=0)
        with pytest.raises(BadRequestError) as caught:
            english.audio.translations.create(model=str(folder), file=tone)
        assert caught.value.status_code == 400 and caught.value.body["param"] == "model"
        assert "cannot translate" in caught.value.body["message"]
        transcribed = english.audio.transcriptions.create(model=str(folder), file=tone, language="en")
        assert isinstance(transcribed.text, str)
