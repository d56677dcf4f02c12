"""The REST close endpoint keeps the console's word: only the outcomes the console's close form
offers, and closing an appeal that is already closed is refused with a clear error (the console's
own double submit stays harmless)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from appeals import services
from appeals.forms import CloseForm
from appeals.models import OPERATOR_OUTCOMES, Appeal
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(operator):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(operator)
    return client


def close(api, appeal, **body):
    return api.post(reverse("appeals:api-close", args=[appeal.reference]), body, format="json")


def test_the_api_offers_exactly_the_console_outcomes():
    assert [code for code, _label in CloseForm.OUTCOMES] == list(OPERATOR_OUTCOMES)


@pytest.mark.parametrize("outcome", ["merged", "approved", "LIFTED", "", {"x": 1}, 3])
def test_outcomes_the_console_does_not_offer_are_refused(api, outcome):
    appeal = AppealFactory()
    response = close(api, appeal, outcome=outcome, reason="done")
    assert response.status_code == 400 and "outcome" in response.json()["errors"]
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.NEW and appeal.outcome == ""


def test_closing_a_closed_appeal_is_refused_and_changes_nothing(api, operator):
    appeal = AppealFactory()
    assert close(api, appeal, outcome="lifted", reason="done").json()["outcome"] == "lifted"
    again = close(api, appeal, outcome="rejected", reason="changed my mind")
    assert again.status_code == 400 and again.json()["detail"] == "This appeal is already closed."
    appeal.refresh_from_db()
    assert (appeal.outcome, appeal.close_reason) == ("lifted", "done")
    assert appeal.events.filter(kind="closed").count() == 1
    # The console's (and the services') close stays idempotent for a double submit.
    assert services.appeal_close(appeal=appeal, actor=operator, reason="x", outcome="other").outcome == "lifted"
