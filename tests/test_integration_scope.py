"""An integration client's token opens its own feeds only, and a lab's token writes its own lab's
results only.

Every URL that an integration token opens (walked from the URL role matrix: the URLs where the
token gets another answer than an anonymous visitor) is tried with a token granted exactly the
view's feed (passes) and with every other feed (refused): a lab cannot post arrivals or popup
assignments, a ticket system cannot post test results or SMS receipts, and a new token endpoint
must name its feed (IsIntegration refuses a view without one). With no feed ticked, a lab's
client (its lab named) sends test results only, and any other client every feed (as before feeds
existed, so a client set up without them keeps working)."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import resolve, reverse
from rest_framework.authtoken.models import Token
from rest_framework.views import APIView

from communities.models import User
from healthkit import clock
from healthkit.models import IngestBatch, TestResult
from healthkit.permissions import IsIntegration
from tests import test_url_role_matrix as matrix
from tests.factories import ResidentFactory, UserFactory
from tests.test_url_role_matrix import MATRIX, World

pytestmark = pytest.mark.django_db
world = matrix.world  # the role matrix's objects and URL arguments

REFUSED = (401, 403)


def _token_client(*, feeds: list[str], lab: str = "") -> Client:
    user = UserFactory(role=User.Role.INTEGRATION, feeds=feeds, lab=lab)
    return Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def _token_urls(world: World) -> list[str]:
    urls = []
    for name, (key, expected) in MATRIX.items():
        if name != "admin:*" and expected["integration"] not in (401, 403) \
                and expected["integration"] != expected["anonymous"]:
            urls.append(reverse(name, kwargs=world.args[key] if key else None))
    return urls


def _answers(client: Client, url: str) -> dict[str, int]:
    if issubclass(resolve(url).func.view_class, APIView):
        posted = client.post(url, data=b'{"records": [], "receipts": []}', content_type="application/json")
    else:  # Open311 takes forms
        posted = client.post(url, data={"service_code": "correction"})
    return {"GET": client.get(url).status_code, "POST": posted.status_code}


def test_every_token_endpoint_names_a_feed_and_opens_to_that_feed_only(world):
    urls = _token_urls(world)
    assert len(urls) >= 11, urls  # 7 ingest kinds, scans, SMS receipts, Open311 requests and request
    wrong = []
    for url in urls:
        feed = getattr(resolve(url).func.view_class, "feed", None)
        if feed not in User.Feed.values:
            wrong.append(f"{url}: the view names no feed ({feed!r})")
            continue
        granted = _answers(_token_client(feeds=[feed]), url)
        others = _answers(_token_client(feeds=[f for f in User.Feed.values if f != feed]), url)
        none = _answers(_token_client(feeds=[]), url)
        lab_none = _answers(_token_client(feeds=[], lab="lab-A"), url)
        for method in ("GET", "POST"):
            if granted[method] in REFUSED:
                wrong.append(f"{method} {url}: a client granted {feed} is refused ({granted[method]})")
            if granted[method] == 405:  # a method the view does not answer, for anybody
                continue
            if others[method] not in REFUSED:
                wrong.append(f"{method} {url}: a client with every feed but {feed} gets {others[method]}")
            if none[method] in REFUSED:
                wrong.append(f"{method} {url}: a client with no feed ticked is refused ({none[method]})")
            if (lab_none[method] in REFUSED) != (feed != User.Feed.TEST_RESULTS):
                wrong.append(f"{method} {url}: a lab's client with no feed ticked gets {lab_none[method]}")
    assert not wrong, "\n".join(wrong)


def test_a_view_with_isintegration_and_no_feed_refuses_to_run():
    from django.core.exceptions import ImproperlyConfigured

    class Unscoped:
        pass

    with pytest.raises(ImproperlyConfigured):
        IsIntegration().has_permission(type("Request", (), {"user": None})(), Unscoped())


AT = dt.datetime(2022, 6, 1, 12, tzinfo=dt.UTC)


def _result(number: str, lab, result: str = "negative", sample: str = "S-1") -> dict:
    return {"id_number": number, "lab": lab, "sample_id": sample, "sampled_at": (AT - dt.timedelta(hours=5)).isoformat(),
            "resulted_at": (AT - dt.timedelta(hours=2)).isoformat(), "result": result}


def _post_results(client: Client, records: list[dict], batch_id: str | None = None):
    body = {"records": records} | ({"batch_id": batch_id} if batch_id else {})
    with clock.frozen_at(AT):
        return client.post(reverse("api-ingest-test-results"), data=body, content_type="application/json")


def test_a_labs_token_cannot_write_or_correct_another_labs_results():
    number = ResidentFactory().reveal_id_number()
    platform = _token_client(feeds=[User.Feed.TEST_RESULTS])  # relays many labs: no lab of its own
    assert _post_results(platform, [_result(number, "lab-B", "positive")]).status_code == 200
    lab_a = _token_client(feeds=[User.Feed.TEST_RESULTS], lab="lab-A")

    # Another lab's name (as text, padded, or as a number), alone or among its own records: refused whole.
    for foreign in (["lab-B"], [" lab-B "], [7], ["lab-A", "lab-B"]):
        records = [_result(number, lab, "negative", sample=f"S-{i}") for i, lab in enumerate(foreign)]
        records[0]["sample_id"] = "S-1"  # the sample lab-B reported positive: a forged correction
        response = _post_results(lab_a, records, batch_id="b-1")
        assert response.status_code == 403, (foreign, response.content)
        assert "another lab" in response.json()["detail"]
    assert list(TestResult.objects.values_list("lab", "result", "superseded_at")) == [("lab-B", "positive", None)]
    assert not IngestBatch.objects.filter(batch_id="b-1").exists()  # the batch id is still free for the fixed batch

    # Its own lab: stored, under the same batch id.
    response = _post_results(lab_a, [_result(number, " lab-A ")], batch_id="b-1")
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert sorted(TestResult.objects.values_list("lab", "result")) == [("lab-A", "negative"), ("lab-B", "positive")]


def test_every_ingest_kind_is_a_feed_with_the_same_label():
    """User.Feed repeats the ingest kinds (communities cannot import healthkit's models): a kind
    added to one and not the other would be an endpoint no client could be granted."""
    from healthkit.models import IngestBatch

    assert {kind: str(label) for kind, label in IngestBatch.Kind.choices} == {
        feed: str(label) for feed, label in User.Feed.choices if feed in IngestBatch.Kind.values}
    assert set(IngestBatch.Kind.values) <= set(User.Feed.values)
