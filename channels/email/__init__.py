"""Email: outbound over SMTP (adapter.py), inbound through the built-in SMTP listener
(listener.py) or from a hosted mailbox over IMAP (imap.py, read by gateway/imap_poller.py)."""

from channels.email.adapter import EmailAdapter, build_adapter
from channels.email.config import EmailConfig

__all__ = ["EmailAdapter", "EmailConfig", "build_adapter"]
