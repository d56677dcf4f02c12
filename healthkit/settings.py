"""The one settings module: every value comes from the environment (see .env.example)."""

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(env("HEALTHKIT_ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A form sent from a stale page: the site's own page in the reader's language, not Django's English one.
CSRF_FAILURE_VIEW = "healthkit.views_errors.csrf_failure"

DATA_DIR = Path(env("HEALTHKIT_DATA_DIR", default=str(BASE_DIR / ".data")))

INSTALLED_APPS = [
    "healthkit.apps.HealthkitAdminConfig",  # django.contrib.admin, bounded changelists
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "communities",
    "healthkit",
    "appeals",
    "appeals.clearance",
    "venues",
    "appeals.oversight",  # last: its demo step summarises the other apps' demo data
]

MIDDLEWARE = [
    # every 429 and 503 carries Retry-After, whoever answered it (outermost: sees them all)
    "healthkit.middleware.RetryAfterMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Headers every answer carries, outside every middleware that may answer on its own (a bad
    # path, a refused body, the second factor's redirect): framing, script policy, no caching.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "healthkit.middleware.NoStoreMiddleware",
    "healthkit.inputs.InputBoundaryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # compressed (Content-Encoding) and chunked bodies, before anything reads a body (CSRF: forms)
    "healthkit.request_body.RequestBodyMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # the client address of each audited access (communities.services.access_log)
    "communities.middleware.AuditContextMiddleware",
    "healthkit.logs.RequestContextMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "healthkit.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # no address carries an ID number or a phone: refused before any view, never echoed
    "healthkit.middleware.PersonalDataAddressMiddleware",
    # who is signed in at this desk, so a form kept after a session ended goes back to them only
    "healthkit.unsent.DeskOwnerMiddleware",
    "healthkit.middleware.UndecryptableDraftMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "healthkit.urls"
WSGI_APPLICATION = "healthkit.wsgi.application"

# Form widgets and error lists through TEMPLATES, so templates/django/forms/ can override one for every
# form of the site (errors not tied to one field are announced: role="alert").
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "healthkit.context_processors.site",
                "healthkit.context_processors.unsent",
                "healthkit.context_processors.page_address",
            ],
        },
    },
]

# PostgreSQL only. DATABASE_URL is set by scripts/dev.py (embedded server) or by the deployment.
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
# A kept connection is checked (SELECT 1) before a request or a task reuses it: after a database
# restart, a failover or a terminated backend, the next request reconnects instead of failing.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A web request never waits without bound (docs/operations.md, "a hot row"): in the web process
# (healthkit.wsgi sets HEALTHKIT_WEB_PROCESS) a statement ends after DATABASE_WEB_STATEMENT_TIMEOUT
# seconds and a lock held by another session is waited for at most DATABASE_WEB_LOCK_TIMEOUT; the
# request then answers 503 "busy, try again" (healthkit.views_errors). Without them a console page
# whose row a long job held locked hung until the client gave up (gunicorn's threaded workers do not
# time a request out). Workers and commands keep no limit: sweeps and migrations may run long, and
# a task is bounded by CELERY_TASK_TIME_LIMIT.
DATABASE_WEB_STATEMENT_TIMEOUT = env.float("DATABASE_WEB_STATEMENT_TIMEOUT", default=30.0)
DATABASE_WEB_LOCK_TIMEOUT = env.float("DATABASE_WEB_LOCK_TIMEOUT", default=5.0)
if env.bool("HEALTHKIT_WEB_PROCESS", default=False):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = (f"{_options.get('options', '')} -c statement_timeout={int(DATABASE_WEB_STATEMENT_TIMEOUT * 1000)}"
                           f" -c lock_timeout={int(DATABASE_WEB_LOCK_TIMEOUT * 1000)}").strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "communities.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login lockout (django-axes): failures are counted per username and, separately, per client
