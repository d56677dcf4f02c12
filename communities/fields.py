"""Model fields for personal data at rest."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from communities import pii

FERNET_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte + timestamp)


def _load(value: str | None) -> Any:
    if not value or value == "{}":
        return {}
    if value.startswith(FERNET_PREFIX):
        return json.loads(pii.decrypt(value))
    return json.loads(value)  # a clear value written by raw SQL ('{}'::jsonb) or before encryption


class EncryptedJSONField(models.TextField):
    """A JSON value (dict/list) encrypted with the personal-data keys (Fernet) in a text column.

    Code reads and writes plain dicts; the database, its backups and raw SQL see ciphertext.
    An empty value is stored as '' (raw SQL inserting '{}' reads back as {} too).
    `rotate_pii_keys` re-encrypts these columns like the `*_encrypted` ones.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return _load(value)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, (dict, list)):
            return value
        return _load(value)

    def get_prep_value(self, value: Any) -> str:
        if value is None or value == "" or value == {}:
            return ""
        if isinstance(value, str) and value.startswith(FERNET_PREFIX):
            return value  # already ciphertext (e.g. a rotation writing a re-encrypted token)
        return pii.encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder))

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False, cls=DjangoJSONEncoder)
