"""Decoding images made in the test (PIL), within the pixel limit."""

from __future__ import annotations

import pytest

from app.media.failures import MediaError
from app.media.image import decode_image
from tests.support.media import png


def test_images_decode_to_rgb_within_the_pixel_limit() -> None:
    image = decode_image(png((0, 0, 255), (40, 30)), max_pixels=1200)
    assert image.mode == "RGB" and image.size == (40, 30) and image.getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(MediaError) as caught:
        decode_image(png(size=(40, 31)), max_pixels=1200)
    assert caught.value.kind == "too_large"
    with pytest.raises(MediaError) as caught:
        decode_image(b"not an image", max_pixels=1200)
    assert caught.value.kind == "invalid"
