import datetime as dt

import pytest

from healthkit.selectors import policy_in_force

CST = dt.timezone(dt.timedelta(hours=8))
SWITCH = dt.datetime(2022, 7, 16, tzinfo=CST)
JUST_BEFORE = SWITCH - dt.timedelta(microseconds=1)

pytestmark = pytest.mark.django_db


def test_type_1_window_is_14_days_until_the_switch_and_7_from_it():
    assert policy_in_force(1, JUST_BEFORE).params["window_days"] == 14
    assert policy_in_force(1, SWITCH).params["window_days"] == 7
    assert policy_in_force(1, dt.datetime(2022, 11, 20, tzinfo=CST)).params["window_days"] == 7


def test_type_5_is_in_force_before_the_switch_and_abolished_from_it():
    before = policy_in_force(5, JUST_BEFORE)
    assert before.params["window_days"] == 14 and not before.abolished
    assert policy_in_force(5, SWITCH).abolished


def test_no_numbered_policy_before_2022_02_12():
    assert policy_in_force(1, dt.datetime(2022, 2, 11, 23, 59, tzinfo=CST)) is None
    assert policy_in_force(1, dt.datetime(2022, 2, 12, tzinfo=CST)) is not None


def test_type_4_deadline_and_type_3_authority_come_from_data():
    assert policy_in_force(4, SWITCH).params["deadline_hours"] == 72
    assert policy_in_force(3, SWITCH).params["lift_authority"] == "community"
    assert policy_in_force(3, SWITCH).params["auto_lift"] is False
    assert policy_in_force(2, SWITCH).params["auto_lift"] is True


def test_a_new_policy_version_takes_over_at_its_effective_date():
    from healthkit.models import PopupPolicy

    current = policy_in_force(4, SWITCH)
    change = dt.datetime(2022, 12, 1, tzinfo=CST)
    PopupPolicy.objects.filter(pk=current.pk).update(effective_to=change)
    PopupPolicy.objects.create(popup_type=4, version="2022-12-01", effective_from=change,
                               params={"deadline_hours": 48, "auto_lift": True})
    assert policy_in_force(4, change - dt.timedelta(seconds=1)).params["deadline_hours"] == 72
    assert policy_in_force(4, change).params["deadline_hours"] == 48
