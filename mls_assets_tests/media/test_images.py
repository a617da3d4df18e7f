"""A photo's WebP variants: sizes, orientation, no metadata, and every refusal with its reason."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mls_assets.lib.media.images import VARIANTS, ImageRejected, Limits, render_variants


def jpeg(width: int, height: int, **save) -> bytes:
    image = Image.new("RGB", (width, height), (180, 120, 60))
    image.paste((20, 60, 200), (0, 0, width // 2, height // 2))  # something to resample
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, **save)
    return out.getvalue()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2600), st.integers(1, 2600))
def test_variants_fit_their_box_keep_the_aspect_ratio_and_never_upscale(width, height):
    rendered = render_variants(jpeg(width, height), "image/jpeg")
    assert list(rendered) == [v.name for v in VARIANTS]
    for variant in VARIANTS:
        out = rendered[variant.name]
        assert out.width <= min(variant.width, width) and out.height <= min(variant.height, height)
        assert out.width == min(variant.width, width) or out.height == min(variant.height, height)
        assert (
            abs(out.width / out.height - width / height) <= max(1 / out.height, 1 / out.width) * (width / height) + 0.02
        )
        decoded = Image.open(io.BytesIO(out.data))
        assert decoded.format == "WEBP" and decoded.size == (out.width, out.height)


def test_exif_orientation_is_applied_and_every_piece_of_metadata_stripped():
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to view
    exif[0x010F] = "SecretCam"  # Make
    icc = b"\x00" * 128  # an ICC profile's bytes (not a valid profile: it is only carried)
    rendered = render_variants(jpeg(1200, 600, exif=exif.tobytes(), icc_profile=icc), "image/jpeg")
    large = rendered["large"]
    assert (large.width, large.height) == (600, 1200)  # upright: portrait
    decoded = Image.open(io.BytesIO(large.data))
    assert not decoded.getexif() and "icc_profile" not in decoded.info and "xmp" not in decoded.info
    assert b"SecretCam" not in large.data


def test_transparency_is_kept():
    out = io.BytesIO()
    Image.new("RGBA", (400, 300), (10, 20, 30, 0)).save(out, "PNG")
    decoded = Image.open(io.BytesIO(render_variants(out.getvalue(), "image/png")["medium"].data))
    assert decoded.mode == "RGBA"


def refused(content: bytes, content_type: str | None = "image/jpeg", limits: Limits = Limits()) -> str:
    with pytest.raises(ImageRejected) as raised:
        render_variants(content, content_type, limits)
    return raised.value.reason


def test_what_is_not_a_photo_is_refused_with_its_reason():
    photo = jpeg(800, 600)
    assert refused(photo, "text/html; charset=utf-8") == "content_type"
    assert refused(photo, limits=Limits(max_bytes=len(photo) - 1)) == "too_large"
    assert refused(photo[: len(photo) // 2]) == "undecodable"  # truncated
    assert refused(b"\xff\xd8\xff" + bytes(range(256)) * 40) == "undecodable"  # corrupt
    assert refused(b"<html>not found</html>", None) == "undecodable"
    tiff = io.BytesIO()
    Image.new("RGB", (50, 50)).save(tiff, "TIFF")
    assert refused(tiff.getvalue(), "image/tiff") == "undecodable"  # not a photo format here


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding():
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")  # 100 million pixels in a few kilobytes
    assert len(bomb.getvalue()) < 200_000
    assert refused(bomb.getvalue(), "image/png") == "too_many_pixels"
    assert refused(jpeg(300, 300), limits=Limits(max_pixels=300 * 300 - 1)) == "too_many_pixels"
