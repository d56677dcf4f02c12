"""Key rotation for personal data (procedure: docs/security-controls.md).

Encryption keys: put the new key first in PII_ENCRYPTION_KEYS (keep the old one after it),
deploy, run this command; it re-encrypts every personal-data column and the residents' session
drafts under the new key, without reverting rows the site changes meanwhile. Keep the old key
listed until APPEALS_CODE_TTL_SECONDS has passed (codes waiting in the cache), then drop it.

Hash key (`--rehash`): with the site stopped, put the new key in the environment variable
PII_HASH_KEY_NEW (never on the command line: it would show in the process list), run
`rotate_pii_keys --rehash`, then set PII_HASH_KEY to that value and start the site.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from communities.services import (
    rehash_personal_data,
    rotate_personal_data_keys,
    rotate_session_secrets,
)


class Command(BaseCommand):
    help = "Re-encrypt personal data under the first key of PII_ENCRYPTION_KEYS; --rehash: new PII_HASH_KEY."

    def add_arguments(self, parser):
        parser.add_argument("--rehash", action="store_true",
                            help="Recompute the look-up hashes under the key in $PII_HASH_KEY_NEW (site stopped).")

    def handle(self, *args, rehash: bool, **options):
        if rehash:
            new_key = os.environ.get("PII_HASH_KEY_NEW", "")
            if not new_key:
                raise CommandError("Set PII_HASH_KEY_NEW to the new hash key (not on the command line).")
            try:
                count = rehash_personal_data(new_key=new_key)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(self.style.SUCCESS(
                f"re-hashed {count} values; now set PII_HASH_KEY to the value of PII_HASH_KEY_NEW and start the site"))
            return
        count = rotate_personal_data_keys()
        sessions = rotate_session_secrets()
        self.stdout.write(self.style.SUCCESS(
            f"re-encrypted {count} values and {sessions} session drafts; keep the old key listed for "
            f"APPEALS_CODE_TTL_SECONDS more, then remove it"))
