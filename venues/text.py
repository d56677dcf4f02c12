"""Checks on free text arriving from outside (search boxes, integration clients)."""

import unicodedata


def without_control_characters(text: str) -> str:
    """`text` without control characters (Unicode category Cc): NUL, which PostgreSQL refuses
    in text and a crafted request uses to cause a 500, and the other C0/C1 codes, which no
    venue name, venue code or person's name contains."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")
