"""Who sees which communities and residents: workers only their own, nobody else below staff."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from communities.models import User
from communities.selectors import communities_visible_to, resident_access, residents_visible_to
from tests.factories import CommunityFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    mine, other = CommunityFactory(), CommunityFactory()
    return {
        "mine": mine,
        "other": other,
        "my_resident": ResidentFactory(community=mine),
        "other_resident": ResidentFactory(community=other),
    }


def test_community_worker_sees_only_the_communities_they_serve(city):
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[city["mine"]])

    assert list(communities_visible_to(worker)) == [city["mine"]]
    assert list(residents_visible_to(worker)) == [city["my_resident"]]
    assert resident_access(user=worker, resident_id=city["my_resident"].pk) == city["my_resident"]
    with pytest.raises(PermissionDenied):
        resident_access(user=worker, resident_id=city["other_resident"].pk)


@pytest.mark.parametrize("role", [User.Role.OPERATOR, User.Role.SUPERVISOR, User.Role.ADMINISTRATOR])
def test_city_wide_roles_see_every_community(city, role):
    user = UserFactory(role=role)

    assert set(communities_visible_to(user)) >= {city["mine"], city["other"]}
    assert set(residents_visible_to(user)) >= {city["my_resident"], city["other_resident"]}


@pytest.mark.parametrize("role", [User.Role.VENUE_MANAGER, User.Role.INTEGRATION])
def test_non_registry_roles_and_inactive_staff_see_no_residents(city, role):
    user = UserFactory(role=role)
    inactive = UserFactory(role=User.Role.SUPERVISOR, is_active=False)

    assert not residents_visible_to(user).exists()
    assert not residents_visible_to(inactive).exists()
    assert not communities_visible_to(AnonymousUser()).exists()
