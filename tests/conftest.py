import pytest
from django.core.cache import cache

from healthkit import sms


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Every test gets its own private media root and the in-memory SMS gateway."""
    settings.MEDIA_ROOT = tmp_path / "private"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private"), "base_url": "/private-media-not-served/"},
        },
    }
    settings.SMS_BACKEND = "healthkit.sms.MemoryBackend"
    # No quiet hours unless a test sets them: whether an SMS is held must not depend on the wall clock.
    settings.SMS_QUIET_HOURS_START = settings.SMS_QUIET_HOURS_END = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SECURE_SSL_REDIRECT = False
    sms.memory_backend.outbox.clear()
    sms.memory_backend.fail_next = 0
    cache.clear()
    yield


@pytest.fixture(autouse=True, scope="session")
def _test_logins_pass_the_second_factor():
    """`client.force_login()` and `client.login()` skip the login form; they skip its second
    step (TOTP for supervisors and administrators) too, so every test may log in any demo role.
    Tests of the doors themselves post the login form (tests/otp.py gives the codes)."""
    from django.test.client import ClientMixin

    from tests.otp import verify_session

    force_login, login = ClientMixin.force_login, ClientMixin.login

    def force_login_verified(self, user, backend=None):
        force_login(self, user, backend)
        verify_session(self, user)

    def login_verified(self, **credentials):
        ok = login(self, **credentials)
        if ok:
            from django.contrib.auth import get_user_model

            verify_session(self, get_user_model().objects.get(pk=self.session["_auth_user_id"]))
        return ok

    # session-wide, so module-scoped fixtures (the page crawl's logins) get it too
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClientMixin, "force_login", force_login_verified)
        patch.setattr(ClientMixin, "login", login_verified)
        yield


@pytest.fixture(autouse=True, scope="session")
def _test_tokens_pass_the_second_factor():
    """A staff member's API token works only while they have a confirmed second factor
    (healthkit.auth.api_token_refusal): a token a test issues to a person comes with one, as
    `force_login()` passes the code step. Tests of the rule itself remove the device."""
    from rest_framework.authtoken.models import Token

    from healthkit.auth import staff_token
    from tests.otp import device_for

    save = Token.save

    def save_with_device(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if staff_token(self.user):
            device_for(self.user)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Token, "save", save_with_device)
        yield


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the site's default language (zh-hans) and leaves none behind: the
    locale middleware activates a request's language for the rest of the thread, so a test that
    posts with `Accept-Language: en` would otherwise decide the language of whichever runs next."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture
def sms_outbox():
    return sms.memory_backend


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Districts and popup policies come from data migrations; a transactional test's flush
    empties them, so put them back for whichever test runs next."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db" if marker and marker.kwargs.get("transaction") else "db")
    from importlib import import_module

    from django.apps import apps

    from communities.models import County, District
    from healthkit.models import PopupPolicy

    if not District.objects.exists():
        import_module("communities.migrations.0002_seed_districts").seed(apps, None)
    if not County.objects.exists():
        import_module("communities.migrations.0004_county").load(apps, None)
    if not PopupPolicy.objects.exists():
        import_module("healthkit.migrations.0002_seed_policies").seed(apps, None)
    yield
