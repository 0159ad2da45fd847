"""Grapheme clusters (what a reader sees as one character: a flag, an emoji with its skin
tone or ZWJ sequence, a Devanagari conjunct, a letter with its accents), so that no length
cut in Rallypoint splits one. The `regex` module's `\\X` follows Unicode's extended grapheme
cluster rules (UAX #29)."""

from __future__ import annotations

from bisect import bisect_right

import regex

_CLUSTER = regex.compile(r"\X", regex.DOTALL)


def grapheme_edges(text: str) -> list[int]:
    """The offsets (in code points) where a cluster starts, and len(text): every place
    `text` may be cut."""
    edges = [match.start() for match in _CLUSTER.finditer(text)]
    edges.append(len(text))
    return edges


def last_edge_at_or_before(edges: list[int], position: int) -> int:
    """The largest edge <= position (edges as grapheme_edges gives them)."""
    return edges[bisect_right(edges, position) - 1]


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` code points at a cluster edge (so possibly shorter):
    a column of `limit` characters takes it, and no cluster is broken, unless the first
    cluster alone is longer than `limit` (only seen in abuse: then it is cut)."""
    if len(text) <= limit:
        return text
    # The edge at `limit` depends only on what comes before it and the one code point after.
    edge = last_edge_at_or_before(grapheme_edges(text[: limit + 1]), limit)
    return text[: edge or limit]
