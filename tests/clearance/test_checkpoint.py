"""The self-drive route: a worker pre-approves a resident at a checkpoint by phone; the
commitment letter and the follow-up tests are then tracked like an investigation."""

import datetime as dt

import pytest
from django.urls import reverse

from appeals.clearance import services
from appeals.clearance.models import ClearanceLink, ClearanceTask
from communities.models import PersonalDataAccess
from healthkit import clock, engine
from healthkit.models import HealthStatusOrder, PopupCase, TestRequirement
from tests.clearance.helpers import checkpoint_preapproval, negative_result, token_in
from tests.factories import (
    CommunityFactory,
    PopupCaseFactory,
    ResidentFactory,
    make_id_number,
)
from tests.factories.clearance import WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 10, 8, 15)


def test_preapproval_by_id_number_tracks_letter_and_three_days_two_tests(client, sms_outbox,
                                                                         django_capture_on_commit_callbacks):
    resident, popup, worker, response, task = checkpoint_preapproval(
        client, django_capture_on_commit_callbacks, at=AT, reason="京港澳高速杜家坎检查站，京A·12345，社区同意接收")
    assert response.status_code == 302
    assert task.origin == ClearanceTask.Origin.CHECKPOINT and task.state == ClearanceTask.State.MEASURES
    assert task.popup == popup and task.commitment_required
    assert PersonalDataAccess.objects.filter(actor=worker, action=PersonalDataAccess.Action.LOOKUP).count() == 1
    days = TestRequirement.objects.filter(resident=resident, kind="checkpoint").order_by("trigger_at")
    assert [r.trigger_at for r in days] == [AT, cst(2022, 10, 10)]
    # resident is texted the notice and the commitment link
    assert ClearanceLink.objects.filter(task=task, purpose=ClearanceLink.Purpose.COMMITMENT).count() == 1
    token = token_in(sms_outbox.outbox[-1])
    client.logout()
    with clock.frozen_at(AT + dt.timedelta(hours=1)):
        assert client.post(f"/clearance/r/{token}/", {"signature": resident.name, "agree": "on"}).status_code == 200
    # both tests negative: lifted after day 3
    negative_result(resident, AT + dt.timedelta(hours=2))
    negative_result(resident, cst(2022, 10, 10, 9))
    assert services.clearance_measures_sweep(at=cst(2022, 10, 10, 20)) == 0   # day 3 not over
    assert services.clearance_measures_sweep(at=cst(2022, 10, 11, 0, 5)) == 1
    popup.refresh_from_db()
    assert popup.state == PopupCase.State.LIFTED


def test_missed_checkpoint_test_raises_type_4(django_capture_on_commit_callbacks):
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=3, raised_at=AT - dt.timedelta(hours=3))
    worker = WorkerFactory(communities=[resident.community])
    with clock.frozen_at(AT):
        services.clearance_checkpoint_preapprove(actor=worker, resident=resident, community=resident.community,
                                                 popup=popup, measure="three_days_two_tests", reason="检查站电话")
    engine.evaluate(resident_ids=[resident.pk], at=cst(2022, 10, 10))  # day 1 deadline passed, no test
    assert PopupCase.objects.filter(resident=resident, popup_type=4, state="active").exists()


def test_home_observation_variant_orders_yellow():
    resident = ResidentFactory()
    worker = WorkerFactory(communities=[resident.community])
    with clock.frozen_at(AT):
        services.clearance_checkpoint_preapprove(actor=worker, resident=resident, community=resident.community,
                                                 popup=None, measure="home_observation", reason="检查站电话")
    assert HealthStatusOrder.objects.get(resident=resident).status == "yellow"
    assert TestRequirement.objects.filter(resident=resident).count() == 3


def test_resident_outside_my_communities_is_not_found(client):
    id_number = make_id_number()
    ResidentFactory(id_number=id_number, community=CommunityFactory())
    worker = WorkerFactory(communities=[CommunityFactory()])
    client.force_login(worker)
    response = client.post(reverse("clearance:checkpoint"), {
        "id_number": id_number, "community": worker.communities.get().pk, "measure": "three_days_two_tests",
        "reason": "检查站"})
    assert response.status_code == 400
    assert not ClearanceTask.objects.exists()
    # the failed look-up is still on the audit log
    assert PersonalDataAccess.objects.filter(actor=worker, action=PersonalDataAccess.Action.LOOKUP,
                                             resident=None).exists()


def test_checkpoint_lookups_are_rate_limited_per_user(client, settings):
    settings.CLEARANCE_LOOKUP_RATE_LIMIT = "2/3600"
    worker = WorkerFactory(communities=[CommunityFactory()])
    client.force_login(worker)
    data = {"id_number": make_id_number(), "community": worker.communities.get().pk,
            "measure": "three_days_two_tests", "reason": "检查站"}
    assert [client.post(reverse("clearance:checkpoint"), data).status_code for _ in range(3)] == [400, 400, 429]
    # the refused third try looked nobody up
    assert PersonalDataAccess.objects.filter(actor=worker, action=PersonalDataAccess.Action.LOOKUP).count() == 2
