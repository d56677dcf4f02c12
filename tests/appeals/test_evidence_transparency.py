"""A screenshot with transparent parts looks to staff as it looked to the resident: the stored PNG
keeps its transparency (a tRNS grey value or RGB colour, a palette entry, an alpha band) and the
thumbnail shows transparent parts over white, never the colour hidden under them (often black)."""

import io

import pytest
from PIL import Image

from appeals.evidence import clean_image
from tests.factories.appeals import upload

W, H = 80, 40
GREY, RED = (200, 200, 200), (200, 30, 30)
CONTENT = {"1": (255, 255, 255), "L": GREY, "I;16": GREY, "RGB": RED, "P": RED, "LA": GREY, "RGBA": RED}


def _png(mode: str) -> bytes:
    """Left half the content (a light grey or red, what the resident sees), right half transparent
    with black under it, in the given PNG colour type; made and saved by Pillow."""
    params = {}
    if mode == "1":
        image = Image.new("1", (W, H), 0)
        image.paste(1, (0, 0, W // 2, H))
        params["transparency"] = 0
    elif mode == "L":
        image = Image.new("L", (W, H), 0)
        image.paste(200, (0, 0, W // 2, H))
        params["transparency"] = 0
    elif mode == "I;16":
        image = Image.new("I;16", (W, H), 0)
        image.paste(51400, (0, 0, W // 2, H))  # 200 of 255
        params["transparency"] = 0
    elif mode == "RGB":
        image = Image.new("RGB", (W, H), (0, 0, 0))
        image.paste((200, 30, 30), (0, 0, W // 2, H))
        params["transparency"] = (0, 0, 0)
    elif mode == "P":
        image = Image.new("P", (W, H), 0)
        image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
        image.paste(1, (0, 0, W // 2, H))
        params["transparency"] = 0
    elif mode == "LA":
        image = Image.new("LA", (W, H), (0, 0))
        image.paste((200, 255), (0, 0, W // 2, H))
    else:
        image = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        image.paste((200, 30, 30, 255), (0, 0, W // 2, H))
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["1", "L", "I;16", "RGB", "P", "LA", "RGBA"])
def test_transparent_parts_stay_transparent_and_the_thumbnail_shows_them_over_white(mode):
    # given a PNG screenshot whose right half is transparent over black
    data = _png(mode)
    original = Image.open(io.BytesIO(data)).convert("RGBA")
    assert original.getpixel((W - 5, H // 2))[3] == 0 and original.getpixel((5, H // 2))[3] == 255
    assert original.getpixel((W - 5, H // 2))[:3] == (0, 0, 0)
    # when it is cleaned
    cleaned = clean_image(upload("shot.png", data))
    # then the stored picture is transparent where the resident's was, and opaque content elsewhere
    stored = Image.open(io.BytesIO(cleaned.data))
    assert stored.format == "PNG"
    rgba = stored.convert("RGBA")
    assert rgba.getpixel((W - 5, H // 2))[3] == 0
    content = CONTENT[mode]
    assert rgba.getpixel((5, H // 2)) == (*content, 255)
    # and the thumbnail (a JPEG) shows the transparent half white, the content as it was
    thumb = Image.open(io.BytesIO(cleaned.thumbnail)).convert("RGB")
    assert min(thumb.getpixel((thumb.width - 3, thumb.height // 2))) > 240
    assert all(abs(a - b) < 12 for a, b in zip(thumb.getpixel((3, thumb.height // 2)), content, strict=True))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_an_opaque_png_stays_opaque_in_its_own_mode(mode):
    image = Image.new(mode, (W, H), 0)
    out = io.BytesIO()
    image.save(out, "PNG")
    cleaned = clean_image(upload("shot.png", out.getvalue()))
    stored = Image.open(io.BytesIO(cleaned.data))
    assert stored.mode == mode and "transparency" not in stored.info
    assert max(Image.open(io.BytesIO(cleaned.thumbnail)).convert("L").getextrema()) < 10  # black stays black
