"""aiosqlite logs every statement it runs, with its parameters (supporters' addresses and
messages), at DEBUG. Those records never reach our logs, at any level."""

from __future__ import annotations

import logging

DRIVER_LOGGERS = ("aiosqlite",)


class _NoStatements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_driver_logs() -> None:
    for name in DRIVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoStatements) for f in logger.filters):
            logger.addFilter(_NoStatements())
