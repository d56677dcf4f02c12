"""Print the current second-factor code of the demo accounts (supervisor1, admin).

Only devices that still carry the published demo key are shown, so this never prints a code of
a real person's authenticator."""

from django.core.management.base import BaseCommand
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthkit.management.commands.seed_demo import DEMO_TOTP_KEY_HEX, demo_totp_key_base32


class Command(BaseCommand):
    help = "Current TOTP code of the demo supervisor and administrator (demo key only)."

    def handle(self, *args, **options):
        devices = TOTPDevice.objects.filter(key=DEMO_TOTP_KEY_HEX, confirmed=True).select_related("user")
        if not devices:
            self.stdout.write("no demo device (run seed_demo first)")
            return
        for device in devices:
            totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
            self.stdout.write(f"{device.user.get_username()}: {totp.token():06d}")
        self.stdout.write(f"(demo key {demo_totp_key_base32()}; add it to an authenticator app instead)")
