"""aiosmtpd logs every SMTP command line at INFO (MAIL FROM and RCPT TO: supporters'
addresses) and every line of a mail at DEBUG (their messages) to the `mail.log` logger.
Neither may reach our logs, at any level; nor may IMAPClient's protocol lines."""

from __future__ import annotations

import logging

AIOSMTPD_LOGGER = "mail.log"


class _QuietMailLog(logging.Filter):
    """Drops aiosmtpd's records below WARNING; keeps warnings and errors, but only their
    fixed text (the arguments are peers, command lines and mail lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        record.args = ()
        record.exc_info = record.exc_text = None
        record.msg = str(record.msg)
        return True


def quiet_aiosmtpd_log() -> None:
    logger = logging.getLogger(AIOSMTPD_LOGGER)
    if not any(isinstance(f, _QuietMailLog) for f in logger.filters):
        logger.addFilter(_QuietMailLog())


IMAPCLIENT_LOGGER = "imapclient"


def quiet_imapclient_log() -> None:
    """IMAPClient logs every protocol line at DEBUG (fetched mail included, under
    `imapclient.imaplib`): the same filter keeps only its warnings' fixed text."""
    for name in ("imaplib", "imapclient", "util"):
        logger = logging.getLogger(f"{IMAPCLIENT_LOGGER}.{name}")
        if not any(isinstance(f, _QuietMailLog) for f in logger.filters):
            logger.addFilter(_QuietMailLog())
