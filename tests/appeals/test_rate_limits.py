"""Per-phone, per-ID and per-IP limits stop floods politely; nothing already sent is lost."""

import pytest
from django.urls import reverse

from appeals.models import Appeal, AppealEvidence
from healthkit.models import SmsMessage
from tests.appeals.test_resident_filing import _identify
from tests.factories import ResidentFactory, make_id_number
from tests.factories.appeals import upload

pytestmark = pytest.mark.django_db


def _ask_code(client, name, number, phone, ip="10.0.0.1"):
    return client.post(reverse("appeals:file-identify"), {"name": name, "id_number": number, "phone": phone},
                       REMOTE_ADDR=ip)


def test_codes_per_phone_are_limited_with_a_polite_message(client, settings):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "code_phone": "2/3600"}
    for _ in range(2):
        assert _ask_code(client, "王五", make_id_number(), "13600001111").status_code == 302
    response = _ask_code(client, "王五", make_id_number(), "13600001111")
    assert response.status_code == 429 and response["Retry-After"] == "3600"
    assert "too many attempts" in response.content.decode()
    assert SmsMessage.objects.count() == 2


def test_codes_per_id_are_limited(client, settings):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "code_id": "1/3600"}
    number = make_id_number()
    assert _ask_code(client, "王五", number, "13600001111").status_code == 302
    assert _ask_code(client, "王五", number, "13600002222").status_code == 429


def test_codes_per_ip_are_limited_but_other_ips_pass(client, settings):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "code_ip": "1/3600"}
    assert _ask_code(client, "王五", make_id_number(), "13600001111", ip="10.0.0.9").status_code == 302
    assert _ask_code(client, "王五", make_id_number(), "13600001112", ip="10.0.0.9").status_code == 429
    assert _ask_code(client, "王五", make_id_number(), "13600001113", ip="10.0.0.10").status_code == 302


def test_limited_submission_keeps_the_draft_and_pictures(client, sms_outbox, settings, community):
    resident = ResidentFactory(name="赵六", community=community)
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "file_id": "0/3600"}
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    client.post(reverse("appeals:file-popup"), {"popup": "unlisted", "category": "other"})
    client.post(reverse("appeals:file-details"), {"description": "keep me", "action": "continue",
                                                  "files": [upload()]})
    response = client.post(reverse("appeals:file-check"))
    assert response.status_code == 429
    assert "Nothing you already sent is lost" in response.content.decode()
    assert not Appeal.objects.exists()
    # when the limit lifts, the same draft goes through with its picture
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "file_id": "5/3600"}
    assert client.post(reverse("appeals:file-check")).status_code == 302
    appeal = Appeal.objects.get()
    assert appeal.description == "keep me" and AppealEvidence.objects.get().appeal == appeal


def test_status_lookups_per_ip_are_limited(client, settings):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "status_ip": "2/600"}
    data = {"reference": "X", "id_number": make_id_number(), "phone": "13600001111"}
    assert client.post(reverse("appeals:status"), data).status_code == 404
    assert client.post(reverse("appeals:status"), data).status_code == 404
    response = client.post(reverse("appeals:status"), data)
    assert response.status_code == 429 and "too many attempts" in response.content.decode()


def test_forged_forwarded_for_does_not_dodge_the_ip_limit(client, settings):
    settings.APPEALS_TRUSTED_PROXIES = 0
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "status_ip": "1/600"}
    data = {"reference": "X", "id_number": make_id_number(), "phone": "13600001111"}
    assert client.post(reverse("appeals:status"), data, HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 404
    assert client.post(reverse("appeals:status"), data, HTTP_X_FORWARDED_FOR="2.2.2.2").status_code == 429


def test_behind_one_proxy_the_address_it_saw_counts(rf, settings):
    from appeals.ratelimit import client_ip

    settings.APPEALS_TRUSTED_PROXIES = 1
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="10.0.0.2")
    assert client_ip(request) == "203.0.113.7"
