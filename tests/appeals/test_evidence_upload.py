"""Screenshot uploads: real images only, metadata stripped, bombs and disguised files refused."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from appeals.evidence import EvidenceRejected
from appeals.models import AppealEvidence
from appeals.services import evidence_store
from tests.factories.appeals import AppealFactory, bomb_png, image_bytes, upload

pytestmark = pytest.mark.django_db


def test_valid_png_is_stored_with_a_thumbnail_under_a_random_private_name(settings):
    evidence = evidence_store(upload=upload("我的弹窗.png", image_bytes("PNG", (800, 1600))), draft_key="d1")
    assert evidence.content_type == "image/png" and (evidence.width, evidence.height) == (800, 1600)
    assert evidence.file.name.startswith("appeals/evidence/") and evidence.file.name.endswith(".png")
    assert "弹窗" not in evidence.file.name
    assert default_storage.path(evidence.file.name).startswith(str(settings.PRIVATE_MEDIA_ROOT))
    with evidence.thumbnail.open("rb") as fh:
        thumb = Image.open(io.BytesIO(fh.read()))
        assert max(thumb.size) <= 320 and thumb.format == "JPEG"


def test_exif_and_gps_are_removed_from_jpeg():
    original = Image.open(io.BytesIO(image_bytes("JPEG", exif_gps=True)))
    assert original.getexif().get(0x010F) == "PhoneMaker"  # given: metadata present
    evidence = evidence_store(upload=upload("a.jpg", image_bytes("JPEG", exif_gps=True), "image/jpeg"), draft_key="d1")
    with evidence.file.open("rb") as fh:
        raw = fh.read()
    stored = Image.open(io.BytesIO(raw))
    assert len(stored.getexif()) == 0
    assert b"PhoneMaker" not in raw and b"Exif" not in raw


def test_webp_is_accepted():
    evidence = evidence_store(upload=upload("a.webp", image_bytes("WEBP"), "image/webp"), draft_key="d1")
    assert evidence.content_type == "image/webp"


def test_decompression_bomb_is_refused_quickly():
    with pytest.raises(EvidenceRejected, match="too large"):
        evidence_store(upload=upload("bomb.png", bomb_png()), draft_key="d1")
    assert not AppealEvidence.objects.exists()


def test_picture_over_the_pixel_limit_is_refused(settings):
    settings.APPEALS_EVIDENCE_MAX_PIXELS = 10_000
    with pytest.raises(EvidenceRejected, match="too large"):
        evidence_store(upload=upload("big.png", image_bytes("PNG", (200, 200))), draft_key="d1")


def test_file_over_the_byte_limit_is_refused(settings):
    settings.APPEALS_EVIDENCE_MAX_BYTES = 1000
    with pytest.raises(EvidenceRejected, match="larger than"):
        evidence_store(upload=upload("big.png", image_bytes("PNG", (300, 300), color=None) + b"x" * 2000), draft_key="d1")


@pytest.mark.parametrize("payload", [
    b"<html><script>alert(1)</script></html>",
    b"%PDF-1.4 fake",
    b"GIF89a" + b"\x00" * 40,
])
def test_disguised_file_named_png_is_refused_with_a_clear_message(payload):
    with pytest.raises(EvidenceRejected, match="not a PNG, JPEG or WebP"):
        evidence_store(upload=upload("screenshot.png", payload), draft_key="d1")


def test_real_gif_is_refused_too():
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, "GIF")
    with pytest.raises(EvidenceRejected, match="not a PNG, JPEG or WebP"):
        evidence_store(upload=upload("x.png", out.getvalue()), draft_key="d1")


def test_truncated_image_is_refused():
    data = image_bytes("JPEG", (600, 600), color=(10, 200, 30))
    with pytest.raises(EvidenceRejected, match="damaged or incomplete"):
        evidence_store(upload=upload("cut.jpg", data[: len(data) // 2], "image/jpeg"), draft_key="d1")


def test_at_most_nine_pictures_per_appeal():
    appeal = AppealFactory()
    for i in range(9):
        evidence_store(upload=upload(data=image_bytes("PNG", (50 + i, 50))), appeal=appeal)
    with pytest.raises(EvidenceRejected, match="at most 9"):
        evidence_store(upload=upload(data=image_bytes("PNG", (99, 50))), appeal=appeal)


def test_the_same_picture_twice_is_stored_once():
    data = image_bytes("PNG")
    first = evidence_store(upload=upload(data=data), draft_key="d1")
    second = evidence_store(upload=upload(data=data), draft_key="d1")
    assert first.pk == second.pk and AppealEvidence.objects.count() == 1


def test_upload_page_reports_a_bad_file_by_position_and_keeps_the_good_one(client, sms_outbox, resident_with_popup):
    from django.urls import reverse

    from tests.appeals.test_resident_filing import _identify

    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    response = client.post(reverse("appeals:file-details"), {
        "description": "", "action": "upload",
        "files": [upload("ok.png"), upload("李雷身份证.png", b"not an image at all")],
    })
    page = response.content.decode()
    assert response.status_code == 400
    assert "Picture 2: This file is not a PNG, JPEG or WebP picture" in page
    assert "李雷身份证" not in page
    assert AppealEvidence.objects.filter(appeal__isnull=True).count() == 1


def test_abandoned_draft_pictures_are_purged_and_filed_ones_kept():
    import datetime as dt

    from django.utils import timezone

    from appeals.services import evidence_drafts_purge

    old_draft = evidence_store(upload=upload(data=image_bytes("PNG", (30, 30))), draft_key="gone")
    fresh_draft = evidence_store(upload=upload(data=image_bytes("PNG", (31, 30))), draft_key="here")
    filed = evidence_store(upload=upload(data=image_bytes("PNG", (32, 30))), appeal=AppealFactory())
    AppealEvidence.objects.filter(pk__in=[old_draft.pk, filed.pk]).update(created_at=timezone.now() - dt.timedelta(days=3))
    path = old_draft.file.name
    assert evidence_drafts_purge() == 1
    assert set(AppealEvidence.objects.values_list("pk", flat=True)) == {fresh_draft.pk, filed.pk}
    assert not default_storage.exists(path)


def test_png_text_chunks_and_icc_profile_are_dropped():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "李雷 13800138000 Beijing 39.9,116.4")
    out = io.BytesIO()
    Image.new("RGB", (50, 50), (1, 2, 3)).save(out, "PNG", pnginfo=info, icc_profile=b"\x00" * 128)
    evidence = evidence_store(upload=upload(data=out.getvalue()), draft_key="d1")
    with evidence.file.open("rb") as fh:
        raw = fh.read()
    assert b"13800138000" not in raw and b"tEXt" not in raw and b"iCCP" not in raw
    assert Image.open(io.BytesIO(raw)).getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(("payload", "hint"), [
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC/HEIF photo"),
    (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC/HEIF photo"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 64, "HEIC/HEIF photo"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF document"),
])
def test_a_phone_photo_or_a_document_is_refused_saying_what_it_is_and_what_to_do(payload, hint):
    # Refused as before, but the resident learns what the file is and how to send a picture.
    with pytest.raises(EvidenceRejected, match="not a PNG, JPEG or WebP") as refused:
        evidence_store(upload=upload("IMG_0001.png", payload), draft_key="d1")
    assert hint in str(refused.value) and "screenshot" in str(refused.value)
    assert not AppealEvidence.objects.exists()
