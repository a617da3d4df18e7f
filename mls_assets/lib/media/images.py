"""One photo's bytes, checked and rendered as the three WebP variants a website shows.

    rendered = render_variants(content, content_type="image/jpeg")
    rendered["medium"].data  # WebP bytes, at most 800x600, the aspect ratio kept

What is refused, each as `ImageRejected` with a short `reason` (the photo's state says it):
`content_type` (not an image), `too_large` (more bytes than `Limits.max_bytes`),
`too_many_pixels` (a decompression bomb: dimensions read from the header, before any
decoding), `undecodable` (truncated, corrupt, or a format that is not a photo's). The
variants keep the aspect ratio, are never upscaled, are turned upright by the EXIF
orientation, and carry no metadata (no EXIF, no ICC profile, no XMP): a photo's GPS tags or
camera serials never reach the website.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "MPO"})  # what an MLS serves as a photo (MPO: camera JPEG)
QUALITY = 90


@dataclass(frozen=True)
class Variant:
    name: str
    width: int
    height: int


VARIANTS = (Variant("large", 1920, 1440), Variant("medium", 800, 600), Variant("thumbnail", 200, 150))


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 30 * 1024 * 1024
    max_pixels: int = 60_000_000  # ~ a 9,500 x 6,300 photo; a bomb declares far more


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int


class ImageRejected(ValueError):
    """A photo that cannot be shown: `reason` is one of the documented codes."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def open_checked(content: bytes, content_type: str | None, limits: Limits = Limits()) -> Image.Image:
    """The image, opened and checked but not yet decoded (its header read)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not kind.startswith("image/") and kind != "application/octet-stream":
        raise ImageRejected("content_type", f"served as {kind[:60]!r}, not an image")
    if len(content) > limits.max_bytes:
        raise ImageRejected("too_large", f"{len(content):,} bytes, more than {limits.max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageRejected("too_many_pixels", str(error)[:160]) from None
    except (UnidentifiedImageError, OSError) as error:
        raise ImageRejected("undecodable", f"{type(error).__name__}: {str(error)[:120]}") from None
    if image.format not in FORMATS:
        raise ImageRejected("undecodable", f"{image.format} is not a photo format")
    width, height = image.size
    if width < 1 or height < 1 or width * height > limits.max_pixels:
        raise ImageRejected("too_many_pixels", f"{width}x{height} is more than {limits.max_pixels:,} pixels")
    return image


def render_variants(
    content: bytes, content_type: str | None = None, limits: Limits = Limits(), quality: int = QUALITY
) -> dict[str, Rendered]:
    """The photo as WebP at each of `VARIANTS`' sizes, largest first (each made from the one
    before: one full decode per photo)."""
    image = open_checked(content, content_type, limits)
    largest = VARIANTS[0]
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", (largest.width, largest.height))  # decode at a reduced scale when it is big
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageRejected("undecodable", f"{type(error).__name__}: {str(error)[:120]}") from None
    has_alpha = upright.mode in ("RGBA", "LA") or (upright.mode == "P" and "transparency" in upright.info)
    current = upright.convert("RGBA" if has_alpha else "RGB")
    rendered = {}
    for variant in VARIANTS:
        current = current.copy()
        current.thumbnail((variant.width, variant.height), Image.Resampling.LANCZOS)  # shrinks only
        current.info.clear()
        out = io.BytesIO()
        current.save(out, format="WEBP", quality=quality, method=4, exif=b"", icc_profile=None, xmp=b"")
        rendered[variant.name] = Rendered(out.getvalue(), *current.size)
    return rendered
