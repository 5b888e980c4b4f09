"""Reads from streaming replicas (DATABASE_REPLICA_URLS): which database each query of a request goes to.

Writes, and everything inside a transaction on the primary (`connection.in_atomic_block`: a service's reads before
its writes), go to the primary, "default". Only the reads of GET and HEAD requests outside any transaction may go to
a replica, and only when:

- the client has not just written: after a request that wrote (any POST, PUT, PATCH or DELETE, and a GET that
  happened to), the answer sets the cookie READ_PRIMARY_COOKIE for MAX_LAG + CHECK_EVERY seconds, and requests that
  carry it read from the primary. A client that keeps no cookies sends `Cache-Control: no-cache` instead. Why that
  window suffices: a replica is used only when it was at most MAX_LAG behind at a check at most CHECK_EVERY ago, so
  it then holds every transaction committed more than MAX_LAG + CHECK_EVERY seconds ago.
- the replica is current enough (replica_usable): checked at most once a CHECK_EVERY per process and replica. A
  replica that cannot be reached, or fails during a request (the request is then answered again from the primary,
  which is safe for a GET), is left alone for DOWN_FOR seconds.

A request reads from one replica throughout (chosen at its first read), so its reads agree with each other. The
live stream (GET /stream) reads from the primary: it follows changes the primary announces.

Raw SQL that reads (occupancy.selectors) takes its connection from read_connection(); the ORM asks ReplicaRouter.
Without DATABASE_REPLICA_URLS neither the router nor the middleware is installed, and read_connection() is the
primary's `connection`.
"""

import logging
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections

log = logging.getLogger(__name__)

REPLICAS: tuple[str, ...] = tuple(alias for alias in settings.DATABASES if alias != DEFAULT_DB_ALIAS)
MAX_LAG = settings.DATABASE_REPLICA_MAX_LAG.total_seconds()
CHECK_EVERY = 1.0  # seconds a replica's lag, once measured, is trusted by this process
DOWN_FOR = 5.0  # seconds a replica that failed is left alone by this process
READ_PRIMARY_COOKIE = "read_primary"
READ_PRIMARY_FOR = int(MAX_LAG + CHECK_EVERY)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# The replica's lag, judged on the standby against the primary's WAL position read just before (the parameter):
# - not in recovery: it is no standby (a promoted one has left the primary's history): never used;
# - it has replayed everything the primary had flushed: lag 0. Comparing positions, not the age of the last
#   replayed transaction: when the primary is idle that age grows, though the standby is up to date;
# - else the age of the newest transaction it has replayed: an upper bound on how old its data are (what it lacks
#   was committed after that), so a standby is never used when it might be further behind than MAX_LAG. NULL (it
#   has replayed none since it started) is unknown: not used.
LAG_SQL = """
    SELECT pg_is_in_recovery(),
           CASE WHEN pg_last_wal_replay_lsn() >= %s::pg_lsn THEN 0
                ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END
"""

# Per process: each replica's (monotonic time until which the verdict holds, usable).
_verdicts: dict[str, tuple[float, bool]] = {}


@dataclass
class _RequestReads:
    may_lag: bool  # whether this request's reads may go to a replica at all
    replica: str | None = None  # the replica it reads from, once chosen
    wrote: bool = False


# The request being served, set by ReplicaReadsMiddleware; None outside requests (commands, the stream's threads):
# then everything reads from the primary.
_request: ContextVar[_RequestReads | None] = ContextVar("replica_reads", default=None)


def read_alias() -> str:
    """The database alias the current read goes to."""
    reads = _request.get()
    if reads is None or not reads.may_lag or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    if reads.replica is None:
        usable = [alias for alias in REPLICAS if replica_usable(alias)]
        if not usable:
            reads.may_lag = False
            return DEFAULT_DB_ALIAS
        reads.replica = random.choice(usable)
    return reads.replica


def read_connection():
    """The connection raw SQL that only reads runs on: a replica's when read_alias() says so, else `connection`."""
    return connections[read_alias()] if REPLICAS else connection


def replica_usable(alias: str) -> bool:
    """Whether `alias` answers and lags at most MAX_LAG behind the primary; measured once a CHECK_EVERY."""
    now = time.monotonic()
    verdict = _verdicts.get(alias)
    if verdict is not None and now < verdict[0]:
        return verdict[1]
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_flush_lsn()")
            (primary_lsn,) = cursor.fetchone()
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL, [primary_lsn])
            in_recovery, lag = cursor.fetchone()
    except Exception as exc:  # whatever goes wrong asking a replica, the primary answers instead
        replica_failed(alias, exc)
        return False
    usable = bool(in_recovery) and lag is not None and float(lag) <= MAX_LAG
    if not usable and (verdict is None or verdict[1]):
        log.warning("Replica %s not used: %s.", alias, "not a standby" if not in_recovery else f"lag {lag} s")
    _verdicts[alias] = (now + CHECK_EVERY, usable)
    return usable


def replica_failed(alias: str, exc: BaseException) -> None:
    """Leave `alias` alone for DOWN_FOR seconds, and drop its connection (a new one is made when it is used again)."""
    log.warning("Replica %s failed, reading from the primary for %d s: %s", alias, DOWN_FOR, exc)
    _verdicts[alias] = (time.monotonic() + DOWN_FOR, False)
    try:
        connections[alias].close()
    except Exception:  # closing a broken connection may fail too; it is gone either way
        pass


class ReplicaRouter:
    """Reads to read_alias(), writes to the primary; the replicas are copies of it, never migrated."""

    def db_for_read(self, model, **hints) -> str:
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        reads = _request.get()
        if reads is not None:  # the rest of the request, and the client's next ones, read what it wrote
            reads.wrote, reads.may_lag = True, False
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # every alias is the same database

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool | None:
        return None if db == DEFAULT_DB_ALIAS else False


class ReplicaReadsMiddleware:
    """Decides whether a request may read from a replica, sets the read-your-writes cookie after a write, and answers
    a GET again from the primary when its replica failed during it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        may_lag = (
            request.method in ("GET", "HEAD")
            and READ_PRIMARY_COOKIE not in request.COOKIES
            and "no-cache" not in request.headers.get("Cache-Control", "")
            and not request.path_info.startswith("/stream")
        )
        reads = _RequestReads(may_lag=may_lag)
        token = _request.set(reads)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(token)
        if reads.wrote or request.method not in SAFE_METHODS:
            response.set_cookie(
                READ_PRIMARY_COOKIE,
                "1",
                max_age=READ_PRIMARY_FOR,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response

    def process_exception(self, request, exception):
        reads = _request.get()
        if reads is None or reads.replica is None or not isinstance(exception, OperationalError | InterfaceError):
            return None
        if not connections[reads.replica].errors_occurred:
            return None  # the primary failed, not the replica
        replica_failed(reads.replica, exception)
        reads.replica, reads.may_lag = None, False
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
