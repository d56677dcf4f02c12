"""Event histories name who acted in the reader's language: a job's code ("engine",
"sla-sweep") becomes its display name, a person stays their user name, and a closed appeal's
outcome code becomes words. Popup pages are reachable from the ticket."""

import pytest
from django.test import Client

from appeals.services import appeal_close
from healthkit import engine
from tests.factories import TestResultFactory, UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.healthkit import ArrivalFactory, cst
from tests.healthkit.engine_helpers import cases

pytestmark = pytest.mark.django_db


def _lifted_type_4():
    arrival = ArrivalFactory(arrived_at=cst(2022, 6, 1, 9))
    engine.evaluate(resident_ids=[arrival.resident_id], at=cst(2022, 6, 4, 9))
    TestResultFactory(resident=arrival.resident, sampled_at=cst(2022, 6, 4, 10), resulted_at=cst(2022, 6, 4, 12),
                      received_at=cst(2022, 6, 4, 12), result="negative")
    engine.evaluate(resident_ids=[arrival.resident_id], at=cst(2022, 6, 4, 13))
    (case,) = cases(arrival.resident, 4)
    return case


@pytest.mark.parametrize(("language", "name"), [("zh-hans", "弹窗引擎"), ("en", "Popup engine")])
def test_popup_history_names_the_engine_in_the_readers_language(language, name):
    case = _lifted_type_4()
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(UserFactory(role="operator"))
    page = client.get(f"/console/popups/{case.pk}/").content.decode()
    assert page.count(f"<td>{name}</td>") == 2  # raised and lifted by the engine
    assert "<td>engine</td>" not in page


def test_ticket_shows_outcome_words_actor_names_and_links_the_popup_history():
    case = _lifted_type_4()
    operator = UserFactory(role="operator", username="op-wang")
    appeal = AppealFactory(resident=case.resident, popup=case, assigned_to=operator)
    appeal_close(appeal=appeal, actor=operator, reason="已解除", outcome="lifted")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(operator)
    page = client.get(f"/console/appeals/{appeal.pk}/").content.decode()
    assert "Popup lifted · 已解除" in page
    assert "<td>op-wang</td>" in page  # a person keeps their user name
    assert f'href="/console/popups/{case.pk}/"' in page


def test_popup_page_leads_with_the_plain_why():
    case = _lifted_type_4()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(role="operator"))
    page = client.get(f"/console/popups/{case.pk}/").content.decode()
    assert "Rule 4" in page and "Lifted automatically on 2022-06-04 12:00" in page
