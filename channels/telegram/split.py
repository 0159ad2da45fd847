"""Splitting text longer than Telegram's 4,096-character limit into several messages.

Length is counted in UTF-16 code units (an emoji outside the BMP counts 2), the way
Telegram measures entity offsets; that is never more than Telegram accepts, whichever
way it counts. Parts break at the last paragraph, line or word boundary that fits; a
single word longer than the limit is cut between grapheme clusters (channels/graphemes.py),
so never inside a flag, an emoji ZWJ sequence, a letter and its accents or a Devanagari
conjunct. Only a cluster longer than the limit by itself is cut inside, between code points.
"""

from __future__ import annotations

from bisect import bisect_right

import regex

from channels.graphemes import grapheme_edges, last_edge_at_or_before

TELEGRAM_MAX_LENGTH = 4096

# Boundaries to break at, best first. A boundary only counts when it lies in the second
# half of the window, so a long text is not cut into a run of tiny messages.
_BOUNDARIES = (regex.compile(r"\n\s*\n"), regex.compile(r"\n"), regex.compile(r"\s"))


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fitting_end(text: str, start: int, limit: int) -> int:
    """The largest end such that text[start:end] is at most `limit` UTF-16 units."""
    units = 0
    for index in range(start, len(text)):
        units += 2 if ord(text[index]) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


class _Text:
    """The text with its cluster edges, for cuts that only fall on them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.edges = grapheme_edges(text)
        self.edge_set = frozenset(self.edges)

    def next_edge(self, position: int) -> int:
        return self.edges[bisect_right(self.edges, position)]

    def skip_space(self, position: int) -> int:
        """Past the whole clusters of whitespace from `position` (an edge) on."""
        while position < len(self.text):
            after = self.next_edge(position)
            if not self.text[position:after].isspace():
                break
            position = after
        return position

    def trim_space(self, start: int, end: int) -> int:
        """Back over the whole clusters of whitespace that end at `end` (an edge)."""
        while end > start:
            before = last_edge_at_or_before(self.edges, end - 1)
            if not self.text[before:end].isspace():
                break
            end = before
        return end

    def break_point(self, start: int, cut: int) -> tuple[int, int]:
        """(end of this part, start of the next) for a window text[start:cut]."""
        text, edges = self.text, self.edge_set
        for pattern in _BOUNDARIES:
            matches = [
                m
                for m in pattern.finditer(text, start, cut)
                if m.start() >= start + (cut - start) // 2
                and m.start() in edges
                and m.end() in edges
                and text[start : m.start()].strip()
            ]
            if matches:
                return matches[-1].start(), matches[-1].end()
        # The boundary may be the very character after the window.
        if cut in edges and text[cut : self.next_edge(cut)].isspace():
            return cut, self.next_edge(cut)
        edge = last_edge_at_or_before(self.edges, cut)
        if edge > start:
            return edge, edge
        return cut, cut  # one cluster longer than the limit: cut between code points


def split_text(text: str, limit: int = TELEGRAM_MAX_LENGTH) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 code units each, in order; [] if blank."""
    if limit < 2:
        raise ValueError("limit must leave room for a surrogate pair")
    whole = _Text(text)
    parts: list[str] = []
    start = whole.skip_space(0)
    while utf16_length(text[start:]) > limit:
        cut = _fitting_end(text, start, limit)
        end, following = whole.break_point(start, cut)
        parts.append(text[start : whole.trim_space(start, end)])
        start = following if following not in whole.edge_set else whole.skip_space(following)
    parts.append(text[start:])
    # Whitespace alone is not worth a message (and Telegram refuses empty text).
    return [part for part in parts if part.strip()]
