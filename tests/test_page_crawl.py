"""Crawl every page each demo role can reach (GET only) and check that nothing is broken.

With the demo city loaded once for the module, each demo user (and an anonymous visitor) starts at
"/" and "/console/" and follows every same-site href up to depth 3. Checked:

- no response is a 5xx (or raises);
- every link (href, and img src) a role is shown answers 200, or redirects (same site) to a page
  answering 200; the API lists and schema (``EXTRA``, linked from no page) answer 200 to exactly
  the roles listed there and 401/403 to the others;
- console pages reached by one role answer 403 / 404 / a redirect to the login page for every
  other role, unless that role sees every object of that kind (``SHARED_SCOPE`` below, each with
  its reason);
- no response body contains the clear 18-digit ID number (or mobile number) of any resident.

To keep it fast, at most ``PER_SHAPE`` URLs of one shape (digits replaced by ``<n>``, query
string ignored) are fetched per role; in /admin/ only the index, app indexes and changelists (a
filtered changelist only when a console page links to it).
"""

from __future__ import annotations

import copy
import re
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import import_module
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.test import Client, TestCase, override_settings

PASSWORD = "healthkit-demo-2022"
ROLES = ["admin", "supervisor1", "operator1", "worker1", "venue1", "anonymous"]
PROJECT = str(Path(__file__).resolve().parents[1])
START = ["/", "/console/"]
# Not linked from any page (the API, read by programs; the schema, loaded by the docs' script):
# fetched once per role; 200 for exactly these roles, 401/403 for the others.
EVERYBODY = set(ROLES)
EXTRA: dict[str, set[str]] = {
    "/api/schema/": EVERYBODY,
    "/api/v1/appeals/": {"admin", "supervisor1", "operator1", "worker1"},  # scoped list
    "/api/v1/venues/": {"admin", "supervisor1", "venue1"},  # scoped list
    "/api/v1/venues/risk-windows/": {"admin", "supervisor1"},
    "/open311/v2/services.json": EVERYBODY,
    "/open311/v2/requests.json": set(),  # GeoReport clients with an api_key only
}
MAX_DEPTH = 3
PER_SHAPE = 6
LOGIN_PATHS = ("/accounts/login/", "/admin/login/")
SKIP_PREFIXES = ("/accounts/logout/", "/i18n/", "/admin/logout/", "/static/")
FILES = re.compile(r"\.(?:csv|png|svg|pdf|json)$|/evidence/\d+/(?:thumb/)?$")  # not pages
ADMIN_CHANGELIST = re.compile(r"^/admin/(?:[a-z_]+/(?:[a-z_]+/)?)?$")
ID_PATTERN = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
PHONE_PATTERN = re.compile(rb"(?<![0-9])1[0-9]{10}(?![0-9])")

# (role, URL shape) pairs that a role may open although it was not linked to that very URL:
# its scope covers every object of that kind (it may just not have sampled that very object).
_HOTLINE = "hotline staff handle every appeal in the city (appeals.selectors.appeals_visible_to)"
_VENUES = "supervisors oversee every venue (venues.selectors.venues_visible_to)"
SHARED_SCOPE: dict[tuple[str, str], str] = {
    ("operator1", "/console/appeals/<n>/"): _HOTLINE,
    ("supervisor1", "/console/appeals/<n>/"): _HOTLINE,
    ("operator1", "/console/appeals/evidence/<n>/"): _HOTLINE,
    ("operator1", "/console/appeals/evidence/<n>/thumb/"): _HOTLINE,
    ("supervisor1", "/console/venues/<n>/register/"): _VENUES,
    ("supervisor1", "/console/venues/<n>/register.csv"): _VENUES,
    ("supervisor1", "/console/venues/<n>/poster.png"): _VENUES,
    ("supervisor1", "/console/venues/<n>/poster.svg"): _VENUES,
    ("supervisor1", "/console/venues/<n>/poster.pdf"): _VENUES,
    ("supervisor1", "/console/appeals/evidence/<n>/"): "supervisors see every appeal's evidence",
    ("supervisor1", "/console/appeals/evidence/<n>/thumb/"): "supervisors see every appeal's evidence",
    ("supervisor1", "/admin/password_change/"): "staff (is_staff) change their own password there",
}
EMPTY_ADMIN = "permission to view or edit anything"
# Open to everybody and free of data: the API documentation shell and the schema it loads.
PUBLIC_DOCS = {"/api/docs/", "/api/schema/"}


