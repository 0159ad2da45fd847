"""A database error's text never quotes the statement's parameters (supporters' numbers and
messages), so an error logged with its traceback cannot leak them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.db import make_engine


async def test_integrity_error_text_has_no_parameters(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hide.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (phone TEXT UNIQUE)"))
            await conn.execute(text("INSERT INTO t VALUES (:p)"), {"p": "+254700123987"})
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:p)"), {"p": "+254700123987"})
        assert "UNIQUE" in str(caught.value)
        assert "+254700123987" not in str(caught.value)
    finally:
        await engine.dispose()
