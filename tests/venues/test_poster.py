"""Posters: the QR decodes back to the venue code (zxing-cpp), CJK names with or without a
CJK font on the machine, SVG keeps the real name as text."""

import io
import os
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from tests.factories import UserFactory
from tests.factories.venues import VenueFactory
from venues import poster

pytestmark = pytest.mark.django_db
zxingcpp = pytest.importorskip("zxingcpp")


def _decode_png(data: bytes) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)).convert("L"))]


def _decode_svg_by_rasterising(venue) -> list[str]:
    """Rebuild the symbol from the SVG path (no SVG renderer needed) and decode it."""
    doc = ET.fromstring(poster.poster_svg(venue).split("\n", 1)[1])  # noqa: S314 - our own output
    ns = {"s": "http://www.w3.org/2000/svg"}
    d = doc.find(".//s:path", ns).attrib["d"]
    cells = [tuple(int(v) for v in part.split("h")[0].split(",")) for part in d.split("M")[1:]]
    size = max(max(x, y) for x, y in cells) + 5
    image = Image.new("L", (size, size), 255)
    for x, y in cells:
        image.putpixel((x, y), 0)
    return [b.text for b in zxingcpp.read_barcodes(image.resize((size * 8, size * 8), Image.NEAREST))]


def test_png_qr_decodes_to_the_venue_code():
    venue = VenueFactory(name="朝阳大悦城")
    texts = _decode_png(poster.poster_png(venue))
    assert texts == [poster.qr_payload(venue)]
    assert poster.code_from_payload(texts[0]) == venue.code


def test_png_without_a_cjk_font_still_renders_and_decodes():
    venue = VenueFactory(name="望京SOHO塔3")
    data = poster.poster_png(venue, font_path=None)
    assert Image.open(io.BytesIO(data)).size == (poster.WIDTH, poster.HEIGHT)
    assert [poster.code_from_payload(t) for t in _decode_png(data)] == [venue.code]


def test_png_with_the_machine_cjk_font_renders_the_chinese_name():
    if poster.find_cjk_font() is None:
        if os.environ.get("CI"):
            pytest.fail("no CJK font on CI: scripts/dev.py test installs fonts-wqy-microhei")
        pytest.skip("no CJK font on this machine (fc-list :lang=zh)")
    venue = VenueFactory(name="北京市第一人民医院门诊部")
    with_font = poster.poster_png(venue)
    without = poster.poster_png(venue, font_path=None)
    assert with_font != without
    assert _decode_png(with_font) == [poster.qr_payload(venue)]


def test_svg_carries_the_name_as_escaped_text_and_the_code_decodes():
    venue = VenueFactory(name="老北京炸酱面<东四店>&")
    svg = poster.poster_svg(venue)
    doc = ET.fromstring(svg.split("\n", 1)[1])  # noqa: S314 - our own output, must be well-formed
    texts = [t.text for t in doc.iter("{http://www.w3.org/2000/svg}text")]
    assert "老北京炸酱面<东四店>&" in texts and venue.code in texts
    assert [poster.code_from_payload(t) for t in _decode_svg_by_rasterising(venue)] == [venue.code]


def test_venue_code_is_stable_and_unambiguous():
    venue = VenueFactory()
    code = venue.code
    venue.name = "改名后"
    venue.save()
    venue.refresh_from_db()
    assert venue.code == code and len(code) == 10
    assert not set(code[1:]) & set("ILOU")


def test_poster_view_is_scoped_to_managers_of_the_venue(client):
    manager = UserFactory(role="venue_manager")
    mine, other = VenueFactory(managers=[manager]), VenueFactory()
    client.force_login(manager)
    png = client.get(f"/console/venues/{mine.pk}/poster.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert _decode_png(png.content) == [poster.qr_payload(mine)]
    svg = client.get(f"/console/venues/{mine.pk}/poster.svg?download=1")
    assert svg.status_code == 200 and "attachment" in svg["Content-Disposition"]
    assert client.get(f"/console/venues/{other.pk}/poster.png").status_code == 403
    assert client.get(f"/console/venues/{mine.pk}/poster.gif").status_code == 404
