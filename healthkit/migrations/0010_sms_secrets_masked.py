"""SMS rows keep no live credential: the full text of a message still waiting is moved to an
encrypted column (wiped once sent); every stored body gets its link tokens and, for one-time
code messages, the code masked. Set-based for sent rows; only waiting rows pass through Python."""

import re

from django.db import migrations, models

MASK = "******"
LINK_TOKEN_SQL = r"(?<=[^/])/[A-Za-z0-9_:.-]*[A-Za-z0-9_-]{16,}[A-Za-z0-9_:.-]*/"
CODE_SQL = r"(^|[^0-9])[0-9]{6}([^0-9]|$)"


def forwards(apps, schema_editor):
    from communities import pii
    from healthkit.sms import mask_secrets

    SmsMessage = apps.get_model("healthkit", "SmsMessage")
    waiting = SmsMessage.objects.filter(state__in=["queued", "failed", "sending"], pending_encrypted="")
    for message in waiting.iterator(chunk_size=500):
        codes = re.findall(r"(?<![0-9])[0-9]{6}(?![0-9])", message.body) if message.purpose == "appeal_code" else []
        shown = mask_secrets(message.body, codes)
        if shown != message.body:
            SmsMessage.objects.filter(pk=message.pk).update(pending_encrypted=pii.encrypt(message.body), body=shown)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE healthkit_smsmessage SET body = regexp_replace(body, %s, %s, 'g') "
            "WHERE state NOT IN ('queued', 'failed', 'sending') AND body ~ %s",
            [LINK_TOKEN_SQL, f"/{MASK}/", LINK_TOKEN_SQL],
        )
        cursor.execute(
            "UPDATE healthkit_smsmessage SET body = regexp_replace(body, %s, %s, 'g') "
            "WHERE state NOT IN ('queued', 'failed', 'sending') AND purpose = 'appeal_code' AND body ~ %s",
            [CODE_SQL, rf"\1{MASK}\2", CODE_SQL],
        )


class Migration(migrations.Migration):
    dependencies = [("healthkit", "0009_sms_delivery_receipts")]

    operations = [
        migrations.AddField(
            model_name="smsmessage",
            name="pending_encrypted",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
