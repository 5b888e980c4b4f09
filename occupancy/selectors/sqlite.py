"""What counts over time need of PostgreSQL, for SQLite: width_bucket over a list of instants, and the earliest
instant at the highest count. occupancy.apps registers them on every SQLite connection."""

import json
import threading
from bisect import bisect_right


class FirstAtMax:
    """SQLite aggregate first_at_max(count, instant): the earliest instant among the rows with the highest count
    (PostgreSQL's max_at compares arrays instead)."""

    def __init__(self):
        self.best = None

    def step(self, count, instant) -> None:
        if self.best is None or (-count, instant) < self.best:
            self.best = (-count, instant)

    def finalize(self):
        return None if self.best is None else self.best[1]


class _Thresholds(threading.local):
    """The edges of the statement running in this thread, parsed once. SQLite hands every call a new copy of the
    text: comparing it with the last one is a memcmp, where hashing it for a cache took 65 µs a call (202 kB for
    a year of hours)."""

    text: str | None = None
    parsed: list[str] = []

    def of(self, text: str) -> list[str]:
        if text != self.text:
            self.text, self.parsed = text, json.loads(text)
        return self.parsed


_thresholds = _Thresholds()


def sqlite_width_bucket(instant: str, edges: str) -> int:
    """PostgreSQL's width_bucket(operand, thresholds) for SQLite, where instants are text that sorts as time does
    and the thresholds a JSON list of them: how many thresholds are at or before `instant`."""
    return bisect_right(_thresholds.of(edges), instant)
