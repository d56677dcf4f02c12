"""The whole resident journey through Django's test client: code, popup, community, evidence,
check, confirmation, status page."""

import io
import re

import pytest
from django.urls import reverse
from PIL import Image

from appeals.models import Appeal, AppealEvent, AppealEvidence
from communities import pii
from tests.appeals.conftest import last_sms_body
from tests.factories.appeals import image_bytes, upload

pytestmark = pytest.mark.django_db


def _code_from(sms_outbox) -> str:
    # The outbox row is the promise (delivery runs on commit, which a test transaction never reaches).
    return re.search(r"(?<!\d)(\d{6})(?!\d)", last_sms_body()).group(1)


def _identify(client, sms_outbox, resident, id_number, phone="13800138000"):
    response = client.post(reverse("appeals:file-identify"),
                           {"name": resident.name, "id_number": id_number, "phone": phone})
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client.post(reverse("appeals:file-verify"), {"code": _code_from(sms_outbox)})
    assert response.status_code == 302
    assert response.url == reverse("appeals:file-popup")


def file_appeal(client, sms_outbox, resident, popup, *, category="correction", files=(), id_number=None):
    id_number = id_number or resident.reveal_id_number()
    _identify(client, sms_outbox, resident, id_number)
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk) if popup else "unlisted",
                                                           "category": category, "popup_type_claimed": "3"})
    assert response.status_code == 302, response.content.decode()[:3000]
    response = client.post(reverse("appeals:file-community"), {"action": "find", "address": "朝阳区望京西园三区5号楼"})
    assert "望京西园社区" in response.content.decode()
    community_pk = re.search(r'name="community" value="(\d+)"', response.content.decode()).group(1)
    response = client.post(reverse("appeals:file-community"), {"action": "confirm", "community": community_pk})
    assert response.status_code == 302
    response = client.post(reverse("appeals:file-details"),
                           {"description": "I was in Beijing all week.", "action": "continue", "files": list(files)})
    assert response.status_code == 302, response.content.decode()[:3000]
    response = client.get(reverse("appeals:file-check"))
    assert response.status_code == 200
    response = client.post(reverse("appeals:file-check"))
    assert response.status_code == 302
    return client.get(reverse("appeals:file-done"))


def test_resident_files_online_with_screenshot_and_follows_status(client, sms_outbox, resident_with_popup, community):
    # given a resident with an active popup 3
    resident, popup = resident_with_popup
    id_number = resident.reveal_id_number()
    # when they file through every page, with one screenshot carrying GPS metadata
    done = file_appeal(client, sms_outbox, resident, popup,
                       files=[upload("IMG_李雷_13800138000.jpg", image_bytes("JPEG", exif_gps=True), "image/jpeg")])
    # then the confirmation shows the reference, what happens next and the free-of-charge warning
    appeal = Appeal.objects.get()
    page = done.content.decode()
    assert appeal.reference in page
    assert "This process is free." in page
    assert appeal.popup == popup and appeal.community == community
    assert appeal.status == Appeal.Status.NEW and appeal.channel == Appeal.Channel.ONLINE
    assert appeal.contact_phone_hash == pii.phone_hash("13800138000")
    assert list(appeal.events.values_list("kind", flat=True)) == [AppealEvent.Kind.FILED]
    # the screenshot is attached, re-encoded without EXIF, under a random name
    evidence = AppealEvidence.objects.get()
    assert evidence.appeal == appeal
    assert "李雷" not in evidence.file.name and "13800138000" not in evidence.file.name
    with evidence.file.open("rb") as fh:
        stored = Image.open(io.BytesIO(fh.read()))
        assert stored.format == "JPEG"
        assert len(stored.getexif()) == 0
    # and the status page (POST only) shows the stage and history in plain words
    response = client.post(reverse("appeals:status"),
                           {"reference": appeal.reference.lower(), "id_number": id_number, "phone": "138 0013 8000"})
    assert response.status_code == 200
    assert "We received your appeal." in response.content.decode()
    assert "waiting for an operator" in response.content.decode()
    assert "Why the popup was raised" in response.content.decode()


def test_status_page_refuses_wrong_phone_with_the_same_message(client, resident_with_popup):
    resident, popup = resident_with_popup
    from tests.factories.appeals import AppealFactory

    appeal = AppealFactory(resident=resident, popup=popup)
    response = client.post(reverse("appeals:status"),
                           {"reference": appeal.reference, "id_number": resident.reveal_id_number(), "phone": "13911112222"})
    assert response.status_code == 404
    assert "We found no appeal" in response.content.decode()
    assert appeal.reference not in response.content.decode().split("<main>")[-1].split("value=")[0]


def test_resident_without_popup_on_record_can_still_appeal(client, sms_outbox, community):
    from tests.factories import ResidentFactory

    resident = ResidentFactory(name="韩梅梅", community=community)
    done = file_appeal(client, sms_outbox, resident, None)
    appeal = Appeal.objects.get()
    assert done.status_code == 200
    assert appeal.popup is None and appeal.popup_type_claimed == 3


