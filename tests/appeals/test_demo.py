"""appeals.demo.seed creates believable appeals in every status, quickly."""

import io
import random
import time

import pytest

from appeals import demo
from appeals.models import Appeal, AppealEvidence
from communities.models import User
from tests.factories import PopupCaseFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_demo_seed_covers_every_status_with_evidence():
    UserFactory(username="operator1", role=User.Role.OPERATOR)
    for _ in range(40):
        PopupCaseFactory()
    started = time.monotonic()
    demo.seed(rng=random.Random(1), stdout=io.StringIO())
    assert time.monotonic() - started < 10
    assert set(Appeal.objects.values_list("status", flat=True)) == set(Appeal.Status.values)
    assert Appeal.objects.filter(priority=Appeal.Priority.EMERGENCY).exists()
    evidence = AppealEvidence.objects.first()
    assert evidence is not None and evidence.file.storage.exists(evidence.file.name)
    for appeal in Appeal.objects.all():
        assert appeal.events.filter(kind="filed").exists()
