"""Two pictures uploaded at the same moment to a form draft (two browser tabs, a double submit)
or an appeal with room for one: one is stored, the other refused; the 9-picture limit holds."""

import pytest
from django.conf import settings

from appeals import services
from appeals.evidence import EvidenceRejected
from appeals.models import AppealEvidence
from tests.concurrency import at_once
from tests.factories.appeals import AppealFactory, image_bytes, upload

pytestmark = pytest.mark.django_db(transaction=True)


def _picture(n: int):
    return upload(f"{n}.png", image_bytes("PNG", (600, 1000), color=(n * 9 % 256, 40, 200 - n)))


def _fill(**owner) -> None:
    for n in range(settings.APPEALS_EVIDENCE_MAX_FILES - 1):
        services.evidence_store(upload=_picture(n), **owner)


@pytest.mark.parametrize("attempt", range(3))
def test_two_uploads_at_once_to_a_draft_with_room_for_one_store_one(attempt):
    key = f"draft-{attempt}"
    _fill(draft_key=key)

    results = at_once(lambda: services.evidence_store(upload=_picture(100), draft_key=key),
                      lambda: services.evidence_store(upload=_picture(101), draft_key=key))

    assert AppealEvidence.objects.filter(appeal__isnull=True, draft_key=key).count() == settings.APPEALS_EVIDENCE_MAX_FILES
    assert sorted(type(r).__name__ for r in results) == ["AppealEvidence", "EvidenceRejected"], results
    refused = next(r for r in results if isinstance(r, EvidenceRejected))
    assert str(settings.APPEALS_EVIDENCE_MAX_FILES) in refused.message


def test_two_uploads_at_once_to_an_appeal_with_room_for_one_store_one():
    appeal = AppealFactory()
    _fill(appeal=appeal)

    results = at_once(lambda: services.evidence_store(upload=_picture(100), appeal=appeal),
                      lambda: services.evidence_store(upload=_picture(101), appeal=appeal))

    assert appeal.evidence.count() == settings.APPEALS_EVIDENCE_MAX_FILES
    assert sum(isinstance(r, EvidenceRejected) for r in results) == 1, results
