"""Reading what is archived."""

from datetime import datetime

from history.models import HistoryArchive


def archived_before() -> datetime | None:
    """Every instant before this is archived history (None: nothing is)."""
    return HistoryArchive.objects.order_by("-before").values_list("before", flat=True).first()


class ArchivedHistory(Exception):
    """A change to an archived month, which is read-only history; the message says so to a person."""


def history_check_writable(*, instant: datetime, what: str) -> None:
    """ArchivedHistory when `instant` falls in an archived month; `what` names the thing being changed."""
    before = archived_before()
    if before is not None and instant < before:
        raise ArchivedHistory(
            f"{what} is in archived history: every month before {before:%Y-%m} was exported and is read-only. "
            "Its counts are still answered; its events can no longer change."
        )


def history_check_readable(*, start: datetime) -> None:
    """ArchivedHistory when counts over time from `start` need rows (edges off five-minute marks) that archiving
    removed: archived months keep only their five-minute blocks."""
    before = archived_before()
    if before is not None and start < before:
        raise ArchivedHistory(
            f"Every month before {before:%Y-%m} is archived and kept in five-minute blocks: counts over time that "
            "reach into it need a start and an end on five-minute marks (such as 09:05, not 09:07) and an interval "
            "of whole five minutes."
        )
