"""HTTP requests the back-office makes to other systems (the ticket systems' endpoints, the SMS
gateway) all go through `post_json` (and its opener, `open_url`): the one place where a far
side's faults are told apart (docs/operations.md, "Delivery contracts").

A redirect answer is never followed. urllib's default would follow a 301/302/303 to a POST with a
GET that has no body, so the record or message never arrives while the 200 of the page the
redirect lands on looks like success, and it would send the request's `Authorization` (the
endpoint's or gateway's bearer token) to wherever `Location` points. Here a 3xx is an
`HTTPError` like any other refusal: the caller records it and retries after its backoff; an
administrator fixes the configured URL.

Every failure says whether the request may have reached the far side (`maybe_delivered`):

- refused before anything was sent (DNS, connection refused, TLS handshake or certificate, a
  malformed URL): not delivered, safe to send again;
- answered with a status outside 2xx (a redirect included): a refusal, not delivered;
- anything after the request went out (no answer in time, connection cut, a malformed status
  line, an answer still trickling at the deadline): unknown.

`timeout` bounds each connect and each read; `deadline` bounds the whole call, however slowly
an answer trickles in (a server sending a byte every half second held a call as long as it
liked, past the 60 s lease that keeps anyone else from sending the same row)."""

import contextlib
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

DEFAULT_TIMEOUT = 10.0
DEFAULT_DEADLINE = 30.0  # below the SMS and outbox leases (60 s)
MAX_ANSWER_BYTES = 64 * 1024


class PostFailed(Exception):
    """The POST did not succeed; `reason` is safe to log (a class name or a status, never a body).
    `headers` are the answer's when there was one (a refusal's Retry-After)."""

    def __init__(self, reason: str, *, maybe_delivered: bool, status_code: int | None = None,
                 headers: Message | None = None) -> None:
        super().__init__(reason)
        self.maybe_delivered = maybe_delivered
        self.status_code = status_code
        self.headers = headers


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError(code)


def _tracking(base: type[http.client.HTTPConnection], sockets: list[socket.socket] | None) -> type:
    class Connection(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            if sockets is not None:
                sockets.append(self.sock)

    return Connection


class _Http(urllib.request.HTTPHandler):
    def __init__(self, sockets: list[socket.socket] | None) -> None:
        super().__init__()
        self.sockets = sockets

    def http_open(self, req):
        return self.do_open(_tracking(http.client.HTTPConnection, self.sockets), req)


class _Https(urllib.request.HTTPSHandler):
    def __init__(self, sockets: list[socket.socket] | None) -> None:
        super().__init__()
        self.sockets = sockets

    def https_open(self, req):
        return self.do_open(_tracking(http.client.HTTPSConnection, self.sockets), req, context=self._context)


def open_url(request: urllib.request.Request, *, timeout: float, sockets: list[socket.socket] | None = None):
    """urlopen without following redirects (a 3xx raises urllib.error.HTTPError); the sockets it
    opens are appended to `sockets`, so a deadline can cut them."""
    return urllib.request.build_opener(_NoRedirects, _Http(sockets), _Https(sockets)).open(request, timeout=timeout)


def post_json(*, url: str, body: dict, headers: dict[str, str], timeout: float = DEFAULT_TIMEOUT,
              deadline: float | None = None, sign: Callable[[bytes], dict[str, str]] | None = None) -> Answer:
    """POST `body` as JSON; returns a 2xx answer (its body cut at 64 KB) or raises PostFailed.
    `deadline` defaults to DEFAULT_DEADLINE. `sign` gives more headers from the exact bytes sent
    (a signature over the body)."""
    deadline = DEFAULT_DEADLINE if deadline is None else deadline
    data = json.dumps(body, ensure_ascii=False).encode()
    try:
        request = urllib.request.Request(  # noqa: S310 - URLs come from settings and administrators
            url, data=data, method="POST",
            headers={"Content-Type": "application/json", **headers, **(sign(data) if sign else {})})
    except ValueError as exc:
        raise PostFailed("invalid URL", maybe_delivered=False) from exc
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def cut() -> None:  # the deadline: a blocked read returns at once, the call fails as unknown
        expired.set()
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline, cut)
    timer.daemon = True
    timer.start()
    try:
        with open_url(request, timeout=timeout, sockets=sockets) as response:
            answer = Answer(status=response.status, body=response.read(MAX_ANSWER_BYTES))
        if expired.is_set():  # cut while the body trickled in: what came may be partial
            raise PostFailed(f"deadline {deadline:g} s", maybe_delivered=True)
        return answer
    except urllib.error.HTTPError as exc:  # answered: say how, never the body
        exc.close()
        raise PostFailed(f"HTTP {exc.code}", status_code=exc.code, headers=exc.headers,
                         maybe_delivered=False) from exc
    except urllib.error.URLError as exc:  # raised before the request was whole on the wire
        if expired.is_set():
            raise PostFailed(f"deadline {deadline:g} s", maybe_delivered=True) from exc
        reason = exc.reason if isinstance(exc.reason, BaseException) else None
        raise PostFailed(f"URLError ({type(reason).__name__})" if reason else "URLError",
                         maybe_delivered=False) from exc
    except ValueError as exc:  # http.client.InvalidURL, a port that is not a number
        raise PostFailed("invalid URL", maybe_delivered=False) from exc
    except (OSError, http.client.HTTPException) as exc:  # after the request went out
        if expired.is_set():
            raise PostFailed(f"deadline {deadline:g} s", maybe_delivered=True) from exc
        raise PostFailed(type(exc).__name__, maybe_delivered=True) from exc
    finally:
        timer.cancel()
