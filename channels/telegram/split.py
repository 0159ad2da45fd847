"""Splitting text longer than Telegram's 4,096-character limit into several messages.

Length is counted in UTF-16 code units (an emoji outside the BMP counts 2), the way
Telegram measures entity offsets; that is never more than Telegram accepts, whichever
way it counts. Parts break at the last paragraph, line or word boundary that fits; a
single word longer than the limit is cut, but never inside a code point (so never
inside a surrogate pair) nor before a combining mark, joiner or variation selector.
"""

from __future__ import annotations

import re
import unicodedata

TELEGRAM_MAX_LENGTH = 4096

# Boundaries to break at, best first. A boundary only counts when it lies in the second
# half of the window, so a long text is not cut into a run of tiny messages.
_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"\s"))
_JOINERS = frozenset({"\u200d", "\u200c"})


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int) -> int:
    """The largest number of code points from the start whose UTF-16 length is <= limit."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _clings_to_previous(char: str) -> bool:
    """Characters that belong with the one before them (combining marks, skin tones...)."""
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or char in _JOINERS
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def _hard_cut(text: str, cut: int) -> int:
    """Move a mid-word cut back so that it does not split a character from its modifiers."""
    position = cut
    while position > 0 and (_clings_to_previous(text[position]) or text[position - 1] in _JOINERS):
        position -= 1
    return position or cut


def _break_point(text: str, cut: int) -> tuple[int, int]:
    """(end of this part, start of the next) for a window of `cut` code points."""
    window = text[:cut]
    for pattern in _BOUNDARIES:
        matches = [m for m in pattern.finditer(window) if m.start() >= cut // 2]
        if matches and window[: matches[-1].start()].strip():
            found = matches[-1]
            return found.start(), found.end()
    # The boundary may be the very character after the window.
    if text[cut].isspace():
        return cut, cut + 1
    position = _hard_cut(text, cut)
    return position, position


def split_text(text: str, limit: int = TELEGRAM_MAX_LENGTH) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 code units each, in order; [] if blank."""
    if limit < 2:
        raise ValueError("limit must leave room for a surrogate pair")
    parts: list[str] = []
    rest = text
    while utf16_length(rest) > limit:
        cut = _fitting_prefix(rest, limit)
        end, start = _break_point(rest, cut)
        parts.append(rest[:end].rstrip())
        rest = rest[start:].lstrip()
    parts.append(rest)
    # Whitespace alone is not worth a message (and Telegram refuses empty text).
    return [part for part in parts if part.strip()]
