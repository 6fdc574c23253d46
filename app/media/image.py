"""Image decoding with a pixel limit checked before the pixels are decoded."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from app.media.failures import MediaError

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """An RGB image (the first frame of an animation); refuses images over ``max_pixels`` before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise MediaError(
                        f"The image is {width}x{height} pixels; at most {max_pixels} pixels are accepted "
                        "(--max-image-pixels).",
                        "too_large",
                    )
                image.seek(0)
                image.load()
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("The image has too many pixels.", "too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MediaError(f"The data is not an image this server can read ({', '.join(FORMATS)}).") from exc
