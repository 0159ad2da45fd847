"""The send-side contract every adapter in the registry meets, and the log capture that
proves no secret reaches a log line.

Each provider's case module (tests/channels/<provider>_case.py) gives a `SendRig`: its
adapter, built through the registry from a config holding distinctive secrets, with the
provider's wire fake answering each `SendCase` of its table. tests/channels/
test_send_contract.py runs every row and checks the logs of each (courier's way).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx

from channels.base import Channel, ChannelAdapter, DeliveryStatus, OutboundMessage, SendError
from channels.registry import ChannelConfigs, build_registry

A = TypeVar("A")


@dataclass(frozen=True)
class SendCase(Generic[A]):
    """One row: what the provider answers at the wire, and what send() must make of it.

    `error` None means the send succeeds with a provider id matching `result_id` and
    `result_status`; otherwise send() raises exactly `error` with `code` and (for
    Throttled) `retry_after`. `answers_once`: the provider answers normally afterwards,
    so the next send must go through (nothing sticks in the adapter).
    """

    label: str
    answer: A
    error: type[SendError] | None = None
    code: str | None = None
    retry_after: float | None = None
    result_id: str = ""
    result_status: DeliveryStatus = "sent"
    answers_once: bool = True


class SendRig(Protocol[A]):
    @property
    def provider(self) -> str:
        """Its field in channels.registry.ChannelConfigs."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret in the rig's config, and any encoding of one that travels on the
        wire (HTTP basic auth, SMTP AUTH): none may be in a log record or a raised error."""

    @property
    def cases(self) -> Sequence[SendCase[A]]:
        """The provider's table."""

    def message(self) -> OutboundMessage:
        """A message the rig's adapter sends (its body is secret too: never logged)."""

    def open(self, answer: A) -> AbstractAsyncContextManager[ChannelAdapter]:
        """The adapter, built by the registry, its provider answering the next send with
        `answer` (and normally after that)."""


@asynccontextmanager
async def registered(
    configs: ChannelConfigs, channel: Channel, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[ChannelAdapter]:
    """The adapter the registry builds from `configs` to send on `channel`, its HTTP
    client answered by `transport` (a provider's wire fake); closed afterwards."""
    async with httpx.AsyncClient(transport=transport) as http:
        registry = build_registry(configs, http)
        adapter = registry.for_channel(channel)
        assert adapter is not None, channel
        try:
            yield adapter
        finally:
            await registry.aclose()


def basic_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def sasl_plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


# Loggers of the libraries on the send and webhook paths, set to DEBUG besides the root,
# so a level one of them sets for itself cannot hide a record from the check.
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "telegram",
    "telegram.Bot",
    "telegram.request",
    "twilio",
    "aiosmtplib",
    "asyncio",
    "sqlalchemy",
    "uvicorn",
    "fastapi",
    "channels",
    "routing",
    "gateway",
    "storage",
)


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def all_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record any logger makes meanwhile, at DEBUG and up (levels restored after)."""
    keep = _Keep()
    names = {"", *LIBRARY_LOGGERS, *logging.root.manager.loggerDict}
    loggers = [logging.getLogger(name) for name in sorted(names)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            logger.addHandler(keep)
    logging.getLogger().addHandler(keep)
    try:
        yield keep.records
    finally:
        for logger, level, was_disabled in saved:
            logger.setLevel(level)
            logger.disabled = was_disabled
            logger.removeHandler(keep)
        logging.disable(disabled)


def record_texts(record: logging.LogRecord) -> Iterator[str]:
    """Every text a handler could write for `record`: message, raw args, exception."""
    yield record.getMessage()
    yield str(record.msg)
    args = record.args if isinstance(record.args, tuple) else (record.args,)
    for arg in args:
        yield repr(arg)
        yield str(arg)
    if record.exc_info:
        yield logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        yield record.exc_text
    if record.stack_info:
        yield record.stack_info


# aiosmtpd's logger: here the SMTP server of channels/email/fake.py, the provider's end of
# the wire, which logs the mail it receives (Rallypoint's own inbound listener is another
# matter: see tests/channels/test_email_listener.py).
PROVIDER_SIDE = ("mail.log",)


def leaked(records: Iterable[logging.LogRecord], secrets: Iterable[str]) -> list[str]:
    """'logger: secret…' for each record of ours that holds one of `secrets`."""
    found = []
    wanted = [s for s in secrets if s]
    for record in records:
        if record.name in PROVIDER_SIDE:
            continue
        for text in record_texts(record):
            for secret in wanted:
                if secret in text:
                    found.append(f"{record.name}: {secret[:6]}… in {text[:120]!r}")
    return found
