"""The service's log format: plain text by default, one JSON object a line with LOG_FORMAT=json (config LOGGING)."""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# The id of the request being served (observability.middleware sets it), so that every line logged while serving
# it carries the id its answer's X-Request-ID shows.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

# What every LogRecord has; anything else on a record came from `extra={...}` and is a field of its own.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO-8601), level, logger, process id, message, the record's `extra`
    fields, the request id of the request being served, and the traceback of an exception as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _instant(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,  # which worker: gunicorn runs several
            "message": record.getMessage(),
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in RECORD_ATTRIBUTES)
        request_id = current_request_id.get()
        if request_id is not None:
            entry.setdefault("request_id", request_id)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a request object, say) is logged as its text, not lost.
        # ASCII: a lone surrogate in a message is escaped rather than failing the write.
        return json.dumps(entry, default=str)


def _instant(timestamp: float) -> str:
    # As the API writes instants, 2018-02-24T08:45:21.893Z. Not config.api.format_instant: logging is configured
    # before the apps are loaded, and config.api imports models.
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
