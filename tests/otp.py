"""Second factor in tests: pass it for a test client, or compute the code an app would show.

The suite's `force_login()` / `login()` pass the second factor automatically (tests/conftest.py
calls `verify_session`), as they already skip the login form; tests of the login itself post
the login form and then use `current_code()` like a person reading their phone."""

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthkit.auth import second_factor_required


def device_for(user) -> TOTPDevice:
    """The user's confirmed authenticator device (made, as enrolment would, if none yet)."""
    return (TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
            or TOTPDevice.objects.create(user=user, name="test phone", confirmed=True))


def verify_session(client, user) -> None:
    """Mark the client's session as past the second factor, for users who need one."""
    if not second_factor_required(user):
        return
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device_for(user).persistent_id
    session.save()


def current_code(device: TOTPDevice, offset_steps: int = 0) -> str:
    """The 6-digit code the device's app shows now (or `offset_steps` steps later)."""
    import time

    at = int(time.time()) + offset_steps * device.step
    return f"{_at(device, at):0{device.digits}d}"


def _at(device: TOTPDevice, at: int) -> int:
    from django_otp.oath import TOTP

    generator = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    generator.time = at
    return generator.token()
