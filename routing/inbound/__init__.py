"""Inbound: verify → parse → store, batching and the SQLite lane."""
