"""Shared steps of the clearance tests."""

import re

from healthkit.sms import SentMessage

TOKEN_RE = re.compile(r"/clearance/r/([^/\s]+)/")


def token_in(message: SentMessage) -> str:
    match = TOKEN_RE.search(message.body)
    assert match, message.body
    return match.group(1)


def confirmation_post(**overrides) -> dict:
    data = {
        "location": "outside", "current_place": "河北省保定市莲池区", "outside_since": "2022-10-01",
        "return_date": "2022-11-20", "return_means": "train", "address": "3号楼2单元501",
        "contact_phone": "13912345678", "symptoms": [], "declaration": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
