"""Email: outbound over SMTP (adapter.py), inbound through the built-in SMTP listener."""

from channels.email.adapter import EmailAdapter, build_adapter
from channels.email.config import EmailConfig

__all__ = ["EmailAdapter", "EmailConfig", "build_adapter"]
