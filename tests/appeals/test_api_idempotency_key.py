"""A client's POST that creates or changes something, sent again with the same Idempotency-Key
(a network retry after a lost answer), gets the first answer instead of doing the work twice:
before, a retried phone entry folded into its own appeal (repeat count 1, the call logged twice),
a retried upload stored the picture twice. The same key with another body is a 422; another
client's key is its own; the schema documents the header and the 422."""

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from appeals.models import Appeal, AppealContact, AppealEvidence
from communities.models import User
from healthkit.models import IdempotentRequest
from tests.factories import ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=user).key)
    return client


@pytest.fixture
def phone_entry(community, monkeypatch):
    from appeals.clearance import tasks

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: None)
    caller = ResidentFactory(name="周八", community=community, phone="13300001111")
    return {"name": "周八", "id_number": caller.reveal_id_number(), "phone": "13300001111",
            "category": "emergency_business", "community_code": community.code, "description": "contract"}


def test_a_retried_phone_entry_files_one_appeal_and_logs_one_call(phone_entry):
    client = _client(UserFactory(role=User.Role.OPERATOR))
    first = client.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="call-7")
    again = client.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="call-7")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    appeal = Appeal.objects.get()
    assert (appeal.repeat_count, AppealContact.objects.filter(appeal=appeal).count()) == (0, 1)
    # without a key a repeat is a new request, as before (it folds: the caller rang again)
    client.post(reverse("appeals:api-create"), phone_entry, format="json")
    assert Appeal.objects.get().repeat_count == 1


def test_the_same_key_with_another_body_is_a_422_and_does_nothing(phone_entry):
    client = _client(UserFactory(role=User.Role.OPERATOR))
    client.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="call-8")
    other = client.post(reverse("appeals:api-create"), {**phone_entry, "description": "another"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="call-8")
    assert other.status_code == 422 and "used for another request" in other.json()["detail"]
    assert Appeal.objects.get().repeat_count == 0


def test_keys_are_per_client_and_a_refusal_is_replayed_too(phone_entry):
    one, two = _client(UserFactory(role=User.Role.OPERATOR)), _client(UserFactory(role=User.Role.OPERATOR))
    assert one.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    folded = two.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert folded.status_code == 201 and folded.json()["folded"] is True  # its own request, done
    closed = AppealFactory(status=Appeal.Status.CLOSED)
    refused = [one.post(reverse("appeals:api-assign", args=[closed.reference]), {}, format="json",
                        HTTP_IDEMPOTENCY_KEY="assign-1") for _ in range(2)]
    assert [r.status_code for r in refused] == [400, 400] and refused[1]["Idempotent-Replayed"] == "true"
    assert IdempotentRequest.objects.count() == 3


def test_a_client_whose_role_may_not_post_gets_its_403_and_takes_no_key(phone_entry):
    """The key is taken only by a request the client may make: before, a venue manager's second
    try with the same key (another body) was a 422, not the 403 the schema documents."""
    client = _client(UserFactory(role=User.Role.VENUE_MANAGER))
    answers = [client.post(reverse("appeals:api-create"), {**phone_entry, "description": text}, format="json",
                           HTTP_IDEMPOTENCY_KEY="k-1") for text in ("one", "two")]
    assert [a.status_code for a in answers] == [403, 403] and not IdempotentRequest.objects.exists()


def test_a_retried_upload_stores_the_picture_once(operator):
    appeal = AppealFactory(assigned_to=operator)
    client = _client(operator)
    url = reverse("appeals:api-evidence-upload", args=[appeal.reference])
    answers = [client.post(url, {"file": upload()}, format="multipart", HTTP_IDEMPOTENCY_KEY="pic-1") for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201] and answers[1].json() == answers[0].json()
    assert AppealEvidence.objects.filter(appeal=appeal).count() == 1


def _multipart(boundary: str, data: bytes, filename: str = "shot.png") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def test_a_retried_upload_with_a_new_boundary_is_the_same_request(operator):
    """A real client (requests, OkHttp, curl) draws a new multipart boundary for each try: the
    retry differs byte for byte from the first and must still be recognised; another picture
    under the same key is a 422."""
    from tests.factories.appeals import image_bytes

    appeal = AppealFactory(assigned_to=operator)
    client = _client(operator)
    url = reverse("appeals:api-evidence-upload", args=[appeal.reference])
    picture = image_bytes()

    def send(boundary: str, data: bytes):
        return client.generic("POST", url, _multipart(boundary, data), content_type=f"multipart/form-data; boundary={boundary}",
                              HTTP_IDEMPOTENCY_KEY="pic-2")

    first, retry = send("a1b2c3", picture), send("zz-9f8e7d6c", picture)
    assert [first.status_code, retry.status_code] == [201, 201], retry.content
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert AppealEvidence.objects.filter(appeal=appeal).count() == 1
    other = send("q", image_bytes(color=(0, 0, 255)))
    assert other.status_code == 422 and AppealEvidence.objects.filter(appeal=appeal).count() == 1


def test_a_key_that_is_not_printable_ascii_is_a_400(phone_entry):
    client = _client(UserFactory(role=User.Role.OPERATOR))
    for key in ("x" * 201, "é-1", " x", "x\t"):
        response = client.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key", key
    assert not Appeal.objects.exists()


def test_the_schema_documents_the_header_and_the_422():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/appeals/create/"]["post"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= next(
        p for p in operation["parameters"] if p["name"] == "Idempotency-Key").items()
    assert "422" in operation["responses"]
    search = schema["paths"]["/api/v1/appeals/search/"]["post"]  # a read: no key, nothing stored
    assert "Idempotency-Key" not in {p["name"] for p in search.get("parameters", [])}