# address; either reaching AXES_FAILURE_LIMIT locks it for the cool-off (a throttle), and a
# supervisor can release it earlier at /console/security/lockouts/.
AUTHENTICATION_BACKENDS = ["healthkit.auth.AxesBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "healthkit.auth.lockout_response"
AXES_CLIENT_IP_CALLABLE = "healthkit.auth.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# Second factor (django-otp TOTP): required for supervisors and administrators, optional for
# the other roles (healthkit.auth.second_factor_required); the issuer names the site in the app.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Health Kit back-office")
# The admin never shows a device's secret key or its QR code once the device exists (django-otp
# shows both by default): whoever reads them can make that user's codes on another phone.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console-home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Screenshots and other uploads never sit under a public URL: they are served by checked views.
PRIVATE_MEDIA_ROOT = Path(env("HEALTHKIT_PRIVATE_MEDIA_ROOT", default=str(DATA_DIR / "private")))
MEDIA_ROOT = PRIVATE_MEDIA_ROOT
MEDIA_URL = "/private-media-not-served/"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT), "base_url": MEDIA_URL},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Django's handlers; the disk one cuts a file name the file system would refuse (healthkit/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "healthkit.uploads.SafeNameTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=50 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000

# --- Security (all from the environment; production leaves the defaults on) ---
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load-balancer probes speak plain HTTP to the instance (docs/deploy.md).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=8 * 3600)
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every answer: scripts only from our own static files
# (no inline script or event handler anywhere), nothing from another origin. Inline styles stay
# allowed: they cannot run code, and templates use a few style attributes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Personal data ---
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotate: prepend a new key,
# run `manage.py rotate_pii_keys`, then drop the old one).
PII_ENCRYPTION_KEYS = env.list("PII_ENCRYPTION_KEYS")
# HMAC key for the look-up hash of ID numbers and phones.
PII_HASH_KEY = env("PII_HASH_KEY")

# --- Cache (rate limits) ---
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # Redis down is an empty cache, not a 500 (healthkit/cache.py), and a call waits at most this long.
    CACHES["default"]["BACKEND"] = "healthkit.cache.ResilientRedisCache"
    _cache_timeout = env.float("CACHE_SOCKET_TIMEOUT", default=0.5)
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": _cache_timeout, "socket_timeout": _cache_timeout})

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "healthkit.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "healthkit.api.AutoSchema",
    # One boundary for request bodies: NUL and lone surrogates are a 400 (healthkit/inputs.py).
    "DEFAULT_PARSER_CLASSES": [
        "healthkit.inputs.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "healthkit.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="6000/min"),
        "health_code": env("API_THROTTLE_HEALTH_CODE", default="30/min"),
    },
}
# Instants outside these years are refused at the input boundary (healthkit/inputs.py).
INPUT_YEAR_MIN = env.int("INPUT_YEAR_MIN", default=2019)
INPUT_YEARS_AHEAD = env.int("INPUT_YEARS_AHEAD", default=1)
# Staff health-code look-ups by ID number per account and day (hits and misses; 429 beyond it).
HEALTH_CODE_LOOKUPS_PER_DAY = env.int("HEALTH_CODE_LOOKUPS_PER_DAY", default=100)
# A POST sent again with the same Idempotency-Key within this many hours gets the first answer.
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)
# A staff member's API token works this many hours after it was issued (integration clients' tokens
# last until rotated); logout and a password change end it sooner (healthkit.auth).
STAFF_API_TOKEN_HOURS = env.int("STAFF_API_TOKEN_HOURS", default=8)
SPECTACULAR_SETTINGS = {
    "TITLE": "Health Kit back-office API",
    "DESCRIPTION": "Integration API: labs, upstream data feeds, ticket systems, appeals.\n\n"
                   "Every error answer (4xx, 5xx) has one shape, `Error`: `detail` (a sentence), `code` (what a "
                   "program branches on), `errors` (field errors) and `extra` (details). An operation takes only the "
                   "query parameters it lists: any other is refused with 400 `unknown_parameters` naming it, never "
                   "ignored.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, so "required, not blank" (minLength 1) is declared
    # for what clients send without claiming it of what the server answers.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's local static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # An id in a path is a whole number (Django's int converter takes digits only): declared so.
    "PATH_CONVERTER_OVERRIDES": {"int": {"type": "integer", "minimum": 0}},
}

