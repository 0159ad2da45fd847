"""Dispatch: claim outbox rows, rate-limit, send, retry, fall back, record."""
