"""Ingest API: token-authenticated, bulk, idempotent by batch id and by record id, bad records
reported by index while the good ones are kept, at most 10,000 records per request."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import Resident, User
from healthkit import ingest
from healthkit.models import (
    Arrival,
    IngestBatch,
    LocalCase,
    MedicalEvent,
    PopupAssignment,
    QuarantineOrder,
    Stay,
    TestResult,
)
from tests.factories import ResidentFactory, UserFactory, make_id_number

pytestmark = pytest.mark.django_db


def _client(role=User.Role.INTEGRATION):
    user = UserFactory(role=role, username=f"lab-feed-{role}")
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _iso(instant: dt.datetime) -> str:
    return instant.isoformat()


def _result(id_number, sample_id, *, hours_ago=10, result="negative", **extra):
    now = timezone.now()
    return {"id_number": id_number, "lab": "北京某检测所", "sample_id": sample_id,
            "sampled_at": _iso(now - dt.timedelta(hours=hours_ago)),
            "resulted_at": _iso(now - dt.timedelta(hours=hours_ago - 2)), "result": result, **extra}


def _post(client, name, body):
    return client.post(reverse(name), body, format="json")


def test_without_a_token_or_with_a_staff_token_nothing_is_stored():
    resident = ResidentFactory(id_number="110105196001010017")
    body = {"records": [_result("110105196001010017", "S1")]}
    assert _post(APIClient(), "api-ingest-test-results", body).status_code == 401
    assert _post(_client(User.Role.OPERATOR), "api-ingest-test-results", body).status_code == 403
    assert not TestResult.objects.filter(resident=resident).exists()
    assert _post(_client(), "api-ingest-test-results", body).status_code == 200
    assert TestResult.objects.filter(resident=resident).count() == 1


def test_bad_records_are_reported_by_index_and_the_good_ones_kept():
    resident = ResidentFactory(id_number="110105196001010017")
    future = _iso(timezone.now() + dt.timedelta(days=1))
    records = [
        _result("110105196001010017", "S1"),
        _result("110105196001010018", "S2"),  # wrong check digit
        _result("110105196001010017", "S3", result="maybe"),
        {**_result("110105196001010017", "S4"), "resulted_at": future},
        "not an object",
        _result("110105196001010017", "S5", hours_ago=30),
        {k: v for k, v in _result("110105196001010017", "S6").items() if k != "lab"},
    ]
    response = _post(_client(), "api-ingest-test-results", {"records": records})
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["accepted"], body["duplicates"]) == (7, 2, 0)
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 6]
    assert "id_number" in rejected[1] and "110105196001010018" not in str(body)
    assert rejected[2] == {"result": 'Must be "negative" or "positive".'}
    assert rejected[3] == {"resulted_at": "Lies in the future."}
    assert rejected[6] == {"lab": "This field is required."}
    assert sorted(TestResult.objects.filter(resident=resident).values_list("sample_id", flat=True)) == ["S1", "S5"]


def test_replayed_batch_id_returns_the_stored_answer_and_writes_nothing():
    ResidentFactory(id_number="110105196001010017")
    client = _client()
    body = {"batch_id": "lab-7/2022-06-01/001", "records": [_result("110105196001010017", "S1")]}
    first = _post(client, "api-ingest-test-results", body).json()
    # Same batch id, even with a changed record: the stored answer, nothing new written.
    body["records"].append(_result("110105196001010017", "S2"))
    again = _post(client, "api-ingest-test-results", body).json()
    assert first["accepted"] == 1 and first["replayed"] is False
    assert again == {**first, "replayed": True}
    assert TestResult.objects.count() == 1
    assert IngestBatch.objects.get(batch_id="lab-7/2022-06-01/001").accepted == 1


def test_a_retried_record_is_a_duplicate_not_an_error():
    ResidentFactory(id_number="110105196001010017")
    client = _client()
    record = _result("110105196001010017", "S1")
    _post(client, "api-ingest-test-results", {"records": [record]})
    body = _post(client, "api-ingest-test-results", {"records": [record, _result("110105196001010017", "S2")]}).json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 1, [])
    assert TestResult.objects.count() == 2


def test_record_id_makes_a_retry_harmless_for_other_signals():
    ResidentFactory(id_number="110105196001010017")
    client = _client()
    arrived = _iso(timezone.now() - dt.timedelta(hours=5))
    record = {"record_id": "gate-3/889", "id_number": "110105196001010017", "arrived_at": arrived,
              "from_county": "310115"}
    assert _post(client, "api-ingest-arrivals", {"records": [record]}).json()["accepted"] == 1
    # A retry of the same record id (even re-serialised with another offset) is a duplicate.
    retry = {**record, "arrived_at": dt.datetime.fromisoformat(arrived).astimezone(dt.UTC).isoformat()}
    body = _post(client, "api-ingest-arrivals", {"records": [retry]}).json()
    assert (body["accepted"], body["duplicates"]) == (0, 1)
    # Without a record id, the same content is recognised by its hash.
    plain = {k: v for k, v in record.items() if k != "record_id"}
    assert _post(client, "api-ingest-arrivals", {"records": [plain]}).json()["accepted"] == 1
    assert _post(client, "api-ingest-arrivals", {"records": [plain]}).json()["duplicates"] == 1
    assert Arrival.objects.count() == 2


def test_more_than_10000_records_are_refused_whole():
    client = _client()
    records = [{"county": "420111", "date": "2022-06-01"}] * (ingest.MAX_RECORDS + 1)
    response = _post(client, "api-ingest-local-cases", {"records": records})
    assert response.status_code == 400
    assert response.json()["extra"] == {"max_records": 10_000, "received": 10_001}
    assert not LocalCase.objects.exists()


def test_10000_records_in_one_request_are_stored():
    client = _client()
    start = dt.date(2022, 3, 1)
    records = [{"county": f"{420100 + i % 100:06d}", "date": str(start + dt.timedelta(days=i // 100)),
                "record_id": f"case-{i}"} for i in range(ingest.MAX_RECORDS)]
    body = _post(client, "api-ingest-local-cases", {"records": records}).json()
    assert (body["accepted"], body["rejected"]) == (10_000, [])
    assert LocalCase.objects.count() == 10_000


def test_unknown_resident_with_a_name_is_registered_without_a_name_refused():
    client = _client()
    number = make_id_number()
    other = make_id_number()
    records = [_result(number, "S1", name="李四"), _result(other, "S2")]
    body = _post(client, "api-ingest-test-results", {"records": records}).json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert Resident.objects.filter(id_masked__startswith=number[:2]).exists()


def test_every_signal_kind_is_accepted():
    ResidentFactory(id_number="110105196001010017")
    client = _client()
    now = timezone.now()
    past = _iso(now - dt.timedelta(days=3))
    idn = "110105196001010017"
    posts = {
        "api-ingest-stays": {"id_number": idn, "county": "533102", "from": past, "to": _iso(now - dt.timedelta(days=1)),
                             "border_port": True},
        "api-ingest-quarantine-orders": {"id_number": idn, "from": past, "to": _iso(now + dt.timedelta(days=4))},
        "api-ingest-medical-events": {"id_number": idn, "kind": "clinic_visit", "symptom": "fever",
                                      "occurred_at": past},
        "api-ingest-popup-assignments": {"id_number": idn, "popup_type": 3, "reason": "时空伴随",
                                         "assigned_at": past},
        "api-ingest-local-cases": {"county": "533102", "reported_at": past},
    }
    for name, record in posts.items():
        body = _post(client, name, {"records": [record]}).json()
        assert (name, body["accepted"], body["rejected"]) == (name, 1, [])
    assert Stay.objects.get().border_port is True
    assert QuarantineOrder.objects.count() == MedicalEvent.objects.count() == PopupAssignment.objects.count() == 1


def test_malformed_request_body_is_a_clear_400():
    client = _client()
    response = _post(client, "api-ingest-arrivals", {"rows": []})
    assert response.status_code == 400
    assert "records" in response.json()["detail"]


def test_fast_id_path_agrees_with_the_registry():
    from django.conf import settings

    from communities import pii

    key = settings.PII_HASH_KEY.encode()
    for _ in range(200):
        number = make_id_number()
        assert ingest._id_number_and_hash(number.lower() + " ", key) == (number, pii.id_hash(number))
    for bad in ("110105196001010018", "11010519600101001", "110105196002300017", "110105209901010017"):
        with pytest.raises(ValidationError):
            ingest._id_number_and_hash(bad, key)


def test_copy_text_escapes_what_copy_would_misread():
    """Backslashes and a literal \\N are stored as sent (COPY would misread them unescaped); tabs
    and line breaks, which no lab or sample id holds, are refused per field (healthkit.inputs)."""
    ResidentFactory(id_number="110105196001010017")
    records = [_result("110105196001010017", "S\\1\\x", lab="lab\\N"),
               _result("110105196001010017", "S\t1\ny", lab="lab")]
    with translation.override("en"):
        body = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert body.accepted == 1
    assert body.rejected == [{"index": 1, "errors": {"sample_id": "Contains control characters or invalid Unicode."}}]
    assert TestResult.objects.values_list("lab", "sample_id").get() == ("lab\\N", "S\\1\\x")


def test_field_errors_name_the_field():
    ResidentFactory(id_number="110105196001010017")
    now = timezone.now()
    records = [
        {"id_number": "110105196001010017", "arrived_at": _iso(now), "from_county": "31"},
        {"id_number": "110105196001010017", "arrived_at": "yesterday", "from_county": "310115"},
        {"id_number": "110105196001010017", "arrived_at": _iso(now + dt.timedelta(days=2)), "from_county": "310115"},
    ]
    body = _post(_client(), "api-ingest-arrivals", {"records": records}).json()
    assert [r["errors"] for r in body["rejected"]] == [
        {"from_county": "A county is its 6-digit administrative division code."},
        {"arrived_at": "Must be an ISO 8601 date-time with a UTC offset."},
        {"arrived_at": "Lies in the future."},
    ]


def test_full_width_id_number_is_the_same_resident_and_a_superscript_digit_a_record_error():
    # given a resident, and their number typed full-width, and once with a superscript '²'
    resident = ResidentFactory(id_number="110105196001010017")
    wide = "110105196001010017".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    records = [_result(wide, "S1"), _result("11010519600101\u00b2017", "S2", name="王某")]
    # when the lab sends them
    response = _post(_client(), "api-ingest-test-results", {"records": records})
    # then the full-width one is that resident's result, the other a field error (no 500)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1] and "id_number" in body["rejected"][0]["errors"]
    assert list(TestResult.objects.values_list("resident", flat=True)) == [resident.pk]
    assert Resident.objects.count() == 1
