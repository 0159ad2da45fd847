""" "New outbox rows were committed", told within this process: what wakes the dispatcher.

Every session of a factory made with `make_session_factory(engine, outbox_signal=signal)`
notes when it inserts outbox rows (an `OutboxItem` added, or an INSERT into the outbox
table run through the session) and calls `signal.notify()` once its transaction has
committed: the root transaction, not a SAVEPOINT, so a listener that looks finds the rows.
A rolled-back transaction notifies nothing. This is one place for every writer (one-on-ones,
replies, onboarding, fan-out batches, fallbacks) instead of a call after each commit.
Other processes are not told: a `rallypoint worker` finds the rows when it next polls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlmodel import Session

from storage.models import OutboxItem

log = logging.getLogger(__name__)

SIGNAL_KEY = "outbox_signal"  # in Session.info: the OutboxSignal to notify
_INSERTED = "outbox_inserted"  # in Session.info: this transaction inserted outbox rows
_TABLE = OutboxItem.__tablename__


class OutboxSignal:
    """Listeners called (synchronously, on the event loop) after each commit that queued
    outbox rows; a listener must be quick and must not raise (`Dispatcher.wake`)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` from now on; returns the function that stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # the commit is done: a listener's failure must not undo it
                log.exception("outbox listener %r failed", listener)


class SignalingSession(Session):
    """The sync session behind each AsyncSession of a factory with an OutboxSignal."""


@event.listens_for(SignalingSession, "pending_to_persistent")
def _outbox_item_inserted(session: Session, instance: Any) -> None:
    if isinstance(instance, OutboxItem):
        session.info[_INSERTED] = True


@event.listens_for(SignalingSession, "do_orm_execute")
def _outbox_insert_run(state: ORMExecuteState) -> None:
    if state.is_insert:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) == _TABLE:
            state.session.info[_INSERTED] = True


@event.listens_for(SignalingSession, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the transaction around it is not committed yet
    if session.info.pop(_INSERTED, False):
        signal = session.info.get(SIGNAL_KEY)
        if signal is not None:
            signal.notify()


@event.listens_for(SignalingSession, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_INSERTED, None)  # rolled back: nothing to tell
