"""Pictures are cleaned before the appeal and its community task are locked.

Cleaning a phone screenshot takes up to 1-2 s of CPU, nine of them several seconds; a console
action on the same appeal or task waits at most 5 s for a lock and then answers 503. So while
any picture of a filed appeal is being cleaned (the resident's evidence link, a hotline
operator's upload), another session can still lock the appeal's row and its task's row."""

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import translation

from appeals import notices
from appeals import services as appeal_services
from appeals.clearance import services as clearance_services
from appeals.models import Appeal
from communities.models import User
from healthkit.errors import ApplicationError
from tests.factories import UserFactory
from tests.factories.appeals import image_bytes, upload
from tests.factories.clearance import RoutedAppealFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _other_session_can_lock(appeal_id: int, task_id: int | None) -> dict[str, bool]:
    """From a connection of its own, as a second staff member's request: try each row at once."""
    params = {k: v for k, v in connections[DEFAULT_DB_ALIAS].get_connection_params().items() if k != "options"}
    free: dict[str, bool] = {}
    with psycopg.connect(**params, autocommit=True) as other:
        rows = {"appeal": ("appeals_appeal", appeal_id)}
        if task_id is not None:
            rows["task"] = ("clearance_clearancetask", task_id)
        for name, (table, pk) in rows.items():
            try:
                with other.transaction():
                    other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])  # noqa: S608
                free[name] = True
            except psycopg.errors.LockNotAvailable:
                free[name] = False
    return free


@pytest.fixture
def cleaning_watched(monkeypatch):
    """Every picture cleaned records whether the appeal's and task's rows were free meanwhile."""
    seen: list[dict[str, bool]] = []
    watched: dict[str, int | None] = {}
    real = appeal_services.clean_image

    def clean_image(file):
        seen.append(_other_session_can_lock(watched["appeal"], watched.get("task")))
        return real(file)

    monkeypatch.setattr(appeal_services, "clean_image", clean_image)
    return watched, seen


def _routed_on_hold(monkeypatch) -> tuple[Appeal, int, str]:
    appeal = RoutedAppealFactory(popup=None)
    task = clearance_services.clearance_open_for_appeal(appeal=appeal)
    sent: dict[str, str] = {}
    monkeypatch.setattr(notices, "notify_waiting",
                        lambda appeal, *, link, url, message="": sent.update(token=url.rstrip("/").rsplit("/", 1)[-1]))
    appeal_services.appeal_request_evidence(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR),
                                            message="请补充行程卡截图")
    return appeal, task.pk, sent["token"]


def test_the_resident_s_pictures_are_cleaned_before_the_appeal_and_its_task_are_locked(monkeypatch,
                                                                                       cleaning_watched):
    watched, seen = cleaning_watched
    appeal, task_id, token = _routed_on_hold(monkeypatch)
    watched.update(appeal=appeal.pk, task=task_id)

    appeal_services.appeal_link_submit(token=token, uploads=[upload("a.png"), upload("b.png", image_bytes(color=(9, 9, 9)))])

    assert seen == [{"appeal": True, "task": True}] * 2
    appeal.refresh_from_db()
    assert appeal.evidence.count() == 2 and appeal.status == Appeal.Status.ROUTED


def test_a_hotline_upload_is_cleaned_before_the_appeal_is_locked(cleaning_watched):
    watched, seen = cleaning_watched
    appeal = RoutedAppealFactory(popup=None)
    task = clearance_services.clearance_open_for_appeal(appeal=appeal)
    watched.update(appeal=appeal.pk, task=task.pk)

    evidence = appeal_services.appeal_evidence_add(appeal=appeal, upload=upload(),
                                                   actor=UserFactory(role=User.Role.OPERATOR))

    assert seen == [{"appeal": True, "task": True}]
    assert evidence.appeal_id == appeal.pk


def test_a_link_the_appeal_lost_while_its_pictures_were_cleaned_stores_nothing(monkeypatch):
    """The link is checked again under the locks: closed meanwhile (a decision by another staff
    member), the pictures are refused and nothing is kept."""
    appeal, _task_id, token = _routed_on_hold(monkeypatch)
    real = appeal_services.clean_image

    def clean_image(file):
        Appeal.objects.filter(pk=appeal.pk).update(status=Appeal.Status.CLOSED)
        return real(file)

    monkeypatch.setattr(appeal_services, "clean_image", clean_image)
    with translation.override("en"), pytest.raises(ApplicationError) as refused:
        appeal_services.appeal_link_submit(token=token, uploads=[upload()])

    assert "no longer valid" in refused.value.message
    assert appeal.evidence.count() == 0
