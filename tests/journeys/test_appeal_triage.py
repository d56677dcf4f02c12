"""An operator takes an emergency appeal from the queue, looks at the screenshot, logs a call
and routes it to the community, in a desktop browser."""

import pytest

from appeals.models import Appeal
from appeals.services import evidence_store
from communities.models import User
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory
from tests.factories.appeals import AppealFactory, upload

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]


def test_operator_triages_an_emergency(page, live_server, monkeypatch):
    from appeals.clearance import tasks

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: None)
    User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR)
    community = CommunityFactory(name="劲松社区")
    resident = ResidentFactory(community=community)
    emergency = AppealFactory(resident=resident, popup=PopupCaseFactory(resident=resident), priority=1,
                              category="emergency_medical")
    AppealFactory()  # a normal appeal, listed after the emergency
    evidence_store(upload=upload(), appeal=emergency)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "op")
    page.fill("#id_password", "pass-1234-word")
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.goto(live_server.url + "/console/appeals/")
    first = page.locator("table.queue tbody tr").first.locator("a").first
    assert first.inner_text() == emergency.reference
    with page.expect_navigation():
        first.click()
    assert page.locator(".gallery img").count() == 0  # not assigned yet: no screenshots
    with page.expect_navigation():
        page.click(f"form[action$='/{emergency.pk}/assign-me/'] button")
    assert page.locator(".gallery img").count() == 1
    # The thumbnail is lazy-loaded, so the page's load event does not wait for it: wait for the
    # image itself (a failed load leaves naturalWidth at 0 and times out here).
    page.wait_for_function(
        "() => { const i = document.querySelector('.gallery img'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=15_000,
    )
    form = page.locator(f"form[action$='/{emergency.pk}/contact/']")
    form.locator("select[name=direction]").select_option("outbound")
    form.locator("select[name=outcome]").select_option("reached")
    form.locator("input[name=note]").fill("hospital appointment confirmed")
    with page.expect_navigation():
        form.locator("button").click()
    route = page.locator(f"form[action$='/{emergency.pk}/route/']")
    route.locator(f"input[name=community][value='{community.pk}']").check()
    with page.expect_navigation():
        route.locator("button").click()
    emergency.refresh_from_db()
    assert emergency.status == Appeal.Status.ROUTED and emergency.routed_community == community
    # routing is a decision: the operator is back on the queue the ticket was opened from
    assert page.url == live_server.url + "/console/appeals/"
    page.goto(f"{live_server.url}/console/appeals/{emergency.pk}/")
    assert "hospital appointment confirmed" in page.content()
