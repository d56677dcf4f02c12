"""The ticket page shows everything an operator needs, in a bounded number of queries."""

import pytest
from django.urls import reverse

from appeals.services import appeal_contact_log, evidence_store
from communities.models import PersonalDataAccess
from tests.factories.appeals import AppealEventFactory, AppealFactory, image_bytes, upload

pytestmark = pytest.mark.django_db


def _rich_appeal(resident, popup, operator, n):
    appeal = AppealFactory(resident=resident, popup=popup, assigned_to=operator, repeat_count=2)
    for i in range(n):
        evidence_store(upload=upload(data=image_bytes("PNG", (40 + i, 40))), appeal=appeal)
        appeal_contact_log(appeal=appeal, actor=operator, direction="outbound", outcome="no_answer", note=f"try {i}")
        AppealEventFactory(appeal=appeal, kind="note", note=f"n{i}")
    return appeal


@pytest.mark.parametrize("n", [1, 6])
def test_ticket_queries_do_not_grow_with_history(client, resident_with_popup, operator, n, django_assert_max_num_queries):
    resident, popup = resident_with_popup
    appeal = _rich_appeal(resident, popup, operator, n)
    client.force_login(operator)
    # +2: the access audit row and the enumeration count; +1: the community's task for the appeal
    with django_assert_max_num_queries(17):
        response = client.get(reverse("appeals:ticket", args=[appeal.pk]))
    page = response.content.decode()
    assert page.count('src="/console/appeals/evidence/') == n
    assert f"try {n - 1}" in page and 'id="repeat-count">2<' in page
    assert PersonalDataAccess.objects.filter(action="view", context=f"appeal:{appeal.pk}/console").count() == 1