def test_an_expired_key_is_a_new_request_and_the_hourly_job_forgets_old_keys(phone_entry, settings):
    import datetime as dt

    from django.utils import timezone

    from healthkit.tasks import idempotent_requests_purge

    client = _client(UserFactory(role=User.Role.OPERATOR))
    client.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotentRequest.objects.update(created_at=timezone.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS + 1))
    again = client.post(reverse("appeals:api-create"), phone_entry, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert "Idempotent-Replayed" not in again and Appeal.objects.get().repeat_count == 1
    IdempotentRequest.objects.update(created_at=timezone.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS + 1))
    assert idempotent_requests_purge() == 1 and not IdempotentRequest.objects.exists()


# POSTs without the header, each safe to send twice for its own reason. A new POST must either
# honour Idempotency-Key (healthkit.api.IdempotentPost) or be added here with why a retry is harmless.
RETRY_SAFE_WITHOUT_KEY = {
    "/api/v1/appeals/search/": "a read by POST (the ID number stays out of the URL): stores nothing",
    "/api/v1/residents/health-code/": "a read; each look-up is audited as its own look-up",
    "/api/v1/sms/receipts/": "a delivery receipt sets a message's final state: the same receipt twice changes nothing",
    **{f"/api/v1/ingest/{kind}/": "bulk ingest: a batch_id replays the stored answer, and each record is "
                                  "deduplicated by its key (healthkit.ingest)"
       for kind in ("arrivals", "local-cases", "medical-events", "popup-assignments", "quarantine-orders", "stays",
                    "test-results")},
    "/api/v1/venues/scans/": "bulk ingest: batch_id and per-record keys (venues.ingest)",
}


def test_every_post_of_the_schema_is_safe_to_retry():
    # given every POST operation the OpenAPI schema offers
    schema = SchemaGenerator().get_schema(request=None, public=True)
    posts = {path: ops["post"] for path, ops in schema["paths"].items() if "post" in ops}
    assert not {path for path, ops in schema["paths"].items() if {"put", "patch", "delete"} & set(ops)}
    # then each either takes an Idempotency-Key (and documents the 422 of a reused key) or is listed
    # with the reason a retry is harmless; never both
    keyed = {path for path, op in posts.items() if "Idempotency-Key" in {p["name"] for p in op.get("parameters", [])}}
    assert all("422" in posts[path]["responses"] for path in keyed)
    assert not keyed & set(RETRY_SAFE_WITHOUT_KEY)
    assert set(posts) - keyed == set(RETRY_SAFE_WITHOUT_KEY)
