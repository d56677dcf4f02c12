"""Two supervisors correcting the same risk window from pages opened before either acted: the
second correction is refused with a message instead of silently replacing the first (its form
was filled in against the old window), and a withdrawal sent twice is done once. A refusal leads
back to the page the form was on, with the reason once and what was typed kept."""

import re

import pytest

from tests.concurrency import page_seen, post_messages, signed_in
from tests.factories import UserFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory
from venues.models import RiskWindow, RiskWindowEvent

pytestmark = pytest.mark.django_db

CHANGED = "This record changed after you opened the page"


def _correction(**overrides) -> dict:
    return {"action": "correct", "starts_at": "2022-09-01T10:00", "ends_at": "2022-09-01T15:00",
            "risk_level": "high", "reason": "病例到访", "correction": "到访时间更正", **overrides}


def test_a_correction_from_a_page_opened_before_another_correction_is_refused(django_capture_on_commit_callbacks):
    window = RiskWindowFactory()
    url = f"/console/venues/risk-windows/{window.pk}/"
    first, second = signed_in(UserFactory(role="supervisor")), signed_in(UserFactory(role="supervisor"))
    first_seen, second_seen = page_seen(first, url), page_seen(second, url)

    with django_capture_on_commit_callbacks(execute=False):
        assert post_messages(first, url, {**first_seen, **_correction()})[-1].startswith("Window corrected")
        response = second.post(url, {**second_seen, **_correction(ends_at="2022-09-01T18:00")})

    assert response.status_code == 302 and response["Location"] == url
    assert second.get(url).content.decode().count(CHANGED) == 1
    window.refresh_from_db()
    assert window.version == 2 and window.ends_at.hour == 7  # 15:00 Beijing time, the first correction
    assert RiskWindowEvent.objects.filter(window=window, kind=RiskWindowEvent.Kind.CORRECTED).count() == 1


def test_withdrawal_sent_twice_is_done_once(django_capture_on_commit_callbacks):
    window = RiskWindowFactory()
    url = f"/console/venues/risk-windows/{window.pk}/"
    client = signed_in(UserFactory(role="supervisor"))
    form = {**page_seen(client, url), "action": "withdraw", "reason": "误报：场所登记时间有误"}

    with django_capture_on_commit_callbacks(execute=False):
        post_messages(client, url, form)
        again = client.post(url, form)

    # refused: back to the window's page, why once, the reason as typed kept to copy
    assert again.status_code == 302 and again["Location"] == url
    page = client.get(url).content.decode()
    assert page.count(CHANGED) == 1 and "误报：场所登记时间有误" in page
    assert RiskWindow.objects.get(pk=window.pk).state == RiskWindow.State.WITHDRAWN
    assert RiskWindowEvent.objects.filter(window=window, kind=RiskWindowEvent.Kind.WITHDRAWN).count() == 1


def test_marking_form_sent_twice_marks_one_window():
    venue = VenueFactory()
    client = signed_in(UserFactory(role="supervisor"))
    token = re.search(r'name="once" value="([^"]+)"',
                      client.get("/console/venues/risk-windows/").content.decode()).group(1)
    form = {"once": token, "venue_code": venue.code, "starts_at": "2022-09-01T10:00", "ends_at": "2022-09-01T14:00",
            "risk_level": "high", "reason": "病例到访"}

    first = client.post("/console/venues/risk-windows/", form)
    second = client.post("/console/venues/risk-windows/", form)

    assert first.status_code == 302
    assert second.status_code == 302 and second["Location"] == "/console/venues/risk-windows/"
    assert "This form was already sent" in client.get(second["Location"]).content.decode()
    assert RiskWindow.objects.filter(venue=venue).count() == 1
