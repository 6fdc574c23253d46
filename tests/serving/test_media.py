"""A request's media loaded in parallel within its limits, each failure an HTTP error naming its part."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from app.engine.types import ModelInfo
from app.errors import HfServeError, InvalidRequest, PayloadTooLarge
from app.media.limits import FetchPolicy, MediaLimits
from app.serving.media import MediaConfig, MediaRef, load_media
from tests.support.media import b64, data_url, png, requires_ffmpeg, sine, video

VISION = ModelInfo("m", 64, (), {}, modalities=frozenset({"text", "image", "video"}))
OMNI = ModelInfo("m", 64, (), {}, modalities=frozenset({"text", "audio", "video"}), audio_sampling_rate=8000)


def image(param: str, data: bytes) -> MediaRef:
    return MediaRef("image", "image_url", param, url=data_url(data, "image/png"))


async def test_images_come_back_in_prompt_order() -> None:
    refs = [image("messages[0].content[0]", png((255, 0, 0))), image("messages[0].content[2]", png((0, 255, 0)))]
    media = await load_media(refs, VISION, MediaConfig())
    assert [img.getpixel((0, 0)) for img in media.images] == [(255, 0, 0), (0, 255, 0)]
    assert media.audios == media.videos == media.video_audios == []


@requires_ffmpeg
async def test_audio_and_video_decode_at_the_model_rate(tmp_path: Path) -> None:
    refs = [
        MediaRef("audio", "input_audio", "a", data=b64(sine(tmp_path / "tone.wav")), format="wav"),
        MediaRef("video", "video_url", "v", url=data_url(video(tmp_path / "clip.mp4"), "video/mp4"), num_frames=3),
    ]
    media = await load_media(refs, OMNI, MediaConfig())
    assert len(media.audios) == 1 and media.audios[0].dtype == np.float32
    assert 7500 <= media.audios[0].size <= 9000  # one second at the model's 8 kHz
    assert media.videos[0].shape[0] == 3
    assert len(media.video_audios) == 1  # the model takes audio, so the track comes along


@requires_ffmpeg
async def test_a_video_track_is_dropped_for_a_model_without_audio(tmp_path: Path) -> None:
    ref = MediaRef("video", "video_url", "v", url=data_url(video(tmp_path / "clip.mp4"), "video/mp4"))
    media = await load_media([ref], VISION, MediaConfig(limits=MediaLimits(video_frames=2)))
    assert media.videos[0].shape[0] == 2 and media.video_audios == []


async def test_the_byte_budget_is_shared_by_the_parts() -> None:
    data = png(size=(64, 64))
    config = MediaConfig(limits=MediaLimits(max_bytes=len(data) + len(data) // 2))
    assert len((await load_media([image("p0", data)], VISION, config)).images) == 1
    with pytest.raises(PayloadTooLarge) as caught:
        await load_media([image("p0", data), image("p1", data)], VISION, config)
    assert caught.value.status == 413 and caught.value.param in ("p0", "p1")


async def test_bad_parts_are_400s_naming_the_part() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await load_media([image("ok", png()), image("broken", b"not an image")], VISION, MediaConfig())
    assert (caught.value.param, caught.value.code) == ("broken", "invalid_media")
    with pytest.raises(InvalidRequest) as caught:
        await load_media([MediaRef("audio", "input_audio", "a", data="%%%", format="wav")], OMNI, MediaConfig())
    assert "base64" in caught.value.message and caught.value.code == "invalid_media"


async def test_refused_urls_are_400s_with_their_own_code() -> None:
    private = MediaRef("image", "image_url", "p", url="http://127.0.0.1:9/x.png")
    with pytest.raises(InvalidRequest) as caught:
        await load_media([private], VISION, MediaConfig(policy=FetchPolicy(timeout=1)))
    assert (caught.value.param, caught.value.code) == ("p", "media_refused")


async def test_inline_audio_larger_than_the_budget_is_refused_before_decoding() -> None:
    config = MediaConfig(limits=MediaLimits(max_bytes=100))
    ref = MediaRef("audio", "input_audio", "a", data=b64(bytes(1000)), format="wav")
    with pytest.raises(PayloadTooLarge, match="larger than the bytes left"):
        await load_media([ref], OMNI, config)


def _no_binary() -> str:
    raise RuntimeError("No ffmpeg exe could be found.")


async def test_a_missing_decoder_is_the_servers_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = MediaRef("audio", "input_audio", "a", data=b64(b"RIFF0000WAVE"), format="wav")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on this server,
    # and imageio-ffmpeg has no binary for its platform (a stand-in: every platform it is tested on has one)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", _no_binary)
    with pytest.raises(HfServeError) as caught:
        await load_media([ref], OMNI, MediaConfig())
    assert (caught.value.status, caught.value.code, caught.value.param) == (500, "media_decoder_unavailable", "a")
