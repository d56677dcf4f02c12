"""Registry of scenario event handlers for `manage.py replay_scenario`.

The engine registers its own event types here; other apps (venues) register theirs in their
AppConfig.ready(), so the popup core never imports them.
"""

from collections.abc import Callable
from typing import Any

EventHandler = Callable[..., Any]
_handlers: dict[str, EventHandler] = {}


def register_event(event_type: str, handler: EventHandler) -> None:
    _handlers[event_type] = handler


def event_handler(event_type: str) -> EventHandler | None:
    return _handlers.get(event_type)


def registered_event_types() -> list[str]:
    return sorted(_handlers)
