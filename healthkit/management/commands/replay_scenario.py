"""`manage.py replay_scenario FILE|-`: what would the rules do to this timeline?

Runs the real engine in a transaction that is always rolled back, with the engine clock
(healthkit.clock) frozen at each event's instant. Prints one JSON line per `check` event.
The answer comes from the file alone: inside that transaction every stored table but the rules
in force is shadowed by an empty temporary copy (healthkit.scenario.isolated_world), so stored
residents, signals, popups, venues and risk windows are neither read nor written. The
scenario's resident is created there, under a scenario-only look-up hash besides.
See docs/engine.md for the format.
"""

import datetime as dt
import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from communities import pii
from communities.models import Resident
from communities.services import resident_add_phone
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.scenario import ScenarioContext, isolated_world
from healthkit.selectors import health_code_at
from healthkit.simulator import event_handler, registered_event_types


def _instant(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    instant = dt.datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError("no UTC offset")
    return instant


class Command(BaseCommand):
    help = "Replay a popup scenario (JSON file, or - for stdin) against the engine; nothing is stored."

    def add_arguments(self, parser):
        parser.add_argument("file", help="scenario JSON file, or - for stdin")

    def handle(self, *args, file: str, **options):
        try:
            if file == "-":
                scenario = json.load(sys.stdin)
            else:
                with open(file, encoding="utf-8") as fh:
                    scenario = json.load(fh)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if not isinstance(scenario, dict) or not isinstance(scenario.get("events"), list):
            raise CommandError('a scenario is {"resident": {...}, "events": [...]}')
        events = scenario["events"]
        with transaction.atomic(), isolated_world():
            resident = self._resident(scenario.get("resident"))
            previous: dt.datetime | None = None
            for index, event in enumerate(events):
                previous = self._replay(resident, index, event, previous)
            transaction.set_rollback(True)

    def _resident(self, data: object) -> Resident:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
            raise CommandError("resident: name and id_number are required")
        try:
            number = pii.validate_id_number(str(data.get("id_number", "")))
        except ValidationError as exc:
            raise CommandError(f"resident.id_number: {exc.messages[0]}") from None
        # A scenario-only hash: the replay never sees (or touches) a registered resident's data.
        resident = Resident.objects.create(
            name=data["name"].strip()[:64], id_encrypted=pii.encrypt(number),
            id_hash=pii.keyed_hash("scenario:" + number), id_masked=pii.mask_id(number),
        )
        if data.get("phone"):
            try:
                resident_add_phone(resident=resident, phone=str(data["phone"]), primary=True)
            except ValidationError as exc:
                raise CommandError(f"resident.phone: {exc.messages[0]}") from None
        return resident

    def _replay(self, resident: Resident, index: int, event: object,
                previous: dt.datetime | None) -> dt.datetime:
        if not isinstance(event, dict):
            raise CommandError(f"event {index}: each event is a JSON object")
        event_type = event.get("type")
        try:
            at = _instant(event.get("at"))
        except ValueError:
            raise CommandError(
                f"event {index} ({event_type}): `at` must be an ISO 8601 date-time with a UTC offset"
            ) from None
        if previous is not None and at < previous:
            raise CommandError(f"event {index} ({event_type}): events must be in time order")
        handler = event_handler(event_type) if isinstance(event_type, str) else None
        if event_type != "check" and handler is None:
            known = ", ".join(["check", *registered_event_types()])
            raise CommandError(f"event {index}: unknown event type {event_type!r} (known: {known})")
        ctx = ScenarioContext(resident=resident, at=at)
        with clock.frozen_at(at):
            try:
                if event_type != "check":
                    with transaction.atomic():
                        handler(ctx=ctx, event=event, index=index)
                ctx.evaluate()
            except ApplicationError as exc:
                raise CommandError(f"event {index} ({event_type}): {exc.message}") from None
            except ValidationError as exc:
                raise CommandError(f"event {index} ({event_type}): {'; '.join(exc.messages)}") from None
            except (KeyError, ValueError, TypeError) as exc:
                # Handlers read raw JSON; a wrong shape surfaces here, named by index.
                raise CommandError(f"event {index} ({event_type}): malformed event ({exc})") from None
            if event_type == "check":
                code = health_code_at(resident, at)
                self.stdout.write(json.dumps(
                    {"at": event["at"], "code": code.color, "active_popups": code.popup_types},
                    ensure_ascii=False,
                ))
        return at
