"""Personal data primitives: ID validation, encryption, keyed hashes and masking.

National ID numbers and phones are never stored in clear: a Fernet token (MultiFernet so keys
rotate) plus an HMAC-SHA256 hash for exact look-up. Display goes through the mask helpers.
"""

import datetime as dt
import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from healthkit import clock
from healthkit.inputs import digits as ascii_digits  # '８', '٨' as '8'; other characters kept

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")  # ASCII digits only (\d also matches '８')


def id_check_digit(first17: str) -> str:
    """GB 11643 ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


# Full-width X, plus, hyphen and the ideographic space, as a Chinese input method types them.
_ID_WIDE = str.maketrans({"\uff38": "X", "\uff58": "X", "\u3000": ""})
_PHONE_WIDE = str.maketrans({"\uff0b": "+", "\uff0d": "-", "\u3000": ""})


def normalize_id_number(value: str) -> str:
    """Upper-case, spaces removed, and any decimal digit (full-width '１', Arabic-Indic '١')
    as its ASCII digit: one person's number always hashes the same way, whatever keyboard
    typed it. Other characters are left for validate_id_number to refuse."""
    number = (value or "").strip().upper().replace(" ", "")
    if number.isascii():
        return number
    return ascii_digits(number.translate(_ID_WIDE))


def validate_id_number(value: str, *, today: dt.date | None = None) -> str:
    """Return the normalised ID or raise ValidationError saying what is wrong (never echoing it)."""
    number = normalize_id_number(value)
    if len(number) != 18:
        raise ValidationError(
            _("An ID number has 18 characters; this one has %(n)d.") % {"n": len(number)},
            code="length",
        )
    # ASCII only: str.isdigit() is also true of superscripts ('²'), which int() cannot read
    if not number.isascii() or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationError(
            _("An ID number is 17 digits followed by a digit or X."), code="format"
        )
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError(
            _("The birth date inside this ID number is not a real date."), code="birth_date"
        ) from None
    today = today or clock.today()
    if birth > today or birth.year < 1890:
        raise ValidationError(
            _("The birth date inside this ID number is not plausible."), code="birth_date"
        )
    if id_check_digit(number[:17]) != number[17]:
        raise ValidationError(
            _("The last character of this ID number does not match; please check for a typo."),
            code="check_digit",
        )
    return number


def birth_date(id_number: str) -> dt.date | None:
    """The birth date inside an ID number, or None if the number is not valid."""
    try:
        number = validate_id_number(id_number)
    except ValidationError:
        return None
    return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def normalize_phone(value: str) -> str:
    """Spaces and hyphens dropped, +86 removed, full-width (or other Unicode) digits, plus and
    hyphen as ASCII: one phone, one keyed hash, and a number the SMS gateway can dial."""
    digits = value or ""
    if not digits.isascii():
        digits = ascii_digits(digits.translate(_PHONE_WIDE))
    digits = re.sub(r"[\s\-]", "", digits)
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits


def validate_phone(value: str) -> str:
    phone = normalize_phone(value)
    if not _PHONE_RE.match(phone):
        raise ValidationError(
            _("Enter an 11-digit mainland mobile number starting with 1."), code="phone"
        )
    return phone


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def _cipher() -> MultiFernet:
    return _fernet(tuple(settings.PII_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return _cipher().encrypt(value.encode()).decode()


class UndecryptableError(ValueError):
    """A token none of the configured keys opens (an old key was dropped too early, or a wrong
    key set). Names no data. Resident-facing flows treat it as "expired, start again"."""


def decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        # The message names no data: a wrong key set is a configuration error.
        raise UndecryptableError("personal data token cannot be decrypted with the configured keys") from None


def rotate(token: str) -> str:
    """Re-encrypt under the first (newest) key."""
    return _cipher().rotate(token.encode()).decode()


def keyed_hash(value: str, *, key: str | None = None) -> str:
    """HMAC-SHA256 under PII_HASH_KEY (or `key`, used only while re-hashing to a new key)."""
    return hmac.new((key or settings.PII_HASH_KEY).encode(), value.encode(), hashlib.sha256).hexdigest()


def id_hash(id_number: str, *, key: str | None = None) -> str:
    return keyed_hash("id:" + normalize_id_number(id_number), key=key)


def phone_hash(phone: str, *, key: str | None = None) -> str:
    return keyed_hash("phone:" + normalize_phone(phone), key=key)


def mask_id(id_number: str) -> str:
    number = normalize_id_number(id_number)
    return number[:2] + "*" * (len(number) - 4) + number[-2:] if len(number) > 4 else "****"


def mask_name(name: str) -> str:
    """Surname only. Two-character compound surnames are rare enough to accept the first char."""
    name = (name or "").strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def mask_phone(phone: str) -> str:
    phone = normalize_phone(phone)
    if len(phone) == 11:
        return phone[:3] + "****" + phone[7:]
    return phone[:2] + "****" if phone else ""


def masked_person(name: str, id_masked: str) -> str:
    return f"{mask_name(name)} {id_masked}"