@dataclass
class Fetch:
    url: str
    status: int
    location: str = ""
    error: str = ""
    body: bytes = b""


@dataclass
class Crawl:
    role: str
    fetched: dict[str, Fetch] = field(default_factory=dict)
    linked_from: dict[str, str] = field(default_factory=dict)  # url -> first page linking to it
    extra: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def final(self, url: str, _seen: frozenset = frozenset()) -> Fetch | None:
        """The response at the end of the (same-site) redirect chain starting at url."""
        fetch = self.fetched.get(url)
        if fetch is None or not fetch.location or url in _seen:
            return fetch
        return self.final(fetch.location, _seen | {url})


class _Hrefs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "href" or (name == "src" and tag == "img")):
                self.hrefs.append(value)


def hrefs_in(body: bytes) -> list[str]:
    parser = _Hrefs()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.hrefs


def same_site(base: str, href: str) -> str | None:
    href = href.strip()
    if href.startswith(("mailto:", "tel:", "javascript:", "data:")):
        return None
    url = urldefrag(urljoin("http://testserver" + base, href))[0]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc != "testserver":
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def skipped(url: str, source: str = "") -> bool:
    """Not followed. In the admin only changelists, and a filtered one (with a query) only when a
    console page links to it: the console's links into the admin must open for the role."""
    path = urlsplit(url).path
    if path.startswith(SKIP_PREFIXES):
        return True
    if path.startswith("/admin/"):
        if urlsplit(url).query and source.startswith("/admin/"):
            return True
        return not ADMIN_CHANGELIST.match(path)
    return False


def shape(url: str) -> str:
    return re.sub(r"\d+", "<n>", urlsplit(url).path)


def resident_in_scope(role: str, url: str) -> bool:
    """A popup page opened by a role that was not linked to it is still the role's own when the
    popup's resident is: city-wide staff (hotline, supervisors) see every resident, a community
    worker the residents of the communities they serve."""
    from communities.models import User
    from healthkit.models import PopupCase

    if shape(url) != "/console/popups/<n>/":
        return False
    user = User.objects.get(username=role)
    case = PopupCase.objects.select_related("resident").get(pk=int(re.findall(r"\d+", url)[0]))
    if user.role in (User.Role.OPERATOR, User.Role.SUPERVISOR):
        return True
    return user.role == User.Role.COMMUNITY_WORKER and user.communities.filter(pk=case.resident.community_id).exists()


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def fetch(client: Client, url: str) -> Fetch:
    try:
        response = client.get(url)
    except Exception as exc:  # the test client re-raises view exceptions: that is a 500
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if f.filename.startswith(PROJECT) and "/.venv/" not in f.filename]
        where = own[-1] if own else frames[-1]
        return Fetch(url, 500, error=f"{type(exc).__name__}: {exc} at {where.filename}:{where.lineno}")
    location = ""
    if 300 <= response.status_code < 400:
        location = same_site(url, response["Location"]) or ""
    return Fetch(url, response.status_code, location=location, body=body_of(response))


_SESSIONS: dict[str, object] = {}  # role -> session cookies of its one login (made in demo_city)


