"""The clearance link token: a signed random string travels in the SMS link, only its hash is
stored. Here, not in services, so that selectors (link checks) and services share it without
selectors importing services."""

import hashlib

from django.core import signing

LINK_SIGNER_SALT = "clearance.link"


def signer() -> signing.Signer:
    return signing.Signer(salt=LINK_SIGNER_SALT, sep=".")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
