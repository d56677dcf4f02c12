"""Merging a more urgent duplicate raises the surviving appeal's priority *and* brings its SLA due
time forward (never later than it was, nor than the duplicate's own), so an emergency merged into
a normal ticket keeps an emergency deadline and the sweep escalates it on time."""

import datetime as dt

import pytest
from django.utils import timezone

from appeals.models import Appeal, AppealEvent
from appeals.services import appeal_merge, appeal_sla_sweep, sla_due
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def resident(resident_with_popup):
    return resident_with_popup[0]


def test_emergency_merged_into_a_normal_ticket_gets_the_emergency_deadline(resident, operator, settings):
    # given a normal ticket filed 3 hours ago (due in 21 h) and an emergency filed just now
    now = timezone.now()
    normal = AppealFactory(resident=resident, created_at=now - dt.timedelta(hours=3))
    emergency = AppealFactory(resident=resident, priority=Appeal.Priority.EMERGENCY, created_at=now)
    # when the emergency is merged into the normal ticket
    into = appeal_merge(duplicate=emergency, into=normal, actor=operator)
    # then the ticket is an emergency due within the emergency window, not the normal 24 h
    into.refresh_from_db()
    assert into.priority == Appeal.Priority.EMERGENCY
    assert into.sla_due_at <= now + dt.timedelta(hours=settings.APPEALS_SLA_HOURS[1], minutes=1)
    assert into.sla_due_at == emergency.sla_due_at
    event = into.events.get(kind=AppealEvent.Kind.MERGED_IN)
    assert event.data["priority"] == {"from": Appeal.Priority.NORMAL, "to": Appeal.Priority.EMERGENCY}


def test_an_overdue_emergency_merged_in_is_escalated_by_the_next_sweep(resident, operator):
    now = timezone.now()
    normal = AppealFactory(resident=resident, created_at=now - dt.timedelta(hours=1))
    late_emergency = AppealFactory(resident=resident, priority=Appeal.Priority.EMERGENCY,
                                   created_at=now - dt.timedelta(hours=5))
    into = appeal_merge(duplicate=late_emergency, into=normal, actor=operator)
    assert into.sla_due_at == late_emergency.sla_due_at < now
    assert appeal_sla_sweep(now=now) == 1
    into.refresh_from_db()
    assert into.sla_breached_at == now and into.escalated_at == now


def test_a_less_urgent_duplicate_leaves_priority_and_deadline_alone(resident, operator):
    now = timezone.now()
    emergency = AppealFactory(resident=resident, priority=Appeal.Priority.EMERGENCY, created_at=now)
    normal = AppealFactory(resident=resident, created_at=now - dt.timedelta(hours=20))
    due = emergency.sla_due_at
    into = appeal_merge(duplicate=normal, into=emergency, actor=operator)
    into.refresh_from_db()
    assert into.priority == Appeal.Priority.EMERGENCY and into.sla_due_at == due


def test_the_deadline_never_moves_later(resident, operator):
    # given a normal ticket already due in 30 minutes and a "high" duplicate filed now (12 h)
    now = timezone.now()
    normal = AppealFactory(resident=resident, created_at=now - dt.timedelta(hours=23, minutes=30))
    high = AppealFactory(resident=resident, priority=Appeal.Priority.HIGH, created_at=now)
    due = normal.sla_due_at
    into = appeal_merge(duplicate=high, into=normal, actor=operator)
    into.refresh_from_db()
    assert into.priority == Appeal.Priority.HIGH
    assert into.sla_due_at == due < sla_due(Appeal.Priority.HIGH, now)
