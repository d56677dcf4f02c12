"""Policy versions change from now on only, and a popup type never has a gap or an overlap.

Walks every stored version of every popup type: a version added, edited or withdrawn so that
the rules of an instant already past would change is refused with a clear message; so is a
gap; a new version from now on ends the version in force where it starts (never a gap, even
for a moment), and the engine applies it from that instant.
"""

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import translation

from healthkit import clock, services
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, PopupPolicy
from healthkit.selectors import policy_in_force
from tests.factories import UserFactory
from tests.factories.healthkit import LocalCaseFactory, StayFactory, cst
from tests.healthkit.engine_helpers import active_at

pytestmark = pytest.mark.django_db
NOW = cst(2022, 9, 1, 10)
US = dt.timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def _english_at_now():
    with translation.override("en"), clock.frozen_at(NOW):
        yield


def _rules():
    """Every type's versions, as the engine reads them."""
    return sorted(PopupPolicy.objects.values_list("popup_type", "version", "effective_from", "effective_to", "params"))


def _past_instants():
    """Each stored boundary, an instant on either side of it, and just before now."""
    instants = {NOW - US, NOW - dt.timedelta(days=1)}
    for start, end in PopupPolicy.objects.values_list("effective_from", "effective_to"):
        for edge in (start, end):
            if edge is not None:
                instants |= {edge - US, edge, edge + US}
    return sorted(t for t in instants if t < NOW)


def _in_force(instants):
    return {(t, popup_type): getattr(policy_in_force(popup_type, t), "pk", None)
            for t in instants for popup_type in range(1, 6)}


def _contiguous(popup_type):
    versions = list(PopupPolicy.objects.filter(popup_type=popup_type).order_by("effective_from"))
    assert versions[-1].effective_to is None
    for earlier, later in zip(versions, versions[1:], strict=False):
        assert earlier.effective_to == later.effective_from


def _version(popup_type, start, end=None, params=None, name="new"):
    return PopupPolicy(popup_type=popup_type, version=name, effective_from=start, effective_to=end,
                       params=params or {**policy_in_force(popup_type, NOW).params})


def _refused(change, match):
    before = _rules()
    with pytest.raises(ApplicationError, match=match):
        change()
    assert _rules() == before


@pytest.mark.parametrize("popup_type", [1, 2, 3, 4, 5])
def test_no_change_reaches_an_instant_already_past_and_no_gap_is_left(popup_type):
    past = _past_instants()
    history = _in_force(past)
    stored = list(PopupPolicy.objects.filter(popup_type=popup_type))
    for start in [t for t in past if t >= min(p.effective_from for p in stored) - US]:
        _refused(lambda start=start: services.policy_version_save(policy=_version(popup_type, start)),
                 "cannot take effect in the past")
    for policy in stored:
        edited = PopupPolicy.objects.get(pk=policy.pk)
        edited.params = {**edited.params, "description": "changed"}
        _refused(lambda edited=edited: services.policy_version_save(policy=edited), "cannot change")
        moved = PopupPolicy.objects.get(pk=policy.pk)
        moved.effective_from = moved.effective_from + dt.timedelta(hours=1)
        _refused(lambda moved=moved: services.policy_version_save(policy=moved), "cannot change")
        _refused(lambda policy=policy: services.policy_version_withdraw(policy=policy), "cannot be withdrawn")
        for end in (NOW - US, NOW + dt.timedelta(days=30)):
            ended = PopupPolicy.objects.get(pk=policy.pk)
            if ended.effective_to is None:  # the version in force: ending it leaves the type without one
                ended.effective_to = end
                _refused(lambda ended=ended: services.policy_version_save(policy=ended),
                         "cannot change" if end < NOW else "No version would be in force after")
    # a future version given an end short of the version it splits: a gap, named; past the next one: an overlap
    day = dt.timedelta(days=1)
    _refused(lambda: services.policy_version_save(policy=_version(popup_type, NOW + 10 * day, NOW + 11 * day)),
             "No version would be in force after")
    services.policy_version_save(policy=_version(popup_type, NOW + 30 * day, name="next-month"))
    _refused(lambda: services.policy_version_save(policy=_version(popup_type, NOW + 10 * day, NOW + 11 * day)),
             "No version would be in force from")
    _refused(lambda: services.policy_version_save(policy=_version(popup_type, NOW + 10 * day, NOW + 40 * day)),
             "is still in force when")
    assert _in_force(past) == history
    _contiguous(popup_type)


