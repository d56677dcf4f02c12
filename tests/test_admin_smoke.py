"""Every model's admin renders for an administrator, with demo data in it."""

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from communities.models import User


@pytest.fixture
def administrator(db):
    return User.objects.create_superuser("root", "root@example.invalid", "pw-1234-5678", role="administrator")


@pytest.mark.django_db
def test_every_admin_page_renders(client, administrator):
    call_command("seed_demo", residents=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    client.force_login(administrator)
    checked = 0
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        add_status = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code
        assert add_status in (200, 403), (opts.label, add_status)
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change
        checked += 1
    assert checked >= 12


@pytest.mark.django_db
def test_resident_admin_exact_lookup_uses_the_hash_by_post_and_is_audited(client, administrator):
    from communities.models import PersonalDataAccess
    from tests.factories import ResidentFactory, make_id_number

    number = make_id_number()
    resident = ResidentFactory(id_number=number)
    ResidentFactory.create_batch(3)
    client.force_login(administrator)
    response = client.post(reverse("admin:communities_resident_lookup"), {"id_or_phone": number.lower()})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:communities_resident_change", args=[resident.pk])
    assert number not in response["Location"]
    assert PersonalDataAccess.objects.filter(actor=administrator, resident=resident, action="lookup").exists()
    page = client.get(response["Location"])
    assert number.encode() not in page.content and resident.id_masked.encode() in page.content


@pytest.mark.django_db
def test_resident_admin_get_search_does_not_search_numbers(client, administrator):
    from tests.factories import ResidentFactory, make_id_number

    number = make_id_number()
    ResidentFactory(id_number=number, name="孙悟空")
    client.force_login(administrator)
    # an ID number in the address is not even answered (healthkit.middleware.PersonalDataAddressMiddleware)
    by_number = client.get(reverse("admin:communities_resident_changelist"), {"q": number})
    assert by_number.status_code == 302 and number not in by_number["Location"]
    assert list(client.get(by_number["Location"]).context["cl"].result_list) != []  # the list, unsearched
    assert len(client.get(reverse("admin:communities_resident_changelist"), {"q": "孙"}).context["cl"].result_list) == 1
