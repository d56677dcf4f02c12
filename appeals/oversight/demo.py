"""Demo step: compute the dashboard's figures from the demo city just loaded."""

from appeals.oversight.services import summary_refresh


def seed(*args, **kwargs) -> None:
    summary_refresh()
