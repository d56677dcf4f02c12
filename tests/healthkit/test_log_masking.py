"""Tokens never reach a log: the filter on every handler masks Open311's api_key, link tokens
in paths (access log and django.request warnings) and bearer tokens; the console SMS backend
prints no live code or link."""

import io
import logging

import pytest

from healthkit import logfilters
from healthkit.sms import ConsoleBackend

LINK_TOKEN = "AbCdEfGhIjKlMnOpQrStUvWx.sIgNaTuRe_-0123456789"


@pytest.fixture
def captured():
    """A handler like the deployment's, attached to django.request, filtered by install()."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    logfilters.install()
    yield stream
    logger.removeHandler(handler)


def test_every_configured_handler_carries_the_filter():
    handlers = set(logging.getLogger().handlers)
    for name in ("django.server", "django.request", "django", "celery"):
        handlers.update(logging.getLogger(name).handlers)
    assert handlers
    for handler in handlers:
        assert any(isinstance(f, logfilters.SecretMaskFilter) for f in handler.filters), handler


def test_django_request_warning_for_a_link_path_is_masked(client, db, captured):
    client.get(f"/clearance/r/{LINK_TOKEN}/")
    client.get(f"/appeals/evidence-link/{LINK_TOKEN}/")
    client.get("/nowhere/", {"api_key": "0123456789abcdef0123456789abcdef"})
    logging.getLogger("django.request").warning("Not Found: %s", f"/appeals/evidence-link/{LINK_TOKEN}/")
    text = captured.getvalue()
    assert "django.request" in text and "/appeals/evidence-link/******/" in text
    assert LINK_TOKEN not in text and "sIgNaTuRe" not in text


@pytest.mark.parametrize("line", [
    '"GET /open311/v2/requests.json?api_key=9f8e7d6c5b4a39281706f5e4d3c2b1a0&service_code=x HTTP/1.1" 403 61',
    f'"GET /clearance/r/{LINK_TOKEN}/ HTTP/1.1" 200 5120',
    '"POST /api/v1/ingest/ HTTP/1.1" Authorization: Token 9f8e7d6c5b4a39281706f5e4d3c2b1a0',
])
def test_access_log_lines_are_masked(line):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logfilters.SecretMaskFilter())
    logger = logging.getLogger("test.access")
    logger.addHandler(handler)
    try:
        logger.warning("%s", line)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "9f8e7d6c5b4a39281706f5e4d3c2b1a0" not in text and LINK_TOKEN not in text
    assert "******" in text and ("service_code=x" in text or "HTTP/1.1" in text)


def test_console_sms_backend_prints_no_live_code_or_link(capsys):
    ConsoleBackend().send(
        phone="13800138000", idempotency_key="k",
        body=f"[12345] Your code is 482913. Or confirm at https://site.example.gov.cn/clearance/r/{LINK_TOKEN}/ now.",
    )
    out = capsys.readouterr().out
    assert "482913" not in out and LINK_TOKEN not in out and "13800138000" not in out
    assert "https://site.example.gov.cn/clearance/r/******/" in out and "[12345]" in out


def test_celery_worker_handlers_get_the_filter_too():
    """A worker sets up its own handlers after Django started; its logging signal re-installs."""
    from celery.signals import after_setup_logger

    handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(handler)
    try:
        after_setup_logger.send(sender=None, logger=logging.getLogger(), loglevel=logging.INFO,
                                logfile=None, format="", colorize=False)
        assert any(isinstance(f, logfilters.SecretMaskFilter) for f in handler.filters)
    finally:
        logging.getLogger().removeHandler(handler)
