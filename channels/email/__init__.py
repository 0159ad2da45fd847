"""Email: outbound over SMTP (adapter.py), inbound through the built-in SMTP listener."""
