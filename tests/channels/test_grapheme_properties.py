"""Property tests (hypothesis): no Telegram split and no length cut breaks a grapheme
cluster, and the parts give the text back (only whitespace at the breaks is dropped)."""

from __future__ import annotations

import regex
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from channels.graphemes import grapheme_edges, truncate
from channels.telegram.split import split_text, utf16_length

# Clusters that code-point or UTF-16 cuts break: flags, skin tones, ZWJ sequences, tag
# sequences (the flag of Scotland), Devanagari conjuncts, combining accents, CRLF; and the
# whitespace the splitter breaks at, alone and with a combining mark on it.
TRICKY = [
    "🇰🇪",
    "🇮🇳",
    "👍🏽",
    "👩‍👩‍👧‍👦",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "क्ष",
    "स्त्री",
    "नमस्ते",
    "e\u0301",
    "a\u0308\u0301",
    "\r\n",
    " ",
    "\n",
    "\n\n",
    " \u0301",
    "word",
    "字",
    "😀",
]
texts = st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=120).map("".join)


def longest_cluster(text: str) -> int:
    return max((utf16_length(m) for m in regex.findall(r"\X", text, flags=regex.DOTALL)), default=0)


def positions(text: str, parts: list[str]) -> list[tuple[int, int]]:
    """Where each part lies in `text`, in order, with only whitespace between them."""
    found: list[tuple[int, int]] = []
    at = 0
    for part in parts:
        start = at
        while not text.startswith(part, start):
            assert start < len(text) and text[start].isspace(), (text, parts)
            start += 1
        found.append((start, start + len(part)))
        at = start + len(part)
    assert text[at:].strip() == "" or text[at:].isspace()
    return found


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=texts, limit=st.integers(min_value=2, max_value=40))
def test_splitting_keeps_clusters_whole_and_gives_the_text_back(text: str, limit: int) -> None:
    assume(longest_cluster(text) <= limit)
    parts = split_text(text, limit=limit)
    edges = set(grapheme_edges(text))
    assert all(0 < utf16_length(part) <= limit for part in parts)
    assert all(part.strip() for part in parts)
    for start, end in positions(text, parts):
        assert start in edges and end in edges, (text, parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=texts, limit=st.integers(min_value=2, max_value=6))
def test_a_cluster_longer_than_the_limit_is_still_sent_whole_in_code_points(
    text: str, limit: int
) -> None:
    parts = split_text(text, limit=limit)
    assert all(0 < utf16_length(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=texts, limit=st.integers(min_value=1, max_value=60))
def test_truncate_cuts_between_clusters(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert text.startswith(cut) and len(cut) <= limit
    if len(text) <= limit:
        assert cut == text
    elif longest_cluster(text[: limit + 8]) <= limit:
        assert len(cut) in set(grapheme_edges(text)) and cut


def test_examples_of_each_script() -> None:
    assert split_text("ab🇰🇪", limit=4) == ["ab", "🇰🇪"]
    assert split_text("xx👩‍👩‍👧‍👦", limit=12) == ["xx", "👩‍👩‍👧‍👦"]
    assert split_text("नमस्ते", limit=5) == ["नम", "स्ते"]
    assert truncate("Ana 🇰🇪", 5) == "Ana "
    assert truncate("नमस्ते", 4) == "नम"
    assert truncate("👍🏽👍🏽", 3) == "👍🏽"
