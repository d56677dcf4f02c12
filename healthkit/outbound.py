"""HTTP requests the back-office makes to other systems (the ticket systems' endpoints, the SMS
gateway) all go through `open_url`: a redirect answer is never followed.

urllib's default would follow a 301/302/303 to a POST with a GET that has no body, so the record
or message never arrives while the 200 of the page the redirect lands on looks like success, and
it would send the request's `Authorization` (the endpoint's or gateway's bearer token) to
wherever `Location` points. Here a 3xx is an `HTTPError` like any other refusal: the caller
records it and retries after its backoff; an administrator fixes the configured URL."""

import urllib.request


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError(code)


_OPENER = urllib.request.build_opener(_NoRedirects)


def open_url(request: urllib.request.Request, *, timeout: float):
    """urlopen without following redirects (a 3xx raises urllib.error.HTTPError)."""
    return _OPENER.open(request, timeout=timeout)
