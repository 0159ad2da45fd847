"""Tables, the engine/session setup for SQLite and PostgreSQL, migrations, queries."""
