"""Browser journey: the resident answers the SMS link on a phone, the community worker decides
the task in the console, and the popup is lifted."""

import pytest

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from healthkit.models import PopupCase
from tests.clearance.helpers import token_in
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]


def test_resident_confirms_by_link_and_worker_accepts(page, live_server, sms_outbox):
    appeal = RoutedAppealFactory(popup__popup_type=1)  # popup 3 is lifted only through its investigation
    WorkerFactory(username="sg1", communities=[appeal.routed_community])
    task = services.clearance_open_for_appeal(appeal=appeal)
    token = token_in(sms_outbox.outbox[0])

    # the resident opens the link from the SMS and confirms
    page.goto(f"{live_server.url}/clearance/r/{token}/")
    page.check("input[name=location][value=outside]")
    page.fill("#id_current_place", "河北省保定市莲池区")
    page.fill("#id_return_date", "2022-11-20")
    page.select_option("#id_return_means", "train")
    page.fill("#id_address", "3号楼2单元501")
    page.fill("#id_contact_phone", "13912345678")
    page.check("#id_declaration")
    page.click("form button")
    page.wait_for_selector("#link-done")
    # a second visit is refused, with no data
    page.goto(f"{live_server.url}/clearance/r/{token}/")
    assert page.locator("#link-refused").get_attribute("data-reason") == "used"

    # the worker logs in, finds the task at the top of the worklist and accepts
    page.goto(live_server.url + "/console/clearance/")
    page.fill("#id_username", "sg1")
    page.fill("#id_password", "pass-1234-word")
    page.click("button[type=submit]")
    page.wait_for_selector("#worklist")
    page.click(f"#worklist a:text('{task.reference}')")
    page.wait_for_selector("#confirmation")
    assert "河北省保定市莲池区" in page.locator("#confirmation").inner_text()
    page.fill("#form-accept textarea[name=reason]", "核实无风险，同意返京")
    page.click("#form-accept button")
    page.wait_for_selector("ul.messages")

    task.refresh_from_db()
    appeal.popup.refresh_from_db()
    assert task.state == ClearanceTask.State.LIFTED
    assert appeal.popup.state == PopupCase.State.LIFTED
    # the state by its code: the label is in the page's language, whatever language an earlier
    # test left active in this thread
    assert page.locator("#task-state").get_attribute("data-state") == task.state
    assert len(sms_outbox.outbox) == 2


def test_worker_records_an_investigation_and_measures_start(page, live_server, sms_outbox):
    from healthkit.models import TestRequirement
    from tests.factories import PopupCaseFactory
    from tests.factories.clearance import ClearanceTaskFactory

    popup = PopupCaseFactory(popup_type=3)
    task = ClearanceTaskFactory(resident=popup.resident, popup=popup)
    WorkerFactory(username="sg2", communities=[task.community])

    page.goto(f"{live_server.url}/console/clearance/{task.pk}/")
    page.fill("#id_username", "sg2")
    page.fill("#id_password", "pass-1234-word")
    page.click("button[type=submit]")
    page.wait_for_selector("#form-investigate")
    # the outcome has no pre-selected answer: the worker picks one
    assert page.locator("#form-investigate input[name=outcome]:checked").count() == 0
    page.check("#form-investigate input[name=outcome][value=listed_area]")
    page.fill("#form-investigate textarea[name=reason]", "途经其他涉疫地区，需四次核酸")
    page.click("#form-investigate button")
    page.wait_for_selector("ul.messages")

    task.refresh_from_db()
    assert task.state == ClearanceTask.State.MEASURES and task.outcome == "listed_area"
    assert TestRequirement.objects.filter(resident=task.resident, kind="investigation").count() == 4
    assert page.locator("#form-investigate").count() == 0
    assert len(sms_outbox.outbox) == 1  # the resident is told what to do