def test_an_unknown_id_number_registers_nobody_when_the_code_is_right(client, sms_outbox, db):
    from communities.models import Resident
    from tests.factories import make_id_number

    number = make_id_number()
    client.post(reverse("appeals:file-identify"), {"name": "张三", "id_number": number, "phone": "13700001111"})
    assert not Resident.objects.exists()  # nothing written before the phone is proven
    assert "never pay anyone" in last_sms_body()
    response = client.post(reverse("appeals:file-verify"), {"code": _code_from(sms_outbox)})
    # the filer goes on to the next step, and the typed name never becomes a registry record
    assert response.url == reverse("appeals:file-popup")
    assert not Resident.objects.exists()


def test_wrong_code_is_refused_and_a_wrong_name_goes_on_like_an_unknown_id(client, sms_outbox, resident_with_popup):
    resident, _popup = resident_with_popup
    client.post(reverse("appeals:file-identify"),
                {"name": resident.name, "id_number": resident.reveal_id_number(), "phone": "13800138000"})
    code = _code_from(sms_outbox)
    wrong = "000000" if code != "000000" else "111111"
    response = client.post(reverse("appeals:file-verify"), {"code": wrong})
    assert response.status_code == 400 and "not right" in response.content.decode()
    client.post(reverse("appeals:file-identify"),
                {"name": "别人", "id_number": resident.reveal_id_number(), "phone": "13800138000"})
    response = client.post(reverse("appeals:file-verify"), {"code": _code_from(sms_outbox)})
    # no "do not match" answer (it would say the ID number is registered); the record is not shown
    assert response.status_code == 302 and response.url == reverse("appeals:file-popup")
    page = client.get(reverse("appeals:file-popup")).content.decode()
    assert "Tell us the number" in page or "popup_type_claimed" in page
    resident.refresh_from_db()
    assert resident.name == "李雷"


def test_personal_data_never_appears_in_urls(client, sms_outbox, resident_with_popup):
    resident, popup = resident_with_popup
    id_number = resident.reveal_id_number()
    file_appeal(client, sms_outbox, resident, popup)
    response = client.get(reverse("appeals:file-done"))
    for url in re.findall(r'href="([^"]+)"', response.content.decode()):
        assert id_number not in url and "13800138000" not in url


def test_stranded_category_needs_over_a_month_outside(client, sms_outbox, resident_with_popup):
    import datetime as dt

    from django.utils import timezone

    resident, popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    recent = (timezone.localdate() - dt.timedelta(days=10)).isoformat()
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "stranded",
                                                           "currently_outside_city": "on", "outside_since": recent})
    assert response.status_code == 400 and "over a month" in response.content.decode()
    long_ago = (timezone.localdate() - dt.timedelta(days=45)).isoformat()
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "stranded",
                                                           "currently_outside_city": "on", "outside_since": long_ago,
                                                           "wishes_to_return": "on"})
    assert response.status_code == 302


def test_resend_gives_a_new_code_and_the_old_one_stops_working(client, sms_outbox, resident_with_popup):
    resident, _popup = resident_with_popup
    client.post(reverse("appeals:file-identify"),
                {"name": resident.name, "id_number": resident.reveal_id_number(), "phone": "13800138000"})
    first = _code_from(sms_outbox)
    assert client.post(reverse("appeals:file-verify"), {"action": "resend"}).status_code == 302
    second = _code_from(sms_outbox)
    from healthkit.models import SmsMessage

    assert SmsMessage.objects.filter(purpose="appeal_code").count() == 2
    if first != second:
        assert client.post(reverse("appeals:file-verify"), {"code": first}).status_code == 400
    response = client.post(reverse("appeals:file-verify"), {"code": second})
    assert response.status_code == 302 and response.url == reverse("appeals:file-popup")


def test_back_to_a_step_after_filing_shows_the_appeal_filed_not_a_restart(client, sms_outbox, resident_with_popup):
    # given a resident who has just filed
    resident, popup = resident_with_popup
    done = file_appeal(client, sms_outbox, resident, popup)
    reference = done.context["done"]["reference"]
    # when the browser's Back button brings the check step again, and "submit" is pressed on it
    for response in (client.get(reverse("appeals:file-check")), client.post(reverse("appeals:file-check")),
                     client.post(reverse("appeals:file-details"), {"description": "again", "action": "continue"})):
        # then each leads to the filed appeal's reference, and nothing is filed twice
        assert response.status_code == 302 and response.url == reverse("appeals:file-done")
    page = client.get(reverse("appeals:file-done"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert reference in page and "会话已过期" not in page and "请先验证您的手机号" not in page
    assert Appeal.objects.count() == 1 and Appeal.objects.get().repeat_count == 0
