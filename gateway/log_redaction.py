"""Callback URLs that carry a secret in their path (Africa's Talking's) must not reach a
log line: the access log writes every request's path, and a 404 or a 403 is logged as
readily as a 200. Nor may a query string's values (the WhatsApp verification GET carries
`hub.verify_token`): access lines keep the names only.

`SecretPathFilter` rewrites /webhooks/africastalking/<anything> to
/webhooks/africastalking/<secret> in a record's message and arguments and, on an access
line, `?a=1` to `?a=…`, keeping the arguments' shape (uvicorn's access formatter unpacks
them). `install` (called by `create_app`) puts it on the loggers of the HTTP server and
client.
"""

from __future__ import annotations

import logging
import re

from gateway.webhooks import SECRET_SHOWN

# The providers whose callback URLs carry their secret as the segment after their name.
SECRET_PATH_PROVIDERS = ("africastalking",)
_NAMES = "|".join(map(re.escape, SECRET_PATH_PROVIDERS))
SECRET_SEGMENT = re.compile(rf"(/webhooks/(?:{_NAMES})/)[^/?#\s\"']+")
# Where uvicorn logs request lines (and, on errors, the request), and httpx its requests'
# URLs (a check of our own callback URL, a test posting to it).
ACCESS_LOGGER = "uvicorn.access"
SERVER_LOGGERS = (ACCESS_LOGGER, "uvicorn.error", "uvicorn", "httpx")
# uvicorn's access record: '%s - "%s %s HTTP/%s" %d' (client, method, path?query, ...).
ACCESS_PATH_ARG = 2


def redact(text: str) -> str:
    return SECRET_SEGMENT.sub(rf"\g<1>{SECRET_SHOWN}", text) if "/webhooks/" in text else text


def redact_query(path: str) -> str:
    """`/x?a=1&b=2` → `/x?a=…&b=…`: the names stay, the values are never logged."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return base + "?" + "&".join(f"{name}=…" for name in names)


def _redacted_arg(value: object) -> object:
    """`value`, or its text redacted where it holds a secret path (httpx logs URLs as
    httpx.URL objects); numbers stay numbers, for the formats that want them."""
    if isinstance(value, (int, float)) or value is None:
        return value
    text = str(value)
    shown = redact(text)
    return value if shown == text else shown


class SecretPathFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            shown = [_redacted_arg(a) for a in args]
            if record.name == ACCESS_LOGGER and len(shown) > ACCESS_PATH_ARG:
                path = shown[ACCESS_PATH_ARG]
                if isinstance(path, str) and "?" in path:
                    shown[ACCESS_PATH_ARG] = redact_query(path)
            record.args = tuple(shown)
        elif isinstance(args, dict):
            record.args = {k: _redacted_arg(v) for k, v in args.items()}
        return True


def install() -> None:
    """Put the filter on the HTTP server's loggers (once each). A logger's filters see
    every record made on it, whichever handlers or formatters come after."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretPathFilter) for f in logger.filters):
            logger.addFilter(SecretPathFilter())