# --- Celery ---
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
# Longest task, bounded: a full engine sweep over 1 M open popups took 16 s on a loaded 2-core
# machine, raising 1 M popups at once 414 s (docs/scale.md M6, with the command), so a full
# sweep now raises in committed chunks (ENGINE_SWEEP_MAX_RAISES) and starts none after half the
# soft limit; an outbox or SMS run stops after its time budget (120 s). Every task is killed at
# CELERY_TASK_TIME_LIMIT, so a Redis visibility timeout above it never redelivers a running task,
# and a task of a killed worker comes back after at most this long (it was 3,600 s).
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=480)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(DATA_DIR / "broker" / "queue"),
        "data_folder_out": str(DATA_DIR / "broker" / "queue"),
        "processed_folder": str(DATA_DIR / "broker" / "processed"),
        "control_folder": str(DATA_DIR / "broker" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 120)}
)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_IGNORE_RESULT = True
# A publish with the broker down fails fast (the rows behind the work are the promise; beat
# jobs re-derive it): about 1 s, not a request hanging on reconnects.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                    "interval_max": 0.5}
# Queues by urgency (healthkit/queues.py, docs/operations.md): each has its own worker(s).
# SMS go to `codes` or `notifications` by purpose at publish time; unlisted tasks go to sweeps.
CELERY_TASK_DEFAULT_QUEUE = "sweeps"
CELERY_TASK_ROUTES = {
    "healthkit.tasks.engine_evaluate_work": {"queue": "engine"},
    "healthkit.tasks.engine_evaluate_batch": {"queue": "engine"},
    "healthkit.tasks.engine_evaluate_residents": {"queue": "engine"},
    "healthkit.tasks.engine_sweep": {"queue": "engine"},
    "healthkit.tasks.engine_work_due": {"queue": "engine"},
    "venues.tasks.venue_exposure_run": {"queue": "engine"},
    "venues.tasks.venue_exposure_due": {"queue": "engine"},
    "healthkit.tasks.sms_deliver": {"queue": "notifications"},
    "healthkit.tasks.sms_drain": {"queue": "notifications"},
    "appeals.clearance.tasks.clearance_send_link": {"queue": "notifications"},
    "appeals.clearance.tasks.clearance_open_for_appeal": {"queue": "notifications"},
    "healthkit.tasks.outbox_deliver_endpoint": {"queue": "outbox"},
    "healthkit.tasks.outbox_dispatch_due": {"queue": "outbox"},
}
# Periodic jobs live beside their tasks: each app's schedule.py holds a BEAT_SCHEDULE dict that
# healthkit/celery.py merges, so adding a job never means editing this file.

# --- SMS gateway ---
SMS_BACKEND = env("SMS_BACKEND", default="healthkit.sms.ConsoleBackend")
SMS_HTTP_URL = env("SMS_HTTP_URL", default="")
SMS_HTTP_TOKEN = env("SMS_HTTP_TOKEN", default="")
# Does the gateway drop a second request with the same Idempotency-Key? If not (false), a send
# whose outcome is unknown (timeout, worker died mid-send) is never repeated: marked dead for a
# person to decide, so no resident is texted twice (healthkit/sms.py states the contract).
SMS_GATEWAY_DEDUPLICATES = env.bool("SMS_GATEWAY_DEDUPLICATES", default=True)
SMS_SENDER_NAME = env("SMS_SENDER_NAME", default="北京12345")
# The one site official SMS links point at; residents are told to trust nothing else.
OFFICIAL_SITE_URL = env("OFFICIAL_SITE_URL", default="http://127.0.0.1:8000")
# Residents' SMS (healthkit/notify.py): the signature every text starts with, and the quiet
# hours (city time, start hour to end hour) during which non-urgent news waits until morning.
SMS_SIGNATURE = env("SMS_SIGNATURE", default="【12345】")
SMS_QUIET_HOURS_START = env.int("SMS_QUIET_HOURS_START", default=22)
SMS_QUIET_HOURS_END = env.int("SMS_QUIET_HOURS_END", default=7)

