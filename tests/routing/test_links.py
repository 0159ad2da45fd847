"""What a data-saver supporter gets instead of a long text or a file (routing/outbound/
links.py): the beginning and the link, in one SMS segment on SMS (GSM-7 or UCS-2), in 320
characters elsewhere, never cutting a grapheme; files as the link where they cannot go."""

from __future__ import annotations

from channels.base import OutboundMessage
from channels.sms_segments import sms_segments
from routing.outbound.links import Lighten, is_long, lighten, needs_page, shorten

LINK = "https://rallypoint.example.org/m/AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def test_an_sms_is_cut_to_one_segment_in_either_encoding() -> None:
    for body in ("word " * 100, "Habari ya leo rafiki 🙂 " * 20, "é" * 400):
        short = shorten(body, LINK, "sms")
        assert sms_segments(short) == 1, short
        assert short.endswith("... " + LINK) and body.startswith(short.split("...")[0])


def test_elsewhere_the_cut_is_at_320_characters_and_keeps_emoji_whole() -> None:
    body = "👩🏽‍🌾" * 200
    short = shorten(body, LINK, "telegram")
    assert len(short) <= 320 and short.endswith(LINK)
    assert short.split("...")[0].count("👩🏽‍🌾") * len("👩🏽‍🌾") == len(short.split("...")[0])


def test_which_messages_need_a_page() -> None:
    assert not needs_page([], "short", "sms", True)
    assert needs_page([], "x" * 200, "sms", True) and not needs_page([], "x" * 200, "sms", False)
    assert needs_page([{"url": "https://e.org/a.png"}], "short", "telegram", False)
    assert is_long("x" * 321, "email") and not is_long("x" * 320, "email")


def test_files_go_as_files_or_as_the_link() -> None:
    message = OutboundMessage(1, "telegram", "42", "The poster")
    files = [{"upload_id": 3, "content_type": "image/png", "filename": "p.png"}]
    sent = lighten(message, files, Lighten(LINK, data_saver=False, media_ok=True))
    assert sent.body == "The poster" and sent.media_urls == (f"{LINK}/media/0",)
    assert sent.media[0].kind == "image" and sent.media[0].filename == "p.png"
    saver = lighten(message, files, Lighten(LINK, data_saver=True, media_ok=True))
    assert (saver.body, saver.media, saver.media_urls) == (f"The poster\n{LINK}", (), ())
    plain = lighten(message, files, Lighten(LINK, data_saver=False, media_ok=False))
    assert plain.body == f"The poster\n{LINK}" and plain.media == ()
