"""One request with more pictures than the appeal has room for is refused before any is decoded
(cleaning costs up to 1-2 s a picture, and a repeat is only found after cleaning): on the filing
form, whose typed description survives, and on the SMS evidence link, whose note survives."""

import pytest
from django.urls import reverse

from appeals import evidence
from appeals.models import AppealEvidence, AppealLink
from appeals.services import appeal_request_evidence
from healthkit.models import SmsMessage
from tests.factories.appeals import AppealFactory, image_bytes, upload
from tests.sms_text import phone_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def decodes(monkeypatch):
    calls = []
    real = evidence.clean_image

    def counting(upload_):
        calls.append(1)
        return real(upload_)

    monkeypatch.setattr("appeals.services.clean_image", counting)
    return calls


def test_filing_form_refuses_thirty_copies_of_one_picture_without_decoding_them(client, sms_outbox, resident_with_popup, decodes):
    from tests.appeals.test_resident_filing import _identify

    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    # given one picture sent 30 times in one request, with a description typed
    data = image_bytes("PNG", (300, 600))
    response = client.post(reverse("appeals:file-details"), {
        "description": "弹窗是误判，我一直在北京。", "action": "upload",
        "files": [upload(f"{i}.png", data) for i in range(30)],
    }, HTTP_ACCEPT_LANGUAGE="en")
    # then none is decoded, the message says how many fit, and the description is kept
    page = response.content.decode()
    assert response.status_code == 400 and decodes == []
    assert "You sent 30 pictures; an appeal can hold at most 9, and there is room for 9 more." in page
    assert "弹窗是误判" in page
    assert not AppealEvidence.objects.exists()
    # and the same picture within the room is still taken (stored once)
    response = client.post(reverse("appeals:file-details"), {
        "description": "x", "action": "upload", "files": [upload("a.png", data), upload("b.png", data)]})
    assert response.status_code == 200 and AppealEvidence.objects.count() == 1


def test_filing_form_counts_the_pictures_already_in_the_draft(client, sms_outbox, resident_with_popup, decodes):
    from tests.appeals.test_resident_filing import _identify

    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    files = [upload(f"{i}.png", image_bytes("PNG", (40 + i, 40))) for i in range(7)]
    assert client.post(reverse("appeals:file-details"), {"description": "x", "action": "upload", "files": files}).status_code == 200
    response = client.post(reverse("appeals:file-details"), {
        "description": "x", "action": "upload",
        "files": [upload(f"{i}.png", image_bytes("PNG", (60 + i, 40))) for i in range(3)]}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and "room for 2 more" in response.content.decode()
    assert len(decodes) == 7 and AppealEvidence.objects.count() == 7


def test_evidence_link_refuses_more_pictures_than_room_and_stays_usable(client, operator, settings, decodes):
    settings.OFFICIAL_SITE_URL = "https://12345.example.gov.cn"
    appeal = AppealFactory()
    appeal_request_evidence(appeal=appeal, actor=operator)
    token = phone_text(SmsMessage.objects.get()).split("/appeals/evidence-link/")[1].split("/")[0]
    data = image_bytes("PNG", (300, 600))
    # given the link's page and 12 copies of one picture with a note
    response = client.post(reverse("appeals:evidence-link", args=[token]),
                           {"note": "最新核酸报告", "files": [upload(f"{i}.png", data) for i in range(12)]},
                           HTTP_ACCEPT_LANGUAGE="en")
    # then nothing is decoded or stored, the note is kept, and the link can still be used
    page = response.content.decode()
    assert response.status_code == 400 and decodes == [] and "at most 9" in page and "最新核酸报告" in page
    assert not appeal.evidence.exists() and AppealLink.objects.get().used_at is None
    response = client.post(reverse("appeals:evidence-link", args=[token]), {"note": "", "files": [upload("a.png", data)]})
    assert response.status_code == 200 and appeal.evidence.count() == 1


def test_evidence_link_names_the_bad_picture_by_position_and_keeps_nothing(client, operator, settings):
    settings.OFFICIAL_SITE_URL = "https://12345.example.gov.cn"
    appeal = AppealFactory()
    appeal_request_evidence(appeal=appeal, actor=operator)
    token = phone_text(SmsMessage.objects.get()).split("/appeals/evidence-link/")[1].split("/")[0]
    response = client.post(reverse("appeals:evidence-link", args=[token]), {
        "note": "两张截图", "files": [upload("ok.png"), upload("李雷身份证.png", b"<html>not a picture</html>")]},
        HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 400
    assert "Picture 2: This file is not a PNG, JPEG or WebP picture" in page and "李雷身份证" not in page
    assert not appeal.evidence.exists() and AppealLink.objects.get().used_at is None
