"""The retention job forgets only what is past its period and finished: an open appeal, a
resident with an open popup and a recent SMS keep every detail."""

import datetime as dt

import pytest

from appeals import retention
from appeals.models import Appeal
from communities.models import Resident
from healthkit import clock
from tests.factories import PopupCaseFactory, ResidentFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def test_open_work_and_recent_records_are_kept(settings):
    resident = ResidentFactory(name="李四")
    PopupCaseFactory(resident=resident, popup_type=1)  # still active
    appeal = AppealFactory(resident=resident, description="李四说明情况", address_text="某小区",
                           status=Appeal.Status.IN_PROGRESS)
    with clock.frozen_at(clock.now() + dt.timedelta(days=settings.RETENTION_RESIDENT_DAYS + 400)):
        done = retention.retention_forget_due()
    assert done["residents"] == 0 and done["appeals"] == 0
    appeal.refresh_from_db()
    assert appeal.description == "李四说明情况" and appeal.address_text == "某小区"
    assert Resident.objects.get(pk=resident.pk).name == "李四"


def test_a_closed_appeal_is_kept_whole_until_its_period_ends(settings):
    resident = ResidentFactory()
    appeal = AppealFactory(resident=resident, description="情况说明", status=Appeal.Status.CLOSED,
                           closed_at=clock.now(), outcome="rejected")
    with clock.frozen_at(clock.now() + dt.timedelta(days=settings.RETENTION_APPEAL_DAYS - 1)):
        assert retention.retention_forget_due()["appeals"] == 0
    with clock.frozen_at(clock.now() + dt.timedelta(days=settings.RETENTION_APPEAL_DAYS + 1)):
        assert retention.retention_forget_due()["appeals"] == 1
    appeal.refresh_from_db()
    assert appeal.description == "" and appeal.outcome == "rejected" and appeal.category


def test_the_job_is_scheduled_daily_under_its_own_name():
    from appeals.schedule import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["retention-forget-due"]["task"] == "appeals.tasks.retention_forget_due"


def test_a_forgotten_resident_shows_as_forgotten_and_reveals_nothing(client, settings):
    from django.urls import reverse

    from communities.models import User
    from healthkit.models import PopupCase
    from tests.factories import UserFactory

    resident = ResidentFactory(name="王五")
    popup = PopupCaseFactory(resident=resident, popup_type=1, state=PopupCase.State.LIFTED,
                             lifted_at=clock.now())
    appeal = AppealFactory(resident=resident, popup=popup, status=Appeal.Status.CLOSED, closed_at=clock.now(),
                           outcome="lifted")
    with clock.frozen_at(clock.now() + dt.timedelta(days=settings.RETENTION_RESIDENT_DAYS + 1)):
        assert retention.retention_forget_due()["residents"] == 1
    supervisor = UserFactory(role=User.Role.SUPERVISOR)
    client.force_login(supervisor)
    page = client.get(reverse("appeals:ticket", args=[appeal.pk]))
    assert page.status_code == 200 and "王五" not in page.content.decode()
    revealed = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "核实"})
    assert revealed.status_code == 200 and "王五" not in revealed.content.decode()
