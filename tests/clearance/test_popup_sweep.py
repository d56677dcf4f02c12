"""The beat sweep opens a task for every popup that needs the community, once, set-based."""

import datetime as dt

import pytest
from django.utils import timezone

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.clearance.schedule import BEAT_SCHEDULE
from healthkit.models import PopupCase
from tests.factories import PopupCaseFactory, ResidentFactory
from tests.factories.clearance import RoutedAppealFactory
from tests.factories.healthkit import ArrivalFactory, StayFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def _back_in_city(resident):
    StayFactory(resident=resident, started_at=NOW - dt.timedelta(days=5), ended_at=NOW - dt.timedelta(days=2))
    ArrivalFactory(resident=resident, arrived_at=NOW - dt.timedelta(days=2))


def test_sweep_picks_the_popups_that_need_the_community(sms_outbox, django_capture_on_commit_callbacks):
    risk = PopupCaseFactory(popup_type=3, source="venue", dedupe_key="venue-risk:7")
    upstream_1 = PopupCaseFactory(popup_type=1, source="upstream")
    back = PopupCaseFactory(popup_type=1, source="engine")
    _back_in_city(back.resident)
    # not for the community: still outside (open stay), type 4, already lifted, no community on record
    away = PopupCaseFactory(popup_type=1, source="engine")
    StayFactory(resident=away.resident, started_at=NOW - dt.timedelta(days=3), ended_at=None)
    PopupCaseFactory(popup_type=4, source="engine")
    PopupCaseFactory(popup_type=3, state=PopupCase.State.LIFTED, lifted_at=NOW)
    PopupCaseFactory(popup_type=3, resident=ResidentFactory(community=None))

    with django_capture_on_commit_callbacks(execute=True):
        ids = services.clearance_popup_sweep()

    tasks = {t.popup_id: t for t in ClearanceTask.objects.filter(pk__in=ids)}
    assert set(tasks) == {risk.pk, upstream_1.pk, back.pk}
    assert tasks[risk.pk].origin == ClearanceTask.Origin.RISK_LINK
    assert tasks[upstream_1.pk].origin == ClearanceTask.Origin.MISATTRIBUTION
    assert tasks[back.pk].origin == ClearanceTask.Origin.IN_CITY
    assert all(t.community_id == t.resident.community_id and t.sla_due_at for t in tasks.values())
    assert ClearanceEvent.objects.filter(task__in=ids, kind=ClearanceEvent.Kind.OPENED).count() == 3
    # each resident got their link
    assert ClearanceLink.objects.filter(task__in=ids).count() == 3
    assert len(sms_outbox.outbox) == 3


def test_sweep_is_idempotent_and_never_reopens(sms_outbox, django_capture_on_commit_callbacks):
    popup = PopupCaseFactory(popup_type=3)
    with django_capture_on_commit_callbacks(execute=True):
        (task_id,) = services.clearance_popup_sweep()
        assert services.clearance_popup_sweep() == []
    task = ClearanceTask.objects.get(pk=task_id)
    services.clearance_reject(task=task, actor=None, reason="外地7日内有涉疫风险", next_step="wait_7_days")
    assert services.clearance_popup_sweep() == []
    assert ClearanceTask.objects.filter(popup=popup).count() == 1
    assert len(sms_outbox.outbox) == 1


def test_popup_with_an_appeal_task_is_not_doubled(django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()
    services.clearance_open_for_appeal(appeal=appeal)
    assert services.clearance_popup_sweep() == []


def test_the_sweep_respects_its_batch_limit():
    for _ in range(3):
        PopupCaseFactory(popup_type=3)
    assert len(services.clearance_popup_sweep(limit=2)) == 2
    assert len(services.clearance_popup_sweep(limit=2)) == 1


def test_jobs_are_on_the_beat_schedule():
    tasks = {entry["task"] for entry in BEAT_SCHEDULE.values()}
    assert tasks == {
        "appeals.clearance.tasks.clearance_popup_sweep", "appeals.clearance.tasks.clearance_sla_sweep",
        "appeals.clearance.tasks.clearance_measures_sweep", "appeals.clearance.tasks.clearance_relief_sweep",
        "appeals.clearance.tasks.clearance_link_catch_up",
    }


def test_task_closed_when_its_popup_ends_elsewhere():
    from healthkit.services import popup_withdraw

    popup = PopupCaseFactory(popup_type=3)
    (task_id,) = services.clearance_popup_sweep()
    popup_withdraw(case=popup, actor_label="venues", reason="风险时段更正")
    services.clearance_measures_sweep()
    task = ClearanceTask.objects.get(pk=task_id)
    assert task.state == ClearanceTask.State.CLOSED and task.closed_at is not None
    assert task.events.filter(kind=ClearanceEvent.Kind.CLOSED).exists()


def test_policy_can_ask_for_the_commitment_letter_on_confirmation(client, sms_outbox,
                                                                   django_capture_on_commit_callbacks):
    from django.urls import reverse

    from healthkit.models import PopupPolicy
    from tests.clearance.helpers import confirmation_post, token_in

    policy = PopupPolicy.objects.get(popup_type=3, effective_to__isnull=True)
    policy.params = {**policy.params, "commitment_letter": True}
    policy.save()
    PopupCaseFactory(popup_type=3, policy=policy)
    PopupCaseFactory(popup_type=3)  # no policy on record: no letter
    with django_capture_on_commit_callbacks(execute=True):
        services.clearance_popup_sweep()
    asked = ClearanceTask.objects.get(popup__policy=policy)
    assert asked.commitment_required
    assert ClearanceTask.objects.filter(commitment_required=False).count() == 1
    token = token_in(next(m for m in sms_outbox.outbox if m.phone == asked.resident.phones.get().reveal_phone()))
    url = reverse("clearance:link", args=[token])
    assert client.post(url, confirmation_post()).status_code == 400          # letter not signed
    assert client.post(url, confirmation_post(signature=asked.resident.name)).status_code == 200
    asked.refresh_from_db()
    assert asked.commitment_signed_at is not None and asked.state == ClearanceTask.State.CONFIRMED


@pytest.mark.django_db(transaction=True)
def test_a_second_run_while_one_is_going_skips():
    import threading

    from django.db import connection, transaction

    PopupCaseFactory(popup_type=3)
    held, release, result = threading.Event(), threading.Event(), []

    def first_run_holding_the_lock():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('clearance:popup-sweep'))")
            held.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=first_run_holding_the_lock)
    thread.start()
    held.wait(10)
    result.append(services.clearance_popup_sweep())
    release.set()
    thread.join()
    assert result == [[]]
    assert len(services.clearance_popup_sweep()) == 1