def client_for(role: str, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if role != "anonymous":
        if role not in _SESSIONS:  # PBKDF2 is slow on purpose: log in once per role
            assert client.login(username=role, password=PASSWORD), role
            _SESSIONS[role] = client.cookies
        client.cookies = copy.deepcopy(_SESSIONS[role])
    return client


def crawl(role: str, *, language: str = "en", budget: int = PER_SHAPE, pages_only: bool = False) -> Crawl:
    started = time.monotonic()
    client = client_for(role, language)
    result = Crawl(role)
    per_shape: dict[str, int] = defaultdict(int)
    frontier = [(url, 0) for url in START] + [(url, MAX_DEPTH) for url in EXTRA]
    result.extra.update(EXTRA)
    while frontier:
        url, depth = frontier.pop(0)
        if url in result.fetched:
            continue
        page = fetch(client, url)
        result.fetched[url] = page
        if page.location and not page.location.startswith(SKIP_PREFIXES) and page.location not in result.fetched:
            # Follow redirects (even into the admin) at the same depth, outside the shape budget.
            result.linked_from.setdefault(page.location, url)
            frontier.insert(0, (page.location, depth))
        if page.status != 200 or depth >= MAX_DEPTH:
            continue
        if not page.body.lstrip()[:200].lower().startswith((b"<!doctype html", b"<html")):
            continue
        for href in hrefs_in(page.body):
            target = same_site(url, href)
            if target is None or skipped(target, url) or target in result.fetched:
                continue
            if pages_only and (FILES.search(urlsplit(target).path) or target.startswith("/admin/")):
                continue
            if target in result.linked_from:
                continue
            if per_shape[shape(target)] >= budget:
                continue
            per_shape[shape(target)] += 1
            result.linked_from[target] = url
            frontier.append((target, depth + 1))
    result.seconds = time.monotonic() - started
    return result


@pytest.fixture(scope="module")
def demo_city(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo city, seeded once inside a transaction that is rolled back after the module;
    its private files (evidence pictures) live in one media root for the whole module."""
    from appeals.models import Appeal
    from communities import pii
    from communities.models import District, Resident, ResidentPhone
    from healthkit.models import PopupPolicy

    media = tmp_path_factory.mktemp("crawl-media")
    storages = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(media), "base_url": "/private-media-not-served/"}},
    }
    with django_db_blocker.unblock(), override_settings(
        MEDIA_ROOT=media, PRIVATE_MEDIA_ROOT=media, STORAGES=storages, CELERY_TASK_ALWAYS_EAGER=True,
        SMS_BACKEND="healthkit.sms.MemoryBackend", SECURE_SSL_REDIRECT=False,
    ):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            if not District.objects.exists():
                import_module("communities.migrations.0002_seed_districts").seed(apps, None)
            if not PopupPolicy.objects.exists():
                import_module("healthkit.migrations.0002_seed_policies").seed(apps, None)
            with open("/dev/null", "w") as devnull, TestCase.captureOnCommitCallbacks(execute=True):
                call_command("seed_demo", residents=200, stdout=devnull)
            _SESSIONS.clear()
            for role in ROLES[:-1]:  # sessions made here outlive each test's savepoint
                client_for(role)
            clear_ids = {r.reveal_id_number().upper().encode() for r in Resident.objects.all()}
            clear_phones = {p.reveal_phone().encode() for p in ResidentPhone.objects.all()}
            clear_phones |= {
                pii.decrypt(token).encode()
                for token in Appeal.objects.exclude(contact_phone_encrypted="").values_list(
                    "contact_phone_encrypted", flat=True)
            }
            yield {"clear_ids": clear_ids, "clear_phones": clear_phones, "crawls": {}, "media": media, "storages": storages}
        finally:
            _SESSIONS.clear()
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _private_media(_private_media, settings, demo_city):
    """conftest gives each test a fresh media root; the crawl needs the module's one."""
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = demo_city["media"]
    settings.STORAGES = demo_city["storages"]


def crawl_of(demo_city, role: str) -> Crawl:
    if role not in demo_city["crawls"]:
        demo_city["crawls"][role] = crawl(role)
    return demo_city["crawls"][role]


def crawl_problems(result: Crawl, demo_city) -> list[str]:
    problems = []
    for url, page in result.fetched.items():
        source = result.linked_from.get(url, "start")
        if page.status >= 500:
            problems.append(f"{page.status} {url} (linked from {source}) {page.error}")
            continue
        if leaked := leaks(page.body, demo_city):
            problems.append(f"{leaked} in {url}")
        if url in result.extra:
            opens = result.role in EXTRA[url]
            if page.status not in ((200,) if opens else (401, 403)):
                problems.append(f"{page.status} {url} (not linked), expected {200 if opens else '401/403'}")
            continue
        if url == "/admin/" and EMPTY_ADMIN in page.body.decode(errors="replace"):
            problems.append(f"/admin/ (linked from {source}) offers nothing to this role")
        end = result.final(url)
        if end is None or end.status != 200:
            problems.append(f"{page.status} {url} (linked from {source}) ends at "
                            f"{end.url if end else '?'} {end.status if end else 'not fetched'}")
    return problems


def leaks(body: bytes, demo_city) -> str:
    """'' or what personal data in clear the body holds (counts only, never the values)."""
    ids = {m.upper() for m in ID_PATTERN.findall(body)} & demo_city["clear_ids"]
    phones = set(PHONE_PATTERN.findall(body)) & demo_city["clear_phones"]
    found = [f"{len(ids)} clear ID number(s)"] * bool(ids) + [f"{len(phones)} clear phone(s)"] * bool(phones)
    return ", ".join(found)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_page_a_role_reaches_works(demo_city, role):
    assert len(demo_city["clear_ids"]) >= 200 and demo_city["clear_phones"]
    result = crawl_of(demo_city, role)
    problems = crawl_problems(result, demo_city)
    print(f"{role}: {len(result.fetched)} pages, {len({shape(u) for u in result.fetched})} kinds, "
          f"{result.seconds:.1f} s")
    assert len(result.fetched) >= 3, sorted(result.fetched)
    assert not problems, f"{role}:\n" + "\n".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_page_works_in_chinese(demo_city, role):
    """The same crawl in zh-hans (two pages of each kind, no files, not the Django admin's own
    pages): a broken translation breaks pages."""
    result = crawl(role, language="zh-hans", budget=2, pages_only=True)
    problems = crawl_problems(result, demo_city)
    home = result.fetched["/"].body.decode()
    assert 'lang="zh-hans"' in home
    print(f"{role} (zh-hans): {len(result.fetched)} pages, {result.seconds:.1f} s")
    assert not problems, f"{role} (zh-hans):\n" + "\n".join(problems)


@pytest.mark.django_db
# The administrator is a superuser: every console page is theirs, so there is nothing to close.
@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_other_roles_console_pages_are_closed(demo_city, role):
    own = crawl_of(demo_city, role)
    public = {url for url, page in crawl_of(demo_city, "anonymous").fetched.items() if page.status == 200}
    own_paths = {urlsplit(u).path for u, p in own.fetched.items() if p.status == 200}
    foreign: dict[str, str] = {}
    for other in ROLES:
        if other == role:
            continue
        for url, page in crawl_of(demo_city, other).fetched.items():
            path = urlsplit(url).path
            if page.status != 200 or url in public or path in LOGIN_PATHS or path in PUBLIC_DOCS:
                continue
            if url in own.fetched or path in own_paths:  # judged in the role's own crawl, or the
                continue  # same view with another query string (its list is scoped to the viewer)
            foreign.setdefault(url, other)
    client = client_for(role)
    problems = []
    for url, owner in sorted(foreign.items()):
        page = fetch(client, url)
        if leaked := leaks(page.body, demo_city):
            problems.append(f"{leaked} in {url}")
        if page.status in (403, 404) or (page.location and urlsplit(page.location).path in LOGIN_PATHS):
            continue
        if page.status == 200 and (role, shape(url)) in SHARED_SCOPE:
            continue
        if page.status == 200 and resident_in_scope(role, url):
            continue
        if page.status == 200 and url == "/admin/" and EMPTY_ADMIN in page.body.decode(errors="replace"):
            continue  # staff flag without permissions (supervisor1): the admin shows nothing
        problems.append(f"{page.status} {url} (a page of {owner}) {page.error}")
    print(f"{role}: {len(foreign)} pages of other roles tried")
    assert not problems, f"{role} opens pages of other roles:\n" + "\n".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_popup_pages_answer_by_scope(demo_city, role):
    """/console/popups/<pk>/ is linked from nowhere yet; fetch popups of every type and state
    (and some in worker1's communities) directly: 200 exactly when the viewer may see the resident."""
    from communities.models import User
    from communities.selectors import residents_visible_to
    from healthkit.models import PopupCase
    from healthkit.permissions import STAFF_ROLES, has_role

    cases = {}
    for case in PopupCase.objects.order_by("popup_type", "state", "pk"):
        cases.setdefault((case.popup_type, case.state), case)
    worker = User.objects.get(username="worker1")
    for case in PopupCase.objects.filter(resident__community__in=worker.communities.all()).order_by("pk")[:3]:
        cases.setdefault(("worker1", case.pk), case)
    assert len(cases) >= 12
    client = client_for(role)
    user = None if role == "anonymous" else User.objects.get(username=role)
    visible = set() if user is None else set(residents_visible_to(user).values_list("pk", flat=True))
    problems = []
    for case in cases.values():
        url = f"/console/popups/{case.pk}/"
        page = fetch(client, url)
        if leaked := leaks(page.body, demo_city):
            problems.append(f"{leaked} in {url}")
        if user is None:
            expected = "login"
            ok = bool(page.location) and urlsplit(page.location).path in LOGIN_PATHS
        elif has_role(user, STAFF_ROLES) and case.resident_id in visible:
            expected, ok = "200", page.status == 200
        else:
            expected, ok = "403", page.status == 403
        if not ok:
            problems.append(f"{url} ({case.get_popup_type_display()}, {case.state}): {page.status}, "
                            f"expected {expected} {page.error}")
    assert not problems, f"{role}:\n" + "\n".join(problems)


@pytest.mark.django_db
def test_evidence_whose_file_is_gone_answers_404(demo_city):
    """A row whose file vanished (restored backup, cleaned disk) is 'not found', not a 500."""
    from appeals.models import AppealEvidence

    evidence = AppealEvidence.objects.filter(appeal__isnull=False).order_by("pk").first()
    assert evidence is not None
    client = client_for("admin")
    url = f"/console/appeals/evidence/{evidence.pk}/"
    assert fetch(client, url).status == 200
    path = Path(evidence.file.path)
    kept = path.read_bytes()
    path.unlink()
    try:
        assert fetch(client, url).status == 404
    finally:
        path.write_bytes(kept)  # the other tests of the module share the files


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_resident_pages_behind_sms_links_work(demo_city, language):
    """Pages reached from an SMS (no page links to them): the clearance confirmation and
    commitment links and the appeal's "add evidence" link answer 200 to anybody holding the
    token, a wrong token answers 4xx, and none shows a clear ID or phone."""
    from appeals.clearance.models import ClearanceLink, ClearanceTask
    from appeals.clearance.services import clearance_link_issue
    from appeals.models import Appeal
    from appeals.services import appeal_request_evidence
    from communities.models import User
    from healthkit.models import SmsMessage

    task = ClearanceTask.objects.order_by("pk").first()
    appeal = Appeal.objects.exclude(status=Appeal.Status.CLOSED).order_by("pk").first()
    assert task is not None and appeal is not None
    urls = [f"/clearance/r/{clearance_link_issue(task=task, purpose=purpose)[1]}/"
            for purpose in ClearanceLink.Purpose.values]
    appeal_request_evidence(appeal=appeal, actor=User.objects.get(username="supervisor1"))
    from tests.sms_text import phone_text

    body = phone_text(SmsMessage.objects.filter(purpose="appeal_evidence_request").latest("pk"))
    urls += re.findall(r"/appeals/evidence-link/[^/\s]+/", body)
    assert len(urls) == 3, urls
    client = client_for("anonymous", language)
    problems = []
    for url in urls:
        page = fetch(client, url)
        if page.status != 200 or leaks(page.body, demo_city):
            problems.append(f"{page.status} {url[:24]}… {page.error} {leaks(page.body, demo_city)}")
        for href in hrefs_in(page.body):
            target = same_site(url, href)
            if target and not skipped(target) and (end := fetch(client, target)).status >= 400:
                problems.append(f"{end.status} {target} linked from {url[:24]}…")
        wrong = fetch(client, url[:-6] + "xxxxx/")
        if not 400 <= wrong.status < 500:
            problems.append(f"{wrong.status} for a wrong token at {url[:24]}… {wrong.error}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin", "supervisor1", "operator1", "worker1"])
def test_audited_reveals_do_not_answer_get(demo_city, role):
    """The reveal actions (and every other console action) are POST-only: a GET is 405, writes
    no audit row and shows nothing."""
    from appeals.clearance.models import ClearanceTask
    from appeals.models import Appeal
    from communities.models import PersonalDataAccess

    appeal = Appeal.objects.order_by("pk").first()
    task = ClearanceTask.objects.order_by("pk").first()
    client = client_for(role)
    audited = PersonalDataAccess.objects.count()
    problems = []
    for url in (f"/console/appeals/{appeal.pk}/reveal/", f"/console/clearance/{task.pk}/reveal/",
                f"/console/appeals/{appeal.pk}/close/", f"/console/clearance/{task.pk}/accept/"):
        page = fetch(client, url)
        if page.status not in (403, 405) or leaks(page.body, demo_city):
            problems.append(f"{page.status} GET {url} {page.error} {leaks(page.body, demo_city)}")
    assert not problems, "\n".join(problems)
    assert PersonalDataAccess.objects.count() == audited


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_every_demo_appeal_shape_renders(demo_city, role, language):
    """The demo carries every legal shape of an appeal (appeals.demo.SHAPES); the queue row and the
    ticket page of one appeal of each shape render for every role (hotline staff: 200), in both
    languages. A crawl samples only a few rows per page, so these are fetched directly."""
    from appeals.models import Appeal

    picks: dict[tuple, Appeal] = {}
    for appeal in Appeal.objects.order_by("pk"):
        key = (appeal.channel, appeal.status, appeal.community_id is None, appeal.routed_community_id is None,
               appeal.filer_unconfirmed, appeal.merged_into_id is not None, appeal.category == "stranded",
               appeal.repeat_count > 0, appeal.popup_id is None)
        picks.setdefault(key, appeal)
    assert any(k[2] and k[3] for k in picks) and any(k[4] for k in picks) and any(k[5] for k in picks)
    client = client_for(role, language)
    hotline = role in ("admin", "supervisor1", "operator1")
    problems = []
    for appeal in picks.values():
        for url in (f"/console/appeals/?queue=all&reference={appeal.reference}", f"/console/appeals/{appeal.pk}/"):
            page = fetch(client, url)
            if page.status >= 500 or (hotline and page.status != 200):
                problems.append(f"{page.status} {url} {page.error}")
            elif hotline and appeal.reference.encode() not in page.body:
                problems.append(f"{url} does not show {appeal.reference}")
            if leaked := leaks(page.body, demo_city):
                problems.append(f"{leaked} in {url}")
    assert not problems, f"{role}:\n" + "\n".join(problems)
