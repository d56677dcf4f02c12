"""What a resident's phone receives, for tests that follow a link or type a code.

The outbox row keeps only the masked text (healthkit.sms); the full text is in the row's
encrypted pending column while it waits, and in the in-memory gateway once sent."""

from healthkit import sms
from healthkit.models import SmsMessage


def phone_text(message: SmsMessage) -> str:
    if message.pending_encrypted:
        return sms.sms_outgoing_text(message)
    for sent in reversed(sms.memory_backend.outbox):
        if sent.idempotency_key == message.idempotency_key:
            return sent.body
    raise AssertionError(f"SMS {message.idempotency_key} was neither waiting nor sent by the test gateway")


def last_phone_text(**filters) -> str:
    message = SmsMessage.objects.filter(**filters).order_by("-id").first()
    return phone_text(message) if message else ""
