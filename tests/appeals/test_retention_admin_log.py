"""The admin's change log names records by their masked label (surname and ID digits): the
retention job drops a forgotten person's entries with the person, and every entry after its
period, so no label of that person outlives them there."""

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from appeals import retention
from appeals.models import Appeal
from communities.models import Resident
from healthkit import clock
from healthkit.models import PopupCase
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def _log(user, obj) -> LogEntry:
    return LogEntry.objects.create(
        user=user, content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk),
        object_repr=str(obj)[:200], action_flag=CHANGE, change_message="changed",
    )


def test_a_forgotten_persons_admin_log_goes_with_them_and_others_stay_until_their_period(settings):
    admin_user = UserFactory(role="administrator", is_staff=True, is_superuser=True)
    gone = ResidentFactory(name="赵六")
    popup = PopupCaseFactory(resident=gone, popup_type=1, state=PopupCase.State.LIFTED, lifted_at=clock.now())
    appeal = AppealFactory(resident=gone, popup=popup, status=Appeal.Status.CLOSED, closed_at=clock.now(),
                           outcome="lifted")
    kept = ResidentFactory(name="钱七")
    PopupCaseFactory(resident=kept, popup_type=1)  # still active: kept whole
    about_gone = [_log(admin_user, gone), _log(admin_user, appeal), _log(admin_user, popup)]
    about_kept = _log(admin_user, kept)

    later = clock.now() + dt.timedelta(days=settings.RETENTION_RESIDENT_DAYS + 30)
    LogEntry.objects.filter(pk=about_kept.pk).update(action_time=later - dt.timedelta(days=1))
    with clock.frozen_at(later):
        done = retention.retention_forget_due()

    assert Resident.objects.get(pk=gone.pk).name == ""
    assert done["admin_log"] == len(about_gone)
    assert not LogEntry.objects.filter(pk__in=[e.pk for e in about_gone]).exists()
    assert not LogEntry.objects.filter(object_repr__contains="赵").exists()
    assert LogEntry.objects.filter(pk=about_kept.pk).exists()

    with clock.frozen_at(later + dt.timedelta(days=settings.RETENTION_ADMIN_LOG_DAYS + 1)):
        assert retention.retention_forget_due()["admin_log"] == 1
    assert not LogEntry.objects.exists()
