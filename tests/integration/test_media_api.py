"""Images, audio and video through /v1/chat/completions and /v1/responses: a real server, the tiny
LLaVA / Qwen2-Audio models, the official client, media made here and served from loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.fixtures.media_models import AUDIO_MODEL_ID, IMAGE_TOKENS_PER_IMAGE, VISION_MODEL_ID
from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.support.media import (
    MediaServer,
    b64,
    data_url,
    media_server,
    path_without_system_ffmpeg,
    pcm_wav,
    png,
    requires_ffmpeg,
    sine,
    video,
)
from tests.support.server import ServerProcess, run_server

QUESTION = {"type": "text", "text": "What is in this picture?"}


@pytest.fixture(scope="module")
def files() -> Iterator[MediaServer]:
    with media_server() as running:
        yield running


@pytest.fixture(scope="module")
def server(media_hf_home: Path, logs_dir: Path, files: MediaServer) -> Iterator[ServerProcess]:
    """Trusts the loopback media server by address (127.0.0.1), and nothing else that is private."""
    args = ("--model-timeout", "-1", "--allowed-media-hosts", "127.0.0.1", "--max-media-bytes", "200000")
    with run_server(media_hf_home, logs_dir, *args) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def _image_chat(client: OpenAI, image_url: str, **kwargs: Any) -> Any:
    messages = [{"role": "user", "content": [QUESTION, {"type": "image_url", "image_url": {"url": image_url}}]}]
    return client.chat.completions.create(model=VISION_MODEL_ID, messages=messages, max_tokens=3, **kwargs)


def _error(server: ServerProcess, body: dict[str, Any], status: int = 400) -> dict[str, Any]:
    reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=60)
    assert reply.status_code == status, reply.text
    return reply.json()["error"]


def test_image_grows_the_prompt_by_its_tokens(client: OpenAI, files: MediaServer) -> None:
    text_only = client.chat.completions.create(
        model=VISION_MODEL_ID, messages=[{"role": "user", "content": [QUESTION]}], max_tokens=3, temperature=0
    )
    by_data = _image_chat(client, data_url(png(), "image/png"), temperature=0)
    by_http = _image_chat(client, files.file("/red.png", png(), "image/png"), temperature=0)
    assert by_data.usage.prompt_tokens == text_only.usage.prompt_tokens + IMAGE_TOKENS_PER_IMAGE
    assert by_http.usage.prompt_tokens == by_data.usage.prompt_tokens
    assert by_http.choices[0].message.content == by_data.choices[0].message.content
    assert by_data.usage.completion_tokens == 3


def test_the_pixels_reach_the_model(client: OpenAI) -> None:
    def first_logprobs(color: tuple[int, int, int]) -> list[float]:
        reply = _image_chat(client, data_url(png(color), "image/png"), temperature=0, logprobs=True, top_logprobs=5)
        return [top.logprob for top in reply.choices[0].logprobs.content[0].top_logprobs]

    red, blue = first_logprobs((255, 0, 0)), first_logprobs((0, 0, 255))
    assert red == first_logprobs((255, 0, 0))
    assert red != blue


def test_image_stream_matches_non_stream(client: OpenAI) -> None:
    url = data_url(png((0, 255, 0)), "image/png")
    whole = _image_chat(client, url, temperature=0)
    chunks = list(_image_chat(client, url, temperature=0, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_responses_input_image(client: OpenAI, files: MediaServer) -> None:
    url = files.file("/green.png", png((0, 255, 0)), "image/png")
    content = [{"type": "input_text", "text": "What is in this picture?"}, {"type": "input_image", "image_url": url}]
    plain = client.responses.create(
        model=VISION_MODEL_ID, input=[{"role": "user", "content": content[:1]}], max_output_tokens=2
    )
    response = client.responses.create(
        model=VISION_MODEL_ID, input=[{"role": "user", "content": content}], max_output_tokens=2
    )
    assert response.usage.input_tokens == plain.usage.input_tokens + IMAGE_TOKENS_PER_IMAGE
    events = list(
        client.responses.create(
            model=VISION_MODEL_ID, input=[{"role": "user", "content": content}], max_output_tokens=2, stream=True
        )
    )
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert events[-1].response.usage.input_tokens == response.usage.input_tokens


@requires_ffmpeg
@pytest.mark.parametrize(("suffix", "fmt"), [(".wav", "wav"), (".mp3", "mp3"), (".flac", "flac"), (".ogg", None)])
def test_input_audio_grows_the_prompt_with_its_length(
    client: OpenAI, tmp_path: Path, suffix: str, fmt: str | None
) -> None:
    def prompt_tokens(seconds: float) -> int:
        audio: dict[str, Any] = {"data": b64(sine(tmp_path / f"{seconds}{suffix}", seconds=seconds))}
        if fmt:
            audio["format"] = fmt
        content = [{"type": "text", "text": "What is this?"}, {"type": "input_audio", "input_audio": audio}]
        reply = client.chat.completions.create(
            model=AUDIO_MODEL_ID, messages=[{"role": "user", "content": content}], max_tokens=2
        )
        return reply.usage.prompt_tokens

    one, two = prompt_tokens(1.0), prompt_tokens(2.0)
    assert two - one == 25  # 25 audio tokens a second (4x downsampling of 100 mel frames)


@requires_ffmpeg
def test_audio_url_and_responses_input_audio(client: OpenAI, files: MediaServer, tmp_path: Path) -> None:
    wav = sine(tmp_path / "tone.wav", seconds=1.0)
    url = files.file("/tone.wav", wav, "audio/wav")
    by_url = client.chat.completions.create(
        model=AUDIO_MODEL_ID,
        messages=[{"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": url}}]}],
        max_tokens=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = list(by_url)[-1].usage
    content = [{"type": "input_audio", "input_audio": {"data": b64(wav), "format": "wav"}}]
    response = client.responses.create(
        model=AUDIO_MODEL_ID, input=[{"role": "user", "content": content}], max_output_tokens=2
    )
    assert response.usage.input_tokens == usage.prompt_tokens


def test_a_model_without_the_modality_answers_400_naming_the_part(server: ServerProcess) -> None:
    image = {"type": "image_url", "image_url": {"url": data_url(png(), "image/png")}}
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    video_part = {"type": "video_url", "video_url": {"url": "http://127.0.0.1:9/clip.mp4"}}
    cases = [
        (CHAT_MODEL_ID, image, "image"),
        (VISION_MODEL_ID, audio, "audio"),
        (AUDIO_MODEL_ID, image, "image"),
        (VISION_MODEL_ID, video_part, "video"),
    ]
    for model, part, kind in cases:
        body = {"model": model, "messages": [{"role": "user", "content": [QUESTION, part]}]}
        error = _error(server, body)
        assert error["param"] == "messages[0].content[1]"
        assert f"does not take {kind} input" in error["message"]
    reply = httpx.post(
        f"{server.base_url}/responses",
        json={
            "model": CHAT_MODEL_ID,
            "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
        },
        timeout=60,
    )
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "input[0].content[0]"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://10.20.30.40/x.png", "non-public address (10.20.30.40)"),
        ("http://169.254.169.254/latest/meta-data/", "non-public address (169.254.169.254)"),
        ("http://localhost:{port}/red.png", "`localhost`"),
        ("http://127.0.0.1:{port}/to-localhost", "`localhost`"),
        ("file:///etc/passwd", "file:// URLs are disabled"),
        ("gopher://127.0.0.1/", "Unsupported URL scheme"),
    ],
)
def test_fetches_that_could_reach_the_host_are_refused(
    server: ServerProcess, files: MediaServer, url: str, needle: str
) -> None:
    files.file("/red.png", png(), "image/png")
    files.redirect("/to-localhost", f"http://localhost:{files.port}/red.png")
    hits = len(files.hits)
    image = {"type": "image_url", "image_url": {"url": url.format(port=files.port)}}
    error = _error(server, {"model": VISION_MODEL_ID, "messages": [{"role": "user", "content": [QUESTION, image]}]})
    assert needle in error["message"] and error["param"] == "messages[0].content[1]"
    assert error["code"] == "media_refused"
    assert [h for h in files.hits[hits:] if h != "/to-localhost"] == []  # the refused target was never fetched


def test_loopback_is_refused_by_a_server_that_does_not_allow_it(
    media_hf_home: Path, logs_dir: Path, files: MediaServer
) -> None:
    url = files.file("/red.png", png(), "image/png")
    hits = len(files.hits)
    with run_server(media_hf_home, logs_dir, "--model-timeout", "-1") as strict:
        image = {"type": "image_url", "image_url": {"url": url}}
        error = _error(strict, {"model": VISION_MODEL_ID, "messages": [{"role": "user", "content": [image]}]})
    assert "non-public address (127.0.0.1)" in error["message"]
    assert len(files.hits) == hits


def test_media_limits_answer_413_or_400(server: ServerProcess, files: MediaServer) -> None:
    big = files.file("/big.png", png(size=(400, 400)) + b"\0" * 300_000, "image/png")
    error = _error(
        server,
        {
            "model": VISION_MODEL_ID,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": big}}]}],
        },
        413,
    )
    assert error["param"] == "messages[0].content[0]" and "--max-media-bytes" in error["message"]
    broken = {"type": "image_url", "image_url": {"url": data_url(b"not an image", "image/png")}}
    error = _error(server, {"model": VISION_MODEL_ID, "messages": [{"role": "user", "content": [broken]}]})
    assert error["code"] == "invalid_media"
    many = [{"type": "image_url", "image_url": {"url": data_url(png(), "image/png")}}] * 17
    error = _error(server, {"model": VISION_MODEL_ID, "messages": [{"role": "user", "content": many}]})
    assert "--max-media-per-request" in error["message"]


@requires_ffmpeg
def test_video_reaches_the_processor_or_is_refused_clearly(client: OpenAI, files: MediaServer, tmp_path: Path) -> None:
    """The tiny models here take no video (transformers' video processors need torchvision, which does not
    import on CPU-only machines); decoding frames and the audio track is tested in tests/media. What a
    user sees here is a 400 naming the part, never a silent drop."""
    url = files.file("/clip.mp4", video(tmp_path / "clip.mp4"), "video/mp4")
    part = {"type": "video_url", "video_url": {"url": url, "num_frames": 4}}
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model=VISION_MODEL_ID, messages=[{"role": "user", "content": [part]}])
    assert caught.value.body["param"] == "messages[0].content[0]"


def test_a_wav_in_chat_needs_no_system_ffmpeg(media_hf_home: Path, logs_dir: Path) -> None:
    """A pip-only install (no ffmpeg on PATH): the server decodes with the ffmpeg imageio-ffmpeg bundles."""
    hidden = {"PATH": path_without_system_ffmpeg()}
    with run_server(media_hf_home, logs_dir, AUDIO_MODEL_ID, env=hidden) as proc:
        client = OpenAI(base_url=proc.base_url, api_key="unused", max_retries=0)
        audio = {"data": b64(pcm_wav(1.0)), "format": "wav"}
        content = [{"type": "text", "text": "What is this?"}, {"type": "input_audio", "input_audio": audio}]
        reply = client.chat.completions.create(
            model=AUDIO_MODEL_ID, messages=[{"role": "user", "content": content}], max_tokens=2
        )
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.prompt_tokens > 25
