"""The resident's confirmation (where they are, their address, symptoms, contact with a case)
is encrypted at rest like the other personal data: the column holds ciphertext, the worker's
page shows the answers, and rows written before were encrypted by the migration."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from appeals.clearance.models import ClearanceTask
from appeals.clearance.tasks import clearance_open_for_appeal
from communities import pii
from tests.clearance.helpers import confirmation_post, token_in
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory


def raw_confirmation(task_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT confirmation::text FROM clearance_clearancetask WHERE id = %s", [task_id])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_submitted_confirmation_is_ciphertext_in_the_database(client, sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()
    with django_capture_on_commit_callbacks(execute=True):
        clearance_open_for_appeal.delay(appeal.pk)
    task = ClearanceTask.objects.get(appeal=appeal)
    url = reverse("clearance:link", args=[token_in(sms_outbox.outbox[0])])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, confirmation_post(symptoms=["fever"])).status_code == 200
    stored = raw_confirmation(task.pk)
    for clear in ("河北省保定市莲池区", "3号楼2单元501", "fever", "outside", "2022-11-20"):
        assert clear not in stored
    assert stored.startswith("gAAAAA") and json.loads(pii.decrypt(stored))["address"] == "3号楼2单元501"
    task.refresh_from_db()
    assert task.confirmation["address"] == "3号楼2单元501" and task.confirmation["health"]["symptoms"] == ["fever"]
    worker = WorkerFactory(communities=[task.community])
    client.force_login(worker)
    page = client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    assert "3号楼2单元501" in page and "河北省保定市莲池区" in page


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_confirmations_stored_in_clear():
    task = ClearanceTaskFactory()
    executor = MigrationExecutor(connection)
    executor.migrate([("clearance", "0006_verbose_names")])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE clearance_clearancetask SET confirmation = %s::jsonb WHERE id = %s",
                       [json.dumps({"address": "5号楼101", "health": {"contact_with_case": True}}), task.pk])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    stored = raw_confirmation(task.pk)
    assert "5号楼101" not in stored and stored.startswith("gAAAAA")
    task.refresh_from_db()
    assert task.confirmation == {"address": "5号楼101", "health": {"contact_with_case": True}}
