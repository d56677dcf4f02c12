"""Shared steps of the clearance tests."""

import datetime as dt
import re

from django.urls import reverse

from appeals.clearance.models import ClearanceTask
from healthkit import clock
from healthkit.models import TestResult
from healthkit.sms import SentMessage
from tests.factories import PopupCaseFactory, ResidentFactory, TestResultFactory, make_id_number
from tests.factories.clearance import WorkerFactory

TOKEN_RE = re.compile(r"/clearance/r/([^/\s]+)/")


def token_in(message: SentMessage) -> str:
    match = TOKEN_RE.search(message.body)
    assert match, message.body
    return match.group(1)


def confirmation_post(**overrides) -> dict:
    data = {
        "location": "outside", "current_place": "河北省保定市莲池区", "outside_since": "2022-10-01",
        "return_date": "2022-11-20", "return_means": "train", "address": "3号楼2单元501",
        "contact_phone": "13912345678", "symptoms": [], "declaration": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def negative_result(resident, sampled: dt.datetime) -> None:
    """A negative result sampled then and received six hours later."""
    received = sampled + dt.timedelta(hours=6)
    TestResultFactory(resident=resident, sampled_at=sampled, resulted_at=received, received_at=received,
                      result=TestResult.Outcome.NEGATIVE)


def checkpoint_preapproval(client, capture, *, at: dt.datetime, reason: str):
    """A resident with popup 3 pre-approved at a checkpoint by their community's worker through
    the console ("three days, two tests"), at `at`. Returns (resident, popup, worker, response, task)."""
    id_number = make_id_number()
    resident = ResidentFactory(id_number=id_number)
    popup = PopupCaseFactory(resident=resident, popup_type=3, raised_at=at - dt.timedelta(hours=3))
    worker = WorkerFactory(communities=[resident.community])
    client.force_login(worker)
    with clock.frozen_at(at), capture(execute=True):
        response = client.post(reverse("clearance:checkpoint"), {
            "id_number": id_number, "community": resident.community_id, "measure": "three_days_two_tests",
            "reason": reason})
    return resident, popup, worker, response, ClearanceTask.objects.get(resident=resident)
