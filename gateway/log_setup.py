"""Logging for the processes: text (the default) or one JSON object per line
(`RALLYPOINT_LOG_FORMAT=json`), each line carrying the id of the HTTP request it was
written for (`gateway.request_ids`), uvicorn's access lines included. What a line must
not show (a query string's values, a secret in a callback path) `gateway.log_redaction`
takes out, on the loggers themselves.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from gateway.log_redaction import ACCESS_LOGGER
from gateway.request_ids import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_suffix)s"


class RequestIdFilter(logging.Filter):
    """Gives every record the request id of the context it was made in (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id()
        record.request_id = request_id
        record.request_suffix = f" [{request_id}]" if request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """{ts, level, logger, msg, request_id, pid} (+ `exc` for a traceback), one line each;
    `pid` tells apart the processes of `serve --workers N`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """One handler on the root logger for every logger (uvicorn's too: `serve` gives
    uvicorn no logging config of its own), in the chosen format."""
    root = logging.getLogger()
    # As logging.basicConfig: a process whose logging is set up already (a test runner
    # calling `main`) keeps its handlers.
    if not root.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.addFilter(RequestIdFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
        root.setLevel(level.upper())
    # uvicorn's loggers hand their records to ours.
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Alembic narrates every plugin and step at INFO; only its warnings are worth a line.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
