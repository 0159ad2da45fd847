"""Outgoing webhooks: events written beside what caused them, signed and delivered."""
