"""Search while names and addresses are encrypted (RALLYPOINT_ENCRYPTION_KEYS set): the
database holds no text to match with LIKE, so a name matches by the start of its words
(the name's prefix tokens, `storage.sealed_types.NameIndex`) and an address by equality
of its blind index (the whole number or email, any spacing)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Text, and_, false, or_, select, type_coerce
from sqlmodel import col

from storage.crypto import Crypto
from storage.models import Supporter, SupporterAddress
from storage.sealed_types import name_token, name_words


def address_candidates(q: str) -> list[str]:
    """What `q` could be stored as: as typed, lower-cased (email), and a phone number's
    digits with and without a leading + (addresses are stored as E.164)."""
    typed = q.strip()
    found = {typed, typed.lower()}
    digits = re.sub(r"\D", "", typed)
    if digits and re.fullmatch(r"[\d\s+().\-]+", typed):
        found |= {"+" + digits, digits}
    return sorted(found)


def name_matches(crypto: Crypto, q: str) -> Any:
    """Every word of `q` starts a word of the name (case-insensitive)."""
    words = name_words(q)
    if not words:
        return false()
    # As Text: a value compared with a NameIndex column would be turned into tokens.
    tokens = type_coerce(col(Supporter.name_index), Text)
    return and_(*(tokens.contains(f" {name_token(crypto, w)} ") for w in words))


def address_matches(q: str) -> Any:
    """SELECT the supporter ids with an address equal to `q` (one indexed lookup)."""
    return select(col(SupporterAddress.supporter_id)).where(
        col(SupporterAddress.address).in_(address_candidates(q))
    )


def supporter_matches(crypto: Crypto, q: str) -> Any:
    return or_(name_matches(crypto, q), col(Supporter.id).in_(address_matches(q)))
