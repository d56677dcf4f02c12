"""One account (or one client address) touching many different residents within the window
raises one alert (supervisors' console, log); ordinary work below the threshold raises none."""

import logging

import pytest
from django.urls import reverse

from communities.models import AuditAlert, PersonalDataAccess, User
from communities.services import access_log
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.AUDIT_ENUMERATION_WINDOW_MINUTES = 60
    settings.AUDIT_ENUMERATION_THRESHOLD = 5
    settings.AUDIT_ENUMERATION_IP_THRESHOLD = 8


def _appeals(n: int) -> list:
    appeals = []
    for _ in range(n):
        resident = ResidentFactory()
        appeals.append(AppealFactory(resident=resident, popup=PopupCaseFactory(resident=resident)))
    return appeals


def test_one_account_opening_many_residents_raises_one_alert(client, caplog):
    operator = UserFactory(role=User.Role.OPERATOR)
    client.force_login(operator)
    with caplog.at_level(logging.WARNING, logger="healthkit.audit"):
        for appeal in _appeals(7):
            assert client.get(reverse("appeals:ticket", args=[appeal.pk])).status_code == 200
    alert = AuditAlert.objects.get()
    assert alert.kind == AuditAlert.Kind.ACCOUNT and alert.actor == operator and alert.residents == 5
    assert alert.acknowledged_at is None
    assert [r for r in caplog.records if "enumeration alert" in r.getMessage()]
    assert f"account={operator.pk}" in caplog.text


def test_the_same_residents_again_and_again_raise_nothing():
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER)
    residents = [ResidentFactory() for _ in range(4)]
    for _ in range(10):
        for resident in residents:
            access_log(actor=worker, resident=resident, action=PersonalDataAccess.Action.VIEW, context="t")
    assert not AuditAlert.objects.exists()


def test_many_accounts_behind_one_address_raise_an_address_alert(client):
    for appeal in _appeals(9):
        client.force_login(UserFactory(role=User.Role.OPERATOR))  # a fresh account each time
        client.get(reverse("appeals:ticket", args=[appeal.pk]), REMOTE_ADDR="203.0.113.9")
    alert = AuditAlert.objects.get()
    assert alert.kind == AuditAlert.Kind.ADDRESS and alert.ip == "203.0.113.9" and alert.actor is None


def test_supervisors_see_the_alert_on_their_console_and_acknowledge_it(client):
    harvester = UserFactory(role=User.Role.OPERATOR, username="harvester")
    for resident in [ResidentFactory() for _ in range(6)]:
        access_log(actor=harvester, resident=resident, action=PersonalDataAccess.Action.VIEW, context="t")
    supervisor = UserFactory(role=User.Role.SUPERVISOR)
    client.force_login(supervisor)
    home = client.get(reverse("console-home")).content.decode()
    assert 'data-testid="audit-alert-count"' in home
    page = client.get(reverse("console-audit")).content.decode()
    assert 'data-testid="audit-alerts"' in page and "harvester" in page
    alert = AuditAlert.objects.get()
    client.post(reverse("console-audit-alert-acknowledge", args=[alert.pk]))
    alert.refresh_from_db()
    assert alert.acknowledged_by == supervisor and alert.acknowledged_at is not None
    assert 'data-testid="audit-alert-count"' not in client.get(reverse("console-home")).content.decode()


def test_operators_do_not_see_the_alerts(client):
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    assert client.get(reverse("console-audit")).status_code == 403


def test_probing_unknown_id_numbers_counts_as_enumeration_too():
    prober = UserFactory(role=User.Role.OPERATOR)
    for _ in range(5):  # each look-up found nobody
        access_log(actor=prober, resident=None, action=PersonalDataAccess.Action.LOOKUP, context="test")
    alert = AuditAlert.objects.get()
    assert alert.actor == prober and alert.residents == 5


def test_exports_without_a_person_do_not_count():
    exporter = UserFactory(role=User.Role.SUPERVISOR)
    for _ in range(10):
        access_log(actor=exporter, resident=None, action=PersonalDataAccess.Action.EXPORT, context="test")
    assert not AuditAlert.objects.exists()
