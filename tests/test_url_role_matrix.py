"""Every URL pattern of the project × every kind of visitor → the status each must get.

The resolver is walked, so a URL pattern that is not in ``MATRIX`` below makes the test fail:
whoever adds a URL says here who may open it. Each entry is one line:

    "namespace:url-name": (WORLD_ARGS_KEY, expect(default, role=status, ...)),

``WORLD_ARGS_KEY`` names the URL keyword arguments the ``world`` fixture builds (``None`` for a URL
without arguments); ``expect`` gives every role the default status unless overridden. Requests are
GET (a POST-only view answers 405 to whoever passed its door, and 403 / a login redirect to the
others). The Django admin (hundreds of generated patterns) is one row, checked on every registered
model's changelist.

The unconfirmed-filer cases (a filer whose phone is not on the resident's record names a community
at step 3; the same for phone entry and Open311) are at the bottom (``UNCONFIRMED``): the named
community sees the filer's own words only, never the resident's record.

Roles: an anonymous visitor; a member of the public with a proven phone in a filing session
(``public``); a hotline operator; a community worker of the resident's community (``worker``) and
one of another community (``worker_other``); a supervisor; an administrator; a venue manager; an
integration client (token / ``api_key``, no session).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from appeals.models import Appeal
from appeals.services import evidence_store
from communities import pii
from communities.models import AuditAlert, User
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload
from tests.factories.clearance import ClearanceTaskFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory

ROLES = ("anonymous", "public", "operator", "worker", "worker_other", "supervisor", "administrator",
         "venue_manager", "integration")
LOGIN = 302  # a console page sends a visitor without a session to the login page
STAFF = ("operator", "worker", "worker_other", "supervisor", "administrator")


def expect(default: int, **per_role: int) -> dict[str, int]:
    unknown = set(per_role) - set(ROLES)
    assert not unknown, f"unknown roles {unknown}"
    return {role: per_role.get(role, default) for role in ROLES}


def console(allowed: tuple[str, ...] | set[str], ok: int = 200, **per_role: int) -> dict[str, int]:
    """A staff page: login redirect without a session, 403 for other roles, ``ok`` for ``allowed``."""
    base = {role: (ok if role in allowed else 403) for role in ROLES}
    base.update(anonymous=LOGIN, public=LOGIN, integration=LOGIN)
    base.update(per_role)
    return base


def api(allowed: tuple[str, ...] | set[str], ok: int = 200, denied: int = 403, **per_role: int) -> dict[str, int]:
    """A REST endpoint: ``ok`` for ``allowed``, ``denied`` for everybody else."""
    base = {role: (ok if role in allowed else denied) for role in ROLES}
    base.update(per_role)
    return base


PUBLIC = expect(200)
HANDLERS = ("operator", "supervisor", "administrator")
OVERSEERS = ("supervisor", "administrator")
WORKERS = ("worker", "worker_other", "supervisor", "administrator")
VENUE_ROLES = ("venue_manager", "supervisor", "administrator")
INTEGRATION = ("integration", "administrator")
ANON_401 = {"anonymous": 401, "public": 401}  # the REST API asks for credentials
# Token authentication only (programs, not people): a staff session is not accepted either.
TOKEN_ONLY = api(("integration",), ok=405, denied=401, venue_manager=401)
NO_HINT = {"anonymous": 403, "public": 403, "integration": 403}  # files: "absent" and "forbidden" alike

# URL name → (world arguments, expected status per role). Keep one line per URL name.
MATRIX: dict[str, tuple[str | None, dict[str, int]]] = {
    # Project / core.
    "set_language": (None, expect(302)),
    "healthz": (None, PUBLIC),  # probes: "ok" only; check names to administrators
    "readyz": (None, PUBLIC),  # GET goes back to the page it came from
    "api-schema": (None, PUBLIC),
    "api-docs": (None, PUBLIC),
    "login": (None, PUBLIC),
    "logout": (None, expect(405)),  # POST only
    # Second factor: enrol for every signed-in person; verify redirects to enrol without a device
    # (the suite's logins give supervisors and administrators one, as the demo does).
    "otp-verify": (None, console(OVERSEERS, operator=302, worker=302, worker_other=302, venue_manager=302)),
    "otp-enrol": (None, console(STAFF + ("venue_manager",))),
    "lockouts": (None, console(OVERSEERS)),
    "landing": (None, PUBLIC),
    "console-home": (None, console(STAFF + ("venue_manager",))),
    "console-popup": ("popup", console(HANDLERS + ("worker",))),
    "console-popups": (None, console(STAFF)),  # the popup list: each sees their own scope
    "console-audit": (None, console(OVERSEERS)),  # the access audit and enumeration alerts
    "console-audit-alert-acknowledge": ("alert", console(OVERSEERS, ok=405)),  # POST only
    "api-community-find": (None, PUBLIC),  # the community finder: places only, no person
    "api-health-code": (None, api(STAFF, ok=405, **ANON_401)),
    "api-sms-receipts": (None, TOKEN_ONLY),
    "api-ingest-test-results": (None, TOKEN_ONLY),
    "api-ingest-arrivals": (None, TOKEN_ONLY),
    "api-ingest-stays": (None, TOKEN_ONLY),
    "api-ingest-local-cases": (None, TOKEN_ONLY),
    "api-ingest-quarantine-orders": (None, TOKEN_ONLY),
    "api-ingest-medical-events": (None, TOKEN_ONLY),
    "api-ingest-popup-assignments": (None, TOKEN_ONLY),
    # Appeals: resident pages (public; the filing steps need a proven phone in the session).
    "appeals:start": (None, PUBLIC),
    "appeals:file-identify": (None, PUBLIC),
    "appeals:file-verify": (None, expect(302)),  # no code asked for yet: back to step 1
    "appeals:file-popup": (None, expect(302, public=200)),
    "appeals:file-community": (None, expect(302, public=200)),
    "appeals:file-details": (None, expect(302, public=200)),
    "appeals:file-draft-thumb": ("draft", expect(302, public=200)),
    "appeals:file-check": (None, expect(302)),  # no category chosen yet: back to step 2
    "appeals:file-done": (None, expect(302)),
    "appeals:status": (None, PUBLIC),
    "appeals:evidence-link": ("bad_token", expect(410)),
    # Appeals: console.
    "appeals:queue": (None, console(STAFF)),
    "appeals:phone-entry": (None, console(HANDLERS)),
    "appeals:ticket": ("appeal", console(HANDLERS + ("worker",), worker_other=403)),
    "appeals:ticket-action": ("appeal_action", console(HANDLERS, ok=405)),
    "appeals:evidence-file": ("evidence", console(OVERSEERS + ("worker",), **NO_HINT)),
    "appeals:evidence-thumb": ("evidence", console(OVERSEERS + ("worker",), **NO_HINT)),
    # Appeals: REST API.
    "appeals:api-list": (None, api(STAFF, **ANON_401)),
    "appeals:api-search": (None, api(STAFF, ok=405, **ANON_401)),
    "appeals:api-create": (None, api(HANDLERS, ok=405, **ANON_401)),
    "appeals:api-evidence-file": ("evidence", api(OVERSEERS + ("worker",), **ANON_401)),
    "appeals:api-detail": ("reference", api(HANDLERS + ("worker",), **ANON_401)),
    "appeals:api-assign": ("reference", api(HANDLERS, ok=405, **ANON_401)),
    "appeals:api-route": ("reference", api(HANDLERS, ok=405, **ANON_401)),
    "appeals:api-close": ("reference", api(HANDLERS, ok=405, **ANON_401)),
    "appeals:api-contacts": ("reference", api(HANDLERS, ok=405, **ANON_401)),
    "appeals:api-evidence": ("reference", api(OVERSEERS + ("worker",), **ANON_401)),
    "appeals:api-evidence-upload": ("reference", api(HANDLERS, ok=405, **ANON_401)),
    # Open311 (requests need a key: only the integration client sends one, as Authorization: Token).
    "appeals:open311-services": ("fmt", PUBLIC),
    "appeals:open311-service": ("service", PUBLIC),
    "appeals:open311-requests": ("fmt", expect(403, integration=200)),
    "appeals:open311-request": ("open311_reference", expect(403, integration=200)),
    "appeals:open311-not-found": ("open311_unknown", expect(404)),  # the Open311 error list, for all
    # Clearance.
    "clearance:link": ("bad_token", expect(404)),
    "clearance:worklist": (None, console(WORKERS)),
    "clearance:worklist-csv": (None, console(WORKERS)),
    "clearance:checkpoint": (None, console(WORKERS)),
    "clearance:task": ("task", console(("worker",) + OVERSEERS)),
    "clearance:task-action": ("task_action", console(WORKERS, ok=405)),  # scope checked on POST
    "clearance:api-list": (None, api(WORKERS, **ANON_401)),
    "clearance:api-detail": ("task", api(("worker",) + OVERSEERS, **ANON_401)),
    "clearance:api-decision": ("task", api(WORKERS, ok=405, **ANON_401)),  # scope checked on POST
    "clearance:api-investigation": ("task", api(WORKERS, ok=405, **ANON_401)),
    # Oversight: the supervisor's dashboard and exports (person-level exports are POST only).
    "oversight:dashboard": (None, console(OVERSEERS)),
    "oversight:export-summary": (None, console(OVERSEERS)),
    "oversight:export-appeals": (None, console(STAFF, ok=405)),
    "oversight:export-tasks": (None, console(WORKERS, ok=405)),
    "oversight:export-popups": (None, console(STAFF, ok=405)),
    # Venues.
    "venues:api-scans": (None, TOKEN_ONLY),
    "venues:api-venue-list": (None, api(VENUE_ROLES, **ANON_401)),
    "venues:api-venue-create": (None, api(OVERSEERS, ok=405, **ANON_401)),
    "venues:api-window-list": (None, api(OVERSEERS, **ANON_401)),
    "venues:api-window-create": (None, api(OVERSEERS, ok=405, **ANON_401)),
    "venues:api-window-detail": ("window", api(OVERSEERS, **ANON_401)),
    "venues:api-window-correct": ("window", api(OVERSEERS, ok=405, **ANON_401)),
    "venues:api-window-withdraw": ("window", api(OVERSEERS, ok=405, **ANON_401)),
    "venues:venue-list": (None, console(VENUE_ROLES)),
    "venues:venue-poster": ("poster", console(VENUE_ROLES)),
    "venues:venue-register": ("venue", console(VENUE_ROLES)),
    "venues:venue-register-export": ("venue", console(VENUE_ROLES)),
    "venues:window-list": (None, console(OVERSEERS)),
    "venues:window-detail": ("window", console(OVERSEERS)),
    # Django admin: staff accounts with model permissions only (supervisors read, administrators all).
    "admin:index": (None, expect(302, supervisor=200, administrator=200)),
    "admin:*": (None, expect(302, supervisor=403, administrator=200)),  # every model's changelist
}


# --- the world every request runs against ------------------------------------------------------

@dataclass
class World:
    args: dict[str, dict]
    users: dict[str, User | None]
    token: str
    unconfirmed: Appeal
    named_worker: User


def _walk(resolver: URLResolver, namespace: str = "", prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, inner, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield namespace + (entry.name or ""), prefix + str(entry.pattern)


def url_names() -> set[str]:
    names = set()
    for name, route in _walk(get_resolver()):
        names.add("admin:*" if route.startswith("admin/") and name != "admin:index" else name)
    return names


@pytest.fixture
def world(db) -> World:
    home, other, named = CommunityFactory(), CommunityFactory(), CommunityFactory()
    resident = ResidentFactory(community=home)
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    users = {
        "anonymous": None, "public": None,
        "operator": UserFactory(role=User.Role.OPERATOR),
        "worker": UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[home]),
        "worker_other": UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[other]),
        "supervisor": UserFactory(role=User.Role.SUPERVISOR, is_staff=True),
        "administrator": UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True),
        "venue_manager": UserFactory(role=User.Role.VENUE_MANAGER),
        "integration": UserFactory(role=User.Role.INTEGRATION),
    }
    appeal = AppealFactory(resident=resident, popup=popup, community=home, routed_community=home,
                           status=Appeal.Status.ROUTED, routed_at=timezone.now(),
                           created_by=users["integration"], channel=Appeal.Channel.OPEN311)
    evidence = evidence_store(upload=upload(), appeal=appeal)
    draft = evidence_store(upload=upload(), draft_key="matrix-draft")
    task = ClearanceTaskFactory(resident=resident, community=home, popup=popup, appeal=appeal)
    venue = VenueFactory(community=home, managers=[users["venue_manager"]])
    window = RiskWindowFactory(venue=venue)
    # The unconfirmed filer: phone not on the resident's record, named a community that is not hers.
    unconfirmed = AppealFactory(resident=resident, community=named, filer_unconfirmed=True,
                                popup_type_claimed=3, description="filer's own words",
                                address_text="filer's address", claimed_id_hash=resident.id_hash,
                                claimed_masked=pii.masked_person("张三", resident.id_masked))
    named_worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[named])
    token = Token.objects.create(user=users["integration"]).key
    args = {
        "popup": {"pk": popup.pk},
        "draft": {"pk": draft.pk},
        "bad_token": {"token": "not-a-live-token"},
        "appeal": {"pk": appeal.pk},
        "appeal_action": {"pk": appeal.pk, "action": "assign-me"},
        "evidence": {"pk": evidence.pk},
        "reference": {"reference": appeal.reference},
        "fmt": {"fmt": "json"},
        "service": {"code": "correction", "fmt": "json"},
        "open311_reference": {"reference": appeal.reference, "fmt": "json"},
        "open311_unknown": {"path": "services.csv"},
        "task": {"pk": task.pk},
        "task_action": {"pk": task.pk, "action": "call"},
        "window": {"pk": window.pk},
        "venue": {"pk": venue.pk},
        "poster": {"pk": venue.pk, "fmt": "png"},
        "alert": {"pk": AuditAlert.objects.create(kind=AuditAlert.Kind.ACCOUNT, actor=users["operator"],
                                                  residents=50, window_minutes=60).pk},
    }
    return World(args=args, users=users, token=token, unconfirmed=unconfirmed, named_worker=named_worker)


def client_for(role: str, world: World) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    user = world.users[role]
    if role == "integration":
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {world.token}"
    elif user is not None:
        client.force_login(user)
    elif role == "public":
        # A member of the public who proved a phone: a filing draft in the session.
        session = client.session
        session["appeal_draft"] = {"resident_id": world.unconfirmed.resident_id, "phone": pii.encrypt("13700001111"),
                                   "confirmed": False, "name": pii.encrypt("张三"),
                                   "id": world.unconfirmed.resident.id_encrypted, "draft_key": "matrix-draft"}
        session.save()
    return client


def _admin_urls() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry]


def _url(name: str, world: World, key: str | None, role: str) -> str:
    return reverse(name, kwargs=world.args[key] if key else None)


def test_every_url_pattern_has_an_expected_status_per_role():
    missing = sorted(url_names() - set(MATRIX))
    stale = sorted(set(MATRIX) - url_names())
    assert not missing, f"URL patterns without a row in MATRIX (say who may open them): {missing}"
    assert not stale, f"MATRIX rows for URL names that no longer exist: {stale}"


def test_each_role_gets_the_expected_status_on_every_url(world):
    wrong = []
    for role in ROLES:
        client = client_for(role, world)
        for name, (key, expected) in MATRIX.items():
            urls = _admin_urls() if name == "admin:*" else [_url(name, world, key, role)]
            for url in urls:
                status = client.get(url).status_code
                if status != expected[role]:
                    wrong.append(f"{role:13} {name:32} {url}: got {status}, expected {expected[role]}")
    assert not wrong, "\n".join(wrong)


# --- the unconfirmed filer's community sees the filer's words only ------------------------------

def _record_texts(world: World) -> list[str]:
    """Things only the resident's record holds (never typed by the filer)."""
    resident = world.unconfirmed.resident
    texts = [resident.masked, str(resident.community)]
    texts += [f"/console/popups/{popup.pk}/" for popup in resident.popups.all()]
    return texts


