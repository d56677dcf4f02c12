from django.core.management.base import BaseCommand

from communities.services import rotate_personal_data_keys


class Command(BaseCommand):
    help = "Re-encrypt stored ID numbers and phones under the first key of PII_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        count = rotate_personal_data_keys()
        self.stdout.write(self.style.SUCCESS(f"re-encrypted {count} values"))
