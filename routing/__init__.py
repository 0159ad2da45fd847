"""Inbound handling, outbound channel choice, announcement fan-out and the dispatcher."""