# URL name → its kwargs for the unconfirmed filer's appeal. The named community's worker gets 200
# with the filer's own words, and nothing of the resident's record.
UNCONFIRMED = {
    "appeals:ticket": lambda a: {"pk": a.pk},
    "appeals:api-detail": lambda a: {"reference": a.reference},
    "appeals:api-list": lambda a: {},
    "appeals:queue": lambda a: {},
}


@pytest.mark.parametrize("name", sorted(UNCONFIRMED))
def test_unconfirmed_filers_community_sees_the_filers_words_only(world, name):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.named_worker)
    response = client.get(reverse(name, kwargs=UNCONFIRMED[name](world.unconfirmed)))
    body = response.content.decode()
    assert response.status_code == 200
    assert world.unconfirmed.reference in body
    for text in _record_texts(world):
        assert text not in body, f"{name} shows the resident's record ({text!r}) to the named community"


def test_unconfirmed_filers_community_gets_no_task_no_popup_reasons_and_no_reveal(world):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.named_worker)
    assert client.get(reverse("clearance:api-list")).json()["results"] == []
    detail = client.get(reverse("appeals:api-detail", kwargs={"reference": world.unconfirmed.reference})).json()
    assert detail["popup_explanation"] == [] and detail["description"] == "filer's own words"
    response = client.post(reverse("appeals:ticket", kwargs={"pk": world.unconfirmed.pk}), {"reason": "curious"})
    assert world.unconfirmed.resident.reveal_id_number() not in response.content.decode()


def test_once_routed_there_the_community_sees_the_record(world):
    from appeals.services import appeal_route

    named = world.named_worker.communities.get()
    appeal_route(appeal=world.unconfirmed, community=named, actor=world.users["operator"], reason="checked")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.named_worker)
    body = client.get(reverse("appeals:ticket", kwargs={"pk": world.unconfirmed.pk})).content.decode()
    popup = world.unconfirmed.resident.popups.get()
    assert f"/console/popups/{popup.pk}/" in body
