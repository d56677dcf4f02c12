"""The popup rules as published, as data. Times are Beijing time (UTC+8)."""

import datetime as dt

from django.db import migrations

CST = dt.timezone(dt.timedelta(hours=8))
NUMBERED = dt.datetime(2022, 2, 12, tzinfo=CST)  # popups numbered 1-5 from this day
JULY_16 = dt.datetime(2022, 7, 16, tzinfo=CST)  # 14 -> 7 day window; type 5 abolished

POLICIES = [
    (1, "2022-02-12", NUMBERED, JULY_16, {
        "window_days": 14, "case_free_days": 7, "auto_lift": True, "lift_authority": "engine",
        "in_city_lift_authority": "community",
        "description": "Stayed within 14 days in a county with >=1 local case.",
    }),
    (1, "2022-07-16", JULY_16, None, {
        "window_days": 7, "case_free_days": 7, "auto_lift": True, "lift_authority": "engine",
        "in_city_lift_authority": "community",
        "description": "Stayed within 7 days in a county with >=1 local case.",
    }),
    (2, "2022-02-12", NUMBERED, None, {
        "auto_lift": True, "lift_authority": "engine", "lift_at": "next_day_after_end",
        "description": "In entry quarantine; lifted the day after the period ends.",
    }),
    (3, "2022-02-12", NUMBERED, None, {
        "auto_lift": False, "lift_authority": "community", "outside_wait_days": 7,
        "test_days": [1, 2, 4, 7],
        "description": "Spatio-temporal link to a risk area, venue or person; needs investigation.",
    }),
    (4, "2022-02-12", NUMBERED, None, {
        "deadline_hours": 72, "auto_lift": True, "lift_authority": "engine",
        "triggers": ["arrival", "drug_purchase", "clinic_visit", "occupational", "mass_screening"],
        "description": "Missed a required nucleic-acid test by its deadline.",
    }),
    (5, "2022-02-12", NUMBERED, JULY_16, {
        "window_days": 14, "auto_lift": True, "lift_authority": "engine",
        "description": "Stayed within 14 days in a county with a land border port.",
    }),
    (5, "2022-07-16-abolished", JULY_16, None, {
        "abolished": True, "auto_lift": True, "lift_authority": "engine",
        "description": "Type 5 abolished; any still active are lifted.",
    }),
]


def seed(apps, schema_editor):
    PopupPolicy = apps.get_model("healthkit", "PopupPolicy")
    for popup_type, version, start, end, params in POLICIES:
        PopupPolicy.objects.update_or_create(
            popup_type=popup_type, version=version,
            defaults={"effective_from": start, "effective_to": end, "params": params,
                      "source": "Beijing Health Kit popup rules (DOMAIN.md)"},
        )


class Migration(migrations.Migration):
    dependencies = [("healthkit", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
