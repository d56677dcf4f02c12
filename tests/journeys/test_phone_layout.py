"""Console pages on a phone (375 px wide): a community worker confirming verifications away from a
desk, a supervisor glancing at the dashboard. No page may need sideways scrolling: a wide table
scrolls inside its own box, a grid column never asks for more than the screen."""

import pytest
from django.conf import settings as django_settings
from django.test import Client

from communities.models import User
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]
WIDTH = 375


def phone_as(browser, base_url: str, user: User, language: str):
    client = Client()
    client.force_login(user)  # past the second factor (tests/conftest.py); the doors have their own journeys
    context = browser.new_context(viewport={"width": WIDTH, "height": 667}, has_touch=True)
    context.add_cookies([
        {"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
         "url": base_url},
        {"name": "django_language", "value": language, "url": base_url},
    ])
    return context


def test_console_pages_fit_a_phone_in_both_languages(browser, live_server, settings):
    settings.SESSION_COOKIE_SECURE = False
    routed = RoutedAppealFactory()
    worker = WorkerFactory(username="wk", communities=[routed.routed_community])
    task = ClearanceTaskFactory(resident=routed.resident, popup=routed.popup, community=routed.routed_community)
    supervisor = User.objects.create_user("sup", password="pass-1234-word", role=User.Role.SUPERVISOR)
    appeal = AppealFactory()
    pages = {
        worker: ["/console/clearance/", f"/console/clearance/{task.pk}/", "/console/popups/"],
        supervisor: ["/console/dashboard/", "/console/audit/", "/console/appeals/", f"/console/appeals/{appeal.pk}/"],
    }
    too_wide = []
    for language in ("zh-hans", "en"):
        for user, paths in pages.items():
            context = phone_as(browser, live_server.url, user, language)
            page = context.new_page()
            for path in paths:
                response = page.goto(live_server.url + path)
                assert response.status == 200, path
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > WIDTH:
                    too_wide.append(f"{language} {path}: {width}px")
            context.close()
    assert not too_wide
