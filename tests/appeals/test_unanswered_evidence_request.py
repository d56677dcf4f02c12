"""An evidence request the resident never answers: once the link has expired, the appeal goes
back to whoever had it (the community, whose task resumes with its SLA clock running, or the
hotline) instead of waiting, and its task on hold, for good."""

import datetime as dt

import pytest
from django.conf import settings

from appeals import notices
from appeals import services as appeal_services
from appeals.clearance import services as clearance_services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal, AppealEvent
from communities.models import User
from healthkit import clock
from tests.factories import UserFactory
from tests.factories.appeals import AppealFactory, upload
from tests.factories.clearance import RoutedAppealFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 11, 10, 10)
TTL = dt.timedelta(hours=settings.APPEALS_LINK_TTL_HOURS)


def _expiry(appeal: Appeal) -> dt.datetime:
    """When the appeal's newest link runs out (links live APPEALS_LINK_TTL_HOURS from now)."""
    return appeal.links.order_by("-pk").values_list("expires_at", flat=True).first()


def _ask(appeal: Appeal, monkeypatch, *, at: dt.datetime) -> str:
    sent: dict[str, str] = {}
    monkeypatch.setattr(notices, "notify_waiting",
                        lambda appeal, *, link, url, message="": sent.update(token=url.rstrip("/").rsplit("/", 1)[-1]))
    with clock.frozen_at(at):
        appeal_services.appeal_request_evidence(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR),
                                                message="请补充行程卡截图")
    return sent["token"]


def _routed_task() -> tuple[Appeal, ClearanceTask]:
    appeal = RoutedAppealFactory(popup=None)
    with clock.frozen_at(AT):
        return appeal, clearance_services.clearance_open_for_appeal(appeal=appeal)


def test_an_expired_request_gives_the_appeal_back_to_the_community_and_resumes_its_task(monkeypatch):
    appeal, task = _routed_task()
    due = task.sla_due_at
    _ask(appeal, monkeypatch, at=AT + dt.timedelta(hours=1))
    expiry = _expiry(appeal)

    assert appeal_services.appeal_unanswered_sweep(now=expiry - dt.timedelta(minutes=1)) == 0  # still works
    later = expiry + dt.timedelta(minutes=5)
    assert appeal_services.appeal_unanswered_sweep(now=later) == 1
    assert appeal_services.appeal_unanswered_sweep(now=later) == 0  # a rerun finds nothing

    appeal.refresh_from_db()
    task.refresh_from_db()
    assert appeal.status == Appeal.Status.ROUTED
    change = appeal.events.filter(kind=AppealEvent.Kind.STATUS_CHANGED).last()
    assert change.data == {"from": "waiting_resident", "to": "routed"} and change.note
    assert task.on_hold_since is None and task.state == ClearanceTask.State.OPEN
    assert task.sla_due_at == due + (later - (AT + dt.timedelta(hours=1)))  # the time on hold did not count
    resumed = task.events.get(kind=ClearanceEvent.Kind.RESUMED_UNANSWERED)
    assert resumed.actor_label == "unanswered-sweep" and resumed.data["unanswered"] is True
    assert not task.events.filter(kind=ClearanceEvent.Kind.RESUMED).exists()


def test_an_expired_request_of_the_hotline_s_own_appeal_puts_it_back_in_progress(monkeypatch):
    appeal = AppealFactory()
    _ask(appeal, monkeypatch, at=AT)

    assert appeal_services.appeal_unanswered_sweep(now=_expiry(appeal) + dt.timedelta(minutes=1)) == 1

    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.IN_PROGRESS


def test_an_answered_request_or_a_newer_live_one_is_left_alone(monkeypatch):
    answered, _task = _routed_task()
    token = _ask(answered, monkeypatch, at=AT)
    with clock.frozen_at(AT + dt.timedelta(minutes=5)):  # the link lives on the clock it was made by
        appeal_services.appeal_link_submit(token=token, uploads=[upload()])
    asked_again = AppealFactory()
    _ask(asked_again, monkeypatch, at=AT)
    first = _expiry(asked_again)
    _ask(asked_again, monkeypatch, at=AT + dt.timedelta(minutes=1))
    asked_again.links.filter(expires_at=first).update(expires_at=first - TTL)  # the first ran out long ago

    assert appeal_services.appeal_unanswered_sweep(now=first - dt.timedelta(minutes=1)) == 0

    asked_again.refresh_from_db()
    assert asked_again.status == Appeal.Status.WAITING_RESIDENT


def test_the_sweep_is_on_beat():
    from appeals.schedule import BEAT_SCHEDULE

    assert "appeals.tasks.appeal_unanswered_sweep" in {entry["task"] for entry in BEAT_SCHEDULE.values()}