@pytest.mark.parametrize("popup_type", [1, 2, 3, 4, 5])
def test_a_version_from_now_on_ends_the_one_in_force_where_it_starts_and_withdrawing_it_gives_that_back(popup_type):
    past = _past_instants()
    history = _in_force(past)
    current = policy_in_force(popup_type, NOW)
    for start, name in ((NOW, "from-now"), (NOW + dt.timedelta(days=30), "next-month")):
        new = services.policy_version_save(policy=_version(popup_type, start, name=name))
        assert policy_in_force(popup_type, start - US).pk != new.pk
        assert policy_in_force(popup_type, start).pk == new.pk
        _contiguous(popup_type)
    # a future version moved: its predecessor follows; withdrawn: its predecessor takes its period back
    moved = PopupPolicy.objects.get(popup_type=popup_type, version="next-month")
    moved.effective_from = NOW + dt.timedelta(days=20)
    services.policy_version_save(policy=moved)
    _contiguous(popup_type)
    assert policy_in_force(popup_type, NOW + dt.timedelta(days=25)).version == "next-month"
    services.policy_version_withdraw(policy=moved)
    _contiguous(popup_type)
    assert policy_in_force(popup_type, NOW + dt.timedelta(days=400)).version == "from-now"
    assert PopupPolicy.objects.get(pk=current.pk).effective_to == NOW
    assert _in_force(past) == history


def test_a_popup_raised_under_the_old_window_is_lifted_at_the_new_versions_first_instant():
    """Given a type-1 popup under the 7-day window, when a 3-day version is added from a future
    instant, then the popup is lifted exactly there, and the lift names the new version."""
    stay = StayFactory(county="420111", started_at=cst(2022, 8, 28, 9), ended_at=cst(2022, 8, 30, 9))
    LocalCaseFactory(county="420111", reported_at=cst(2022, 8, 31, 10))
    assert active_at(stay.resident, NOW) == [1]
    change = cst(2022, 9, 3, 0)
    services.policy_version_save(policy=_version(1, change, params={"window_days": 3, "case_free_days": 7},
                                                 name="2022-09-03"))
    assert active_at(stay.resident, change - US) == [1]
    assert active_at(stay.resident, change) == []
    case = PopupCase.objects.get(resident=stay.resident, popup_type=1)
    assert case.lifted_at == change
    assert case.events.get(kind="lifted").data["policy"] == "2022-09-03"


def test_the_admin_refuses_a_version_in_the_past_and_ends_the_version_in_force_where_a_new_one_starts():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    form = {"popup_type": 1, "version": "2022-09-05", "effective_to_0": "", "effective_to_1": "",
            "params": '{"window_days": 3, "case_free_days": 7}', "source": "notice"}
    before = _rules()
    response = client.post("/admin/healthkit/popuppolicy/add/",
                           {**form, "effective_from_0": "2022-08-31", "effective_from_1": "00:00:00"})
    assert response.status_code == 200
    assert "cannot take effect in the past" in response.content.decode()
    assert _rules() == before
    response = client.post("/admin/healthkit/popuppolicy/add/",
                           {**form, "effective_from_0": "2022-09-05", "effective_from_1": "00:00:00"})
    assert response.status_code == 302
    new = PopupPolicy.objects.get(popup_type=1, version="2022-09-05")
    assert new.effective_from == cst(2022, 9, 5) and new.effective_to is None
    assert PopupPolicy.objects.get(popup_type=1, version="2022-07-16").effective_to == cst(2022, 9, 5)
    # the version in force cannot be withdrawn; the future one can, and the other takes its period back
    in_force = PopupPolicy.objects.get(popup_type=1, version="2022-07-16")
    page = client.get(f"/admin/healthkit/popuppolicy/{in_force.pk}/delete/").content.decode()
    assert "Version 2022-07-16 has been in force since 2022-07-16 00:00:00" in page
    client.post(f"/admin/healthkit/popuppolicy/{in_force.pk}/delete/", {"post": "yes"})
    assert PopupPolicy.objects.filter(pk=in_force.pk).exists()
    response = client.post(f"/admin/healthkit/popuppolicy/{new.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert PopupPolicy.objects.get(pk=in_force.pk).effective_to is None
    # ending the version in force directly would leave a gap: refused, on the field
    response = client.post(f"/admin/healthkit/popuppolicy/{in_force.pk}/change/", {
        **form, "version": in_force.version, "params": json.dumps(in_force.params),
        "effective_from_0": "2022-07-16", "effective_from_1": "00:00:00",
        "effective_to_0": "2022-10-01", "effective_to_1": "00:00:00"})
    assert response.status_code == 200
    assert "No version would be in force after" in response.content.decode()
    assert PopupPolicy.objects.get(pk=in_force.pk).effective_to is None
