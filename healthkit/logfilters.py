"""A logging filter that masks credentials and personal data before any handler writes a record.

Access logs and `django.request` warnings carry request paths and query strings: Open311's
`api_key=...`, the residents' single-use link tokens in `/appeals/evidence-link/<token>/` and
`/clearance/r/<token>/`. Whoever reads the logs must not be able to replay them. The filter
rewrites the formatted message (and any traceback text) once, so every formatter (plain or
JSON) sees only the masked text.
"""

import logging
import re

MASKED = "******"
# key=value pairs in query strings and form bodies whose value is a credential
_QUERY = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(api_key|apikey|access_token|token|key|code|password|secret|signature)"
    r"=([^&\s\"'#]+)"
)
# a path segment of 16+ URL-safe characters in a row (a link token, signed or not), not a host
_SEGMENT = re.compile(r"(?<=[^/]/)[A-Za-z0-9_:.-]*[A-Za-z0-9_-]{16,}[A-Za-z0-9_:.-]*(?=/|\s|\?|\"|'|$)")
# "Authorization: Token abc" / "Bearer abc" echoed into a message
_AUTH = re.compile(r"(?i)\b(Token|Bearer)\s+[A-Za-z0-9_.\-]{16,}")
# Personal data typed where it does not belong (an ID number or a phone in an address, a query
# string, a filter box): an 18-character ID number and a mainland mobile number, standing alone
# (or after a %-escape: "q=%2B86%2013800138000").
_ALONE = r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
_ID_NUMBER = re.compile(_ALONE + r"[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_PHONE = re.compile(_ALONE + r"(?:\+?86[- ]?)?1[3-9][0-9]{9}(?![0-9A-Za-z])")


def holds_personal_data(text: str) -> bool:
    """Whether `text` holds an ID number or a mobile number standing alone (what mask() masks)."""
    return bool(_ID_NUMBER.search(text) or _PHONE.search(text))


def mask(text: str) -> str:
    """The text with query-string credentials, link tokens, bearer tokens, ID numbers and mobile
    phone numbers masked."""
    text = _QUERY.sub(lambda m: f"{m.group(1)}={MASKED}", text)
    text = _SEGMENT.sub(MASKED, text)
    text = _AUTH.sub(lambda m: f"{m.group(1)} {MASKED}", text)
    text = _ID_NUMBER.sub(MASKED, text)
    return _PHONE.sub(MASKED, text)


class SecretMaskFilter(logging.Filter):
    """Installed on every handler (settings.LOGGING and `install()`); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_secrets_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the formatter to report
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        record._secrets_masked = True
        return True


def install(**_signal_kwargs: object) -> None:
    """Attach the filter to every handler configured so far (Django's defaults such as
    `django.server` included), so a handler added by any settings block is covered too. Celery
    workers replace the root handlers after Django starts: its logging signals run this again."""
    _connect_celery()
    handlers: set[logging.Handler] = set(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.update(logger.handlers)
    for handler in handlers:
        if not any(isinstance(f, SecretMaskFilter) for f in handler.filters):
            handler.addFilter(SecretMaskFilter())


def _connect_celery() -> None:
    from celery.signals import after_setup_logger, after_setup_task_logger

    after_setup_logger.connect(install, weak=False, dispatch_uid="healthkit-mask-secrets")
    after_setup_task_logger.connect(install, weak=False, dispatch_uid="healthkit-mask-secrets-task")