# Logs: LOG_FORMAT=plain (default, for people) or json (one event per line for a collector),
# each line with the request id, Celery task id and user id (healthkit/logs.py); never personal
# data or tokens (messages carry ids only; filters added to the handler mask what slips in).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # mask_secrets masks api_key=..., link tokens in paths and bearer tokens on every handler
    # (HealthkitConfig also attaches it to handlers configured elsewhere, e.g. django.server);
    # context adds the request, task and user ids both formats print.
    "filters": {"mask_secrets": {"()": "healthkit.logfilters.SecretMaskFilter"},
                "context": {"()": "healthkit.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s task=%(task_id)s "
                            "user=%(user_id)s] %(message)s"},
        "json": {"()": "healthkit.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["mask_secrets", "context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
# Celery workers log through the same handler (and format) instead of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- App settings (each app appends its own block below; document each in .env.example) ---

# --- Appeals (appeals/) ---
# Response-time targets per priority in hours: 1 emergency, 2 high (stranded), 3 normal.
APPEALS_SLA_HOURS = {
    1: env.float("APPEALS_SLA_EMERGENCY_HOURS", default=2),
    2: env.float("APPEALS_SLA_HIGH_HOURS", default=12),
    3: env.float("APPEALS_SLA_NORMAL_HOURS", default=24),
}
# Flood limits of the public pages, "count/seconds" per phone, per ID and per client IP.
APPEALS_RATE_LIMITS = {
    "code_phone": env("APPEALS_RATE_CODE_PHONE", default="5/3600"),
    "code_id": env("APPEALS_RATE_CODE_ID", default="8/3600"),
    "code_ip": env("APPEALS_RATE_CODE_IP", default="30/3600"),
    "file_id": env("APPEALS_RATE_FILE_ID", default="10/86400"),
    "file_ip": env("APPEALS_RATE_FILE_IP", default="60/3600"),
    "status_ip": env("APPEALS_RATE_STATUS_IP", default="30/600"),
    "upload_ip": env("APPEALS_RATE_UPLOAD_IP", default="120/3600"),
}
# Evidence screenshots: per-file byte and pixel limits, and how many per appeal.
APPEALS_EVIDENCE_MAX_BYTES = env.int("APPEALS_EVIDENCE_MAX_BYTES", default=10 * 1024 * 1024)
APPEALS_EVIDENCE_MAX_PIXELS = env.int("APPEALS_EVIDENCE_MAX_PIXELS", default=40_000_000)
# Memory one picture's decode and re-encode may take (estimated from its header, see
# appeals.evidence._decode_cost): a 40 MP PNG fits, a WebP or progressive CMYK JPEG that size not.
APPEALS_EVIDENCE_MAX_DECODE_MB = env.int("APPEALS_EVIDENCE_MAX_DECODE_MB", default=300)
APPEALS_EVIDENCE_MAX_FILES = 9
# Lifetime of the one-time SMS code and of "add evidence" links sent to residents.
APPEALS_CODE_TTL_SECONDS = env.int("APPEALS_CODE_TTL_SECONDS", default=600)
APPEALS_LINK_TTL_HOURS = env.int("APPEALS_LINK_TTL_HOURS", default=72)
# How many reverse proxies in front of Django append to X-Forwarded-For (0: use REMOTE_ADDR).
APPEALS_TRUSTED_PROXIES = env.int("APPEALS_TRUSTED_PROXIES", default=0)
# One schema name for the call-outcome choices used by two appeal endpoints.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["AppealCallOutcomeEnum"] = "appeals.models.AppealContact.Outcome"

# Open311 GeoReport v2: the one jurisdiction this endpoint serves (a client may send it as
# jurisdiction_id; any other value is answered 404). Defaults to the official site's host name.
OPEN311_JURISDICTION_ID = env("OPEN311_JURISDICTION_ID", default="") or (
    urlsplit(OFFICIAL_SITE_URL).hostname or "")

# Community clearance (appeals/clearance): SMS confirmation links and the worker's SLA.
# Hours a resident's confirmation link stays valid (it also works only once).
CLEARANCE_LINK_TTL_HOURS = env.int("CLEARANCE_LINK_TTL_HOURS", default=72)
# Hours a community has to decide a task; emergencies get the shorter one.
CLEARANCE_SLA_HOURS = env.int("CLEARANCE_SLA_HOURS", default=24)
CLEARANCE_SLA_EMERGENCY_HOURS = env.int("CLEARANCE_SLA_EMERGENCY_HOURS", default=4)
# Days outside the city after which a resident wishing to return becomes a priority case.
CLEARANCE_STRANDED_DAYS = env.int("CLEARANCE_STRANDED_DAYS", default=30)
# Hours after the end of a required test day before a missing result raises popup 4 (lab delay).
CLEARANCE_TEST_GRACE_HOURS = env.int("CLEARANCE_TEST_GRACE_HOURS", default=24)
# Requests per client address to the resident link pages: "count/seconds".
CLEARANCE_LINK_RATE_LIMIT = env("CLEARANCE_LINK_RATE_LIMIT", default="60/600")
# Checkpoint look-ups of a resident by ID number, per staff user: "count/seconds".
CLEARANCE_LOOKUP_RATE_LIMIT = env("CLEARANCE_LOOKUP_RATE_LIMIT", default="30/3600")

# Access audit (communities): the enumeration alarm. One account, or one client address, that
# views, reveals or looks up this many different residents within the window (a look-up that
# finds nobody counts as one: probing ID numbers is enumeration too) raises an alert
# on the supervisors' audit page and a warning in the log. A hotline operator or community
# worker handles a few tens of people an hour; 40 different people in 60 minutes is beyond a
# busy shift's pace and well short of a harvest.
AUDIT_ENUMERATION_WINDOW_MINUTES = env.int("AUDIT_ENUMERATION_WINDOW_MINUTES", default=60)
AUDIT_ENUMERATION_THRESHOLD = env.int("AUDIT_ENUMERATION_THRESHOLD", default=40)
AUDIT_ENUMERATION_IP_THRESHOLD = env.int("AUDIT_ENUMERATION_IP_THRESHOLD", default=60)

# Retention (appeals/retention.py, a daily beat job): days after which personal data is
# anonymised in place, keeping the anonymous statistics. Each default is the longest the work
# still needs it:
# evidence pictures, after the appeal closed: they serve the decision; a resident who disputes it
# calls within weeks (the hotline's 30-day follow-up), and the decision itself is kept.
RETENTION_EVIDENCE_DAYS = env.int("RETENTION_EVIDENCE_DAYS", default=30)
# an appeal's free text and contact details, after it closed: half a year for a supervisor's review
# or a complaint about how it was handled; category, channel, times and outcome stay.
RETENTION_APPEAL_DAYS = env.int("RETENTION_APPEAL_DAYS", default=180)
# a clearance task's confirmation (address, symptoms, contact with a case), phone and reasons.
RETENTION_CLEARANCE_DAYS = env.int("RETENTION_CLEARANCE_DAYS", default=180)
# SMS text and phone, once finished: delivery receipts and "did you get it" calls come within days.
RETENTION_SMS_DAYS = env.int("RETENTION_SMS_DAYS", default=30)
# a lifted popup's cause details and staff reasons.
RETENTION_POPUP_DAYS = env.int("RETENTION_POPUP_DAYS", default=180)
# the person (name, ID, phones) when nothing of theirs is open or newer: far beyond the rules'
# longest look-back (14 days), so the engine never evaluates a forgotten person.
RETENTION_RESIDENT_DAYS = env.int("RETENTION_RESIDENT_DAYS", default=180)
# reasons typed for audited accesses: a year, for complaints about who looked at a person; the
# audit rows themselves (who, whom, when, where) are kept and cannot be changed.
AUDIT_REASON_RETENTION_DAYS = env.int("AUDIT_REASON_RETENTION_DAYS", default=365)
# Django admin's change log (who added or changed which record, with the record's masked label):
# as long as the records it describes keep their details; a forgotten person's entries go at once.
RETENTION_ADMIN_LOG_DAYS = env.int("RETENTION_ADMIN_LOG_DAYS", default=180)
# venue scans (who was where, when): the exposure job looks back over risk windows reported at
# most weeks late; two months covers a late report and its corrections. Whole month partitions
# are dropped (venues/partitions.py), so a scan is kept between this and a month more; 0 keeps
# them for ever.
RETENTION_VENUE_SCAN_DAYS = env.int("RETENTION_VENUE_SCAN_DAYS", default=60)
# venues: a risk window's first exposure run with at least this many scans inside it raises its
# popups in two halves at once, on the job's connection and a second one (one more database
# connection per worker thread running exposure jobs; docs/venues.md); 0 = always one statement.
EXPOSURE_PARALLEL_MIN = env.int("EXPOSURE_PARALLEL_MIN", default=10_000)

# venues: what the resident app reads from a venue poster (prefix + the venue's stable code),
# and an optional font file with Chinese glyphs for the PNG poster (else fontconfig's :lang=zh).
VENUES_QR_PREFIX = env("VENUES_QR_PREFIX", default="HKVENUE:")
VENUES_POSTER_FONT = env("VENUES_POSTER_FONT", default="")

# Popup engine (healthkit/engine.py): work_mem for the full sweep's one big statement (sorts and
# hashes over every open popup; the server default of 4MB spills to disk at 1 M popups).
ENGINE_SWEEP_WORK_MEM = env("ENGINE_SWEEP_WORK_MEM", default="256MB")
# Hours between full sweeps (everyone re-evaluated); sweeps in between cover only residents with
# a rule's time boundary since the previous sweep.
ENGINE_FULL_SWEEP_HOURS = env.int("ENGINE_FULL_SWEEP_HOURS", default=6)
# The most popups one transaction of a full sweep raises; more are raised by further chunks,
# each committed (raising 1 M at once took 414 s loaded, against the task's time limit).
ENGINE_SWEEP_MAX_RAISES = env.int("ENGINE_SWEEP_MAX_RAISES", default=100_000)

# Operations (docs/deploy.md). Evidence on object storage (S3 protocol, django-storages; pip
# install ".[deploy]"): private objects, read by the checked views and streamed by Django, never
# a public or presigned URL handed out. Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
EVIDENCE_S3_BUCKET = env("EVIDENCE_S3_BUCKET", default="")
if EVIDENCE_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": EVIDENCE_S3_BUCKET,
            "endpoint_url": env("EVIDENCE_S3_ENDPOINT_URL", default=None),
            "region_name": env("EVIDENCE_S3_REGION", default=None),
            "location": "private",
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
            "querystring_expire": 60,
            "object_parameters": {"ServerSideEncryption": "AES256", "CacheControl": "private, no-store"},
        },
    }
# Read replicas for consoles and exports (docs/deploy.md): optional, configuration only. Reads
# that may lag go to "replica" through healthkit.dbrouter; writes and everything inside a
# transaction stay on the primary.
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", default="")
if REPLICA_DATABASE_URL:
    DATABASES["replica"] = env.db("REPLICA_DATABASE_URL")
    DATABASES["replica"]["ENGINE"] = "django.db.backends.postgresql"
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    if "options" in DATABASES["default"].get("OPTIONS", {}):  # the web process's bounded waits
        DATABASES["replica"].setdefault("OPTIONS", {})["options"] = DATABASES["default"]["OPTIONS"]["options"]
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["healthkit.dbrouter.ReplicaRouter"] if REPLICA_DATABASE_URL else []
