"""A resident files again while an operator closes the same appeal (and the like: any two
services where one holds the resident and the other the appeal): one waits for the other, never
a deadlock (an OperationalError and a 500). The filing then opens a new appeal, since the one
it would have joined is closed."""

import pytest

from appeals import services
from appeals.models import Appeal
from communities.models import User
from tests.concurrency import at_once
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("attempt", range(3))
def test_refiling_while_the_operator_closes_waits_instead_of_deadlocking(attempt):
    resident = ResidentFactory(phone="13900139001")
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    appeal, _folded = services.appeal_file(resident=resident, popup=popup, category="correction")
    operator = UserFactory(role=User.Role.OPERATOR)

    closed, filed = at_once(
        lambda: services.appeal_close(appeal=appeal, actor=operator, reason="核实无误", outcome="rejected"),
        lambda: services.appeal_file(resident=resident, popup=popup, category="correction"))

    assert isinstance(closed, Appeal), closed
    assert isinstance(filed, tuple), filed
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.CLOSED
    statuses = sorted(Appeal.objects.filter(resident=resident).values_list("status", flat=True))
    # folded before the close (one appeal, closed) or filed after it (a new open one)
    assert statuses in (["closed"], ["closed", "new"])
    assert (statuses == ["closed"]) == filed[1]
