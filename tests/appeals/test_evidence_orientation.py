"""A phone picture taken sideways (EXIF orientation) is stored turned the way the phone meant,
with its EXIF gone; an upright one is stored as is, and the thumbnail keeps the proportions."""

import io

import pytest
from PIL import Image

from appeals.services import evidence_store
from tests.factories.appeals import upload

pytestmark = pytest.mark.django_db


def _jpeg(size, orientation=None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _stored(evidence, field="file"):
    with getattr(evidence, field).open("rb") as fh:
        raw = fh.read()
    return raw, Image.open(io.BytesIO(raw))


@pytest.mark.parametrize("orientation,expected", [(None, (400, 900)), (1, (400, 900)), (6, (900, 400))])
def test_orientation_is_applied_and_exif_dropped(orientation, expected):
    # given a JPEG 400 x 900 with or without an orientation tag
    data = _jpeg((400, 900), orientation)
    # when it is uploaded
    evidence = evidence_store(upload=upload("a.jpg", data, "image/jpeg"), draft_key="d1")
    raw, stored = _stored(evidence)
    # then it is stored turned as the phone meant, without any EXIF
    assert stored.size == expected and (evidence.width, evidence.height) == expected
    assert len(stored.getexif()) == 0 and b"PhoneMaker" not in raw
    # and its thumbnail fits 320 x 320 with the same proportions
    _raw, thumb = _stored(evidence, "thumbnail")
    assert max(thumb.size) == 320 and abs(thumb.size[0] / thumb.size[1] - expected[0] / expected[1]) < 0.01
