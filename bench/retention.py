"""The retention job at scale: N residents, each with a popup lifted, an appeal closed and two SMS
sent long ago (all due to be forgotten), plus N/10 residents whose business is still open (to be
kept). Prints each step's time and rows, then the time of a rerun (nothing left to do).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_bench_retention .venv/bin/python bench/retention.py
    .venv/bin/python bench/retention.py --residents 20000

The database named in DATABASE_URL (default hk_bench_retention) is DROPPED and re-created: point
it at a dedicated database only.
"""

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hk_bench_retention")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production: DEBUG keeps every query and wraps every cursor
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = "memory://"


from bench.benchdb import recreate_database  # noqa: E402 - after the path setup above


def fill(n: int, batch: int = 10_000) -> None:
    from appeals.models import Appeal
    from communities import pii
    from communities.models import Community, District, Resident, ResidentPhone, Street
    from healthkit.models import PopupCase, SmsMessage

    district = District.objects.order_by("code").first()
    street = Street.objects.create(district=district, code="BENCH001", name="基准街道")
    community = Community.objects.create(street=street, code="BENCH00100001", name="基准社区")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    phone_token = pii.encrypt("13800138000")
    id_token = pii.encrypt("110105199001011234")
    total = n + n // 10
    for start in range(0, total, batch):
        size = min(batch, total - start)
        residents = Resident.objects.bulk_create([
            Resident(name=f"居民{start + i}", id_encrypted=id_token, id_hash=f"bench{start + i}",
                     id_masked="11**************34", community=community) for i in range(size)])
        ResidentPhone.objects.bulk_create([
            ResidentPhone(resident=r, phone_encrypted=phone_token, phone_hash=f"p{r.pk}",
                          phone_masked="138****8000") for r in residents])
        popups, appeals, sms = [], [], []
        for i, r in enumerate(residents):
            still_open = start + i >= n
            popups.append(PopupCase(resident=r, popup_type=1, source=PopupCase.Source.UPSTREAM,
                                    cause={"reason": "手机号曾在外地使用"}, raised_at=long_ago,
                                    state=PopupCase.State.ACTIVE if still_open else PopupCase.State.LIFTED,
                                    lifted_at=None if still_open else long_ago + dt.timedelta(days=3)))
        PopupCase.objects.bulk_create(popups)
        for i, (r, p) in enumerate(zip(residents, popups, strict=True)):
            still_open = start + i >= n
            appeals.append(Appeal(
                reference=f"B{r.pk:011d}", resident=r, popup=p, category=Appeal.Category.OLD_PHONE,
                status=Appeal.Status.IN_PROGRESS if still_open else Appeal.Status.CLOSED,
                community=community, address_text="某小区3号楼", description=f"{r.name}说明情况",
                contact_phone_encrypted=phone_token, contact_phone_hash=f"p{r.pk}",
                contact_phone_masked="138****8000", created_at=long_ago,
                closed_at=None if still_open else long_ago + dt.timedelta(days=3),
                close_reason="" if still_open else "已解除", outcome="" if still_open else "lifted"))
            for k in range(2):
                sms.append(SmsMessage(idempotency_key=f"bench:{r.pk}:{k}", purpose="clearance_lifted",
                                      resident=r, phone_encrypted=phone_token, phone_masked="138****8000",
                                      body=f"{r.name}您好，您的弹窗已解除", state=SmsMessage.State.SENT,
                                      next_attempt_at=long_ago, sent_at=long_ago))
        Appeal.objects.bulk_create(appeals)
        SmsMessage.objects.bulk_create(sms)
    SmsMessage.objects.update(created_at=long_ago)  # auto_now_add: sent long ago


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100_000)
    args = parser.parse_args()
    recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    fill(args.residents)
    print(f"filled {args.residents:,} residents to forget (+{args.residents // 10:,} still open) "
          f"in {time.perf_counter() - started:.1f} s")

    from appeals import retention
    from healthkit import clock

    now = clock.now()
    for name, step in (("evidence", retention.evidence_forget), ("appeals", retention.appeals_forget),
                       ("clearance_tasks", retention.clearance_forget), ("sms", retention.sms_forget),
                       ("popups", retention.popups_forget), ("residents", retention.residents_forget),
                       ("audit_reasons", retention.audit_reasons_forget), ("sessions", retention.sessions_forget)):
        started = time.perf_counter()
        rows = step(now=now)
        seconds = time.perf_counter() - started
        rate = f"{rows / seconds:,.0f} rows/s" if rows and seconds else ""
        print(f"  {name:16} {rows:>9,} rows  {seconds:7.2f} s  {rate}")
    started = time.perf_counter()
    again = retention.retention_forget_due()
    print(f"rerun: {sum(again.values())} rows changed in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
