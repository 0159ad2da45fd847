"""Splitting long Telegram text: limits in UTF-16 units, boundaries, nothing lost."""

from __future__ import annotations

import random

import pytest

from channels.telegram.split import split_text, utf16_length

ALPHABET = ["a", "é", "ж", "字", "😀", "👍🏽", "e\u0301", " ", " ", "\n", "\n\n", "word", "🇰🇪"]


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("") == []
    assert split_text(" \n ") == []


def test_a_line_break_is_preferred_to_a_space() -> None:
    text = "x" * 30 + "\n" + "y y y y y"
    assert split_text(text, limit=36) == ["x" * 30, "y y y y y"]


def test_a_paragraph_break_is_preferred_to_a_line_break() -> None:
    text = "aaaa\nbbbb\n\ncccc\ndddd"
    assert split_text(text, limit=16) == ["aaaa\nbbbb", "cccc\ndddd"]


def test_an_early_boundary_does_not_make_a_tiny_part() -> None:
    text = "hi\n\n" + "z " * 20
    parts = split_text(text, limit=20)
    assert parts[0].startswith("hi\n\nz z")


def test_a_combining_accent_stays_with_its_letter() -> None:
    assert split_text("abcde\u0301f", limit=5) == ["abcd", "e\u0301f"]


def test_a_flag_is_not_cut_between_its_halves_when_it_can_move() -> None:
    # The flag is two regional indicators (2 + 2 units); cut after the first would
    # leave half a flag, which is still valid text; the surrogate pairs stay whole.
    parts = split_text("ab🇰🇪", limit=4)
    assert all(utf16_length(p) <= 4 for p in parts)
    assert "".join(parts) == "ab🇰🇪"


@pytest.mark.parametrize("seed", range(25))
def test_random_text_keeps_every_word_within_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([8, 13, 64, 500])
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3000)))
    parts = split_text(text, limit=limit)
    assert all(0 < utf16_length(part) <= limit for part in parts)
    # Only whitespace at the breaks is dropped; every other character survives in order.
    assert "".join("".join(parts).split()) == "".join(text.split())
    for part in parts:
        part.encode("utf-8")  # no lone surrogates


def test_limit_must_fit_a_surrogate_pair() -> None:
    with pytest.raises(ValueError):
        split_text("abc", limit=1)
