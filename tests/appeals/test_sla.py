"""SLA per priority, and the beat job that marks breaches and escalates."""

import datetime as dt

import pytest
from django.utils import timezone

from appeals import tasks
from appeals.models import Appeal, AppealEvent
from appeals.services import appeal_file, appeal_sla_sweep
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def test_emergency_gets_two_hours_and_normal_twenty_four(resident_with_popup):
    resident, popup = resident_with_popup
    emergency, _ = appeal_file(resident=resident, popup=popup, category="emergency_relative")
    normal, _ = appeal_file(resident=resident, popup=None, category="correction")
    assert emergency.sla_due_at - emergency.created_at == dt.timedelta(hours=2)
    assert normal.sla_due_at - normal.created_at == dt.timedelta(hours=24)


def test_sla_hours_are_configurable(resident_with_popup, settings):
    settings.APPEALS_SLA_HOURS = {1: 1, 2: 6, 3: 48}
    resident, popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup=popup, category="stranded", currently_outside_city=True,
                            outside_since=timezone.localdate() - dt.timedelta(days=40))
    assert appeal.sla_due_at - appeal.created_at == dt.timedelta(hours=6)


def test_sweep_marks_breaches_and_escalates_once():
    now = timezone.now()
    late = AppealFactory(created_at=now - dt.timedelta(hours=30))
    late_emergency = AppealFactory(priority=1, created_at=now - dt.timedelta(hours=3))
    on_time = AppealFactory(created_at=now - dt.timedelta(hours=1))
    closed_late = AppealFactory(created_at=now - dt.timedelta(hours=30), status=Appeal.Status.CLOSED)
    assert appeal_sla_sweep(now=now) == 2
    for appeal in (late, late_emergency, on_time, closed_late):
        appeal.refresh_from_db()
    assert late.sla_breached_at == now and late.escalated_at == now
    assert late_emergency.sla_breached_at == now
    assert on_time.sla_breached_at is None and closed_late.sla_breached_at is None
    assert sorted(late.events.values_list("kind", flat=True)) == [AppealEvent.Kind.ESCALATED, AppealEvent.Kind.SLA_BREACHED]
    # a rerun changes nothing
    assert tasks.appeal_sla_sweep.delay().get() == 0
    assert AppealEvent.objects.count() == 4


def test_breached_queue_lists_them_for_supervisors(client, supervisor):
    from django.urls import reverse

    late = AppealFactory(created_at=timezone.now() - dt.timedelta(hours=30))
    fresh = AppealFactory()
    appeal_sla_sweep()
    client.force_login(supervisor)
    page = client.get(reverse("appeals:queue"), {"queue": "breached"}).content.decode()
    assert late.reference in page and fresh.reference not in page
    assert 'class="p3 breached"' in page


def test_beat_schedule_has_the_sweep():
    from appeals.schedule import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["appeals-sla-sweep"]["task"] == "appeals.tasks.appeal_sla_sweep"


def test_sweep_sql_status_list_matches_the_model():
    import inspect

    from appeals import services

    source = inspect.getsource(services.appeal_sla_sweep)
    literal = ", ".join(f"'{s}'" for s in Appeal.OPEN_STATUSES)
    assert f"status IN ({literal})" in source
