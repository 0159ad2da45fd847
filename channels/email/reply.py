"""Quoted-reply and signature stripping for inbound mail bodies.

email-reply-parser (GitHub's rules) does the main work: `>` quoted lines, English
"On … wrote:" headers and `--` signatures. It knows English only and misses a few shapes
common among supporters' mail clients, so those are cut first, in English, French,
Spanish, Portuguese, German and Swahili (the languages our supporters write in; no kept
library covers all of them: mail-parser-reply has neither Portuguese nor Swahili):

- the quote header Gmail, Apple Mail and Thunderbird write, on one line or wrapped over
  two: "On … wrote:", "Le … a écrit :", "El … escribió:", "Em … escreveu:",
  "Am … schrieb X:", "Mnamo … aliandika:";
- Outlook's "-----Original Message-----" rule and its "From:/Sent:/To:/Subject:" header
  block ("De :/Envoyé :/À :/Objet :", "Von:/Gesendet:/An:/Betreff:", "De:/Enviado:/Para:/
  Asunto:" or "Assunto:", "Kutoka:/Imetumwa:/Kwa:/Mada:"), bold in Gmail ("*From:*");
- mobile footers: "Sent from my …", "Get Outlook for …", "Envoyé de mon …", "Enviado desde
  mi …", "Enviado do meu …", "Von meinem … gesendet", "Imetumwa kutoka …".

Lines are compared after normalising no-break spaces, which French clients put before ":".
"""

from __future__ import annotations

import re

from email_reply_parser import EmailReplyParser

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2007": " "})
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*("
    r"original message|forwarded message|message d'origine|message transf[ée]r[ée]|"
    r"mensaje original|mensaje reenviado|mensagem original|mensagem encaminhada|"
    r"urspr[üu]ngliche nachricht|weitergeleitete nachricht|ujumbe (wa )?asili|"
    r"ujumbe uliosambazwa"
    r")\s*-{2,}\s*$",
    re.I,
)
_UNDERSCORE_RULE = re.compile(r"^\s*_{10,}\s*$")
# "<lead> … <date or time> … <verb>:" in each language: the lead word starts the line
# and a digit (the date) follows it somewhere.
_LEADS = r"(on|le|el|em|am|mnamo|\u00e0s|tarehe)"
_VERBS = r"(wrote|a\s+[ée]crit|escribi[óo]|escreveu|aliandika|schrieb)"
_LEAD_START = re.compile(rf"^\s*{_LEADS}\s.*\d", re.I)
_QUOTE_HEADER = re.compile(rf"^\s*{_LEADS}\s.*\d.*\b{_VERBS}\s*:\s*$", re.I)
# German puts the verb before the name: "Am Mo., 7. Dez. 2026 um 10:00 Uhr schrieb X:".
_GERMAN_HEADER = re.compile(r"^\s*am\s.*\d.*\bschrieb\s.+:\s*$", re.I)
# Outlook's French "X a écrit :" alone on a line, Swahili "X aliandika:" and the like.
_NAME_WROTE = re.compile(rf"^\s*\S.*<[^<>@\s]+@[^<>\s]+>.*\b{_VERBS}\s*:\s*$", re.I)
_MOBILE_FOOTER = re.compile(
    r"^\s*("
    r"sent from my\b|get outlook for\b|sent from mail for\b|"
    r"envoy[ée] (de|depuis) mon\b|obtenir outlook pour\b|"
    r"enviado desde mi\b|obtener outlook para\b|"
    r"enviado (do|de|a partir do) meu\b|obter o outlook para\b|"
    r"von meinem\b.*\bgesendet\s*$|gesendet von meinem\b|"
    r"imetumwa kutoka\b"
    r")",
    re.I,
)
_SIGNATURE_RULE = re.compile(r"^--\s*$")
# Outlook's quoted header block; Gmail shows it with bold asterisks ("*From:* …").
_HEADER_FROM = re.compile(r"^\s*\*?(from|de|von|kutoka)\s?\*?\s?:\*?\s+\S", re.I)
_HEADER_NEXT = re.compile(
    r"^\s*\*?("
    r"sent|date|to|subject|cc|"  # English
    r"envoy[ée]|[àa]|objet|"  # French (also "Date", "Cc")
    r"enviado|fecha|para|asunto|"  # Spanish
    r"data|assunto|"  # Portuguese (also "Enviado", "Para")
    r"gesendet|datum|an|betreff|"  # German
    r"imetumwa|tarehe|kwa|mada|nakala"  # Swahili
    r")\s?\*?\s?:\*?\s",
    re.I,
)

MAX_LINES = 20_000


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_outlook_header(lines: list[str], index: int) -> bool:
    """A "From:" line followed by at least two more header lines (Sent/To/Subject)."""
    if not _HEADER_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 6] if line.strip()]
    return sum(1 for line in following[:4] if _HEADER_NEXT.match(line)) >= 2


def _is_quote_header(line: str) -> bool:
    return bool(_QUOTE_HEADER.match(line) or _GERMAN_HEADER.match(line) or _NAME_WROTE.match(line))


def _cut_index(lines: list[str]) -> int | None:
    """The index of the first line where quoted material or a footer begins."""
    for i, line in enumerate(lines):
        if (
            _ORIGINAL_MESSAGE.match(line)
            or _is_quote_header(line)
            or _MOBILE_FOOTER.match(line)
            or _SIGNATURE_RULE.match(line)
            or _is_outlook_header(lines, i)
        ):
            return i
        # Gmail wraps a long "On <date> <name> <address>" line before "wrote:".
        if i + 1 < len(lines) and _LEAD_START.match(line):
            joined = f"{line} {lines[i + 1]}"
            if _QUOTE_HEADER.match(joined) or _GERMAN_HEADER.match(joined):
                return i
        if _UNDERSCORE_RULE.match(line) and i + 1 < len(lines) and _is_outlook_header(lines, i + 1):
            return i
    return None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_reply(text: str) -> str:
    """The new part of a reply: quoted text, quote headers and signatures removed.

    Falls back to the whole text when nothing would remain (e.g. a bare forward), so a
    message is never stored empty because of stripping.
    """
    full = _tidy(normalise_newlines(text))
    lines = full.split("\n")[:MAX_LINES]
    cut = _cut_index([line.translate(_SPACES) for line in lines])
    kept = "\n".join(lines if cut is None else lines[:cut])
    reply = _tidy(EmailReplyParser.parse_reply(kept)) if kept.strip() else ""
    return reply or full
